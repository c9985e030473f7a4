"""The tenant's report settings: the time zone whose days its report periods are.

No item is UTC. A zone change applies to the changes aggregated after it; the rebuild job
re-buckets what came before (periods.py: a period is the wall-clock date in the zone).
The aggregator asks for every event, so answers are kept per process for `TTL_SECONDS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from crm_core import keys
from crm_core.errors import ConcurrentChange, PreconditionFailed
from crm_core.records.report import ReportSettings
from crm_core.table import Table, TransactionCancelled, read_modify_write
from crm_core.timezones import zone

DEFAULT_ZONE = "UTC"
SETTINGS_ITEM = "report_settings"
TTL_SECONDS = 60.0


class ReportZones:
    def __init__(self, table: Table, clock: Callable[[], float] = time.monotonic) -> None:
        self.table = table
        self.clock = clock
        self._known: dict[str, tuple[float, ZoneInfo]] = {}

    def of(self, tenant_id: str) -> ZoneInfo:
        held = self._known.get(tenant_id)
        if held is not None and self.clock() - held[0] < TTL_SECONDS:
            return held[1]
        item = self.table.get(keys.report_settings(tenant_id), consistent=False)
        found = zone(str((item or {}).get("timezone") or DEFAULT_ZONE))
        self._known[tenant_id] = (self.clock(), found)
        return found


class ReportSettingsStore:
    """The settings item, read and replaced on its version (If-Match)."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, tenant_id: str) -> ReportSettings:
        item = self.table.get(keys.report_settings(tenant_id), consistent=False)
        if item is None:
            return ReportSettings(timezone=DEFAULT_ZONE, version=0)
        return ReportSettings(timezone=str(item["timezone"]), version=int(item["version"]))

    def replace(self, tenant_id: str, timezone: str, expected: int | None) -> ReportSettings:
        def attempt() -> ReportSettings:
            item = self.table.get(keys.report_settings(tenant_id))
            version = int(item["version"]) if item else 0
            if expected is not None and expected != version:
                raise PreconditionFailed(f"the settings are at version {version}, not {expected}")
            stored = {
                **keys.report_settings(tenant_id),
                "type": SETTINGS_ITEM,
                "tenant_id": tenant_id,
                "timezone": timezone,
                "version": version + 1,
            }
            condition = "attribute_not_exists(PK)" if item is None else "version = :v"
            values = {} if item is None else {"v": version}
            try:
                self.table.transact([self.table.op.put(stored, condition, **values)])
            except TransactionCancelled:
                raise ConcurrentChange("the settings changed meanwhile") from None
            return ReportSettings(timezone=timezone, version=version + 1)

        return read_modify_write(attempt, "report settings")
