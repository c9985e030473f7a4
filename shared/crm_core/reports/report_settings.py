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
from crm_core.table import Table
from crm_core.timezones import zone

DEFAULT_ZONE = "UTC"
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
