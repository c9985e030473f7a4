"""A request quota per tenant and second, shared by every environment of every function.

An environment counts each tenant's requests of the current second in memory, and adds
them to the tenant's counter in the table every `batch` requests (one UpdateItem, which
returns the total). When the total passes the quota, the environment refuses that tenant
(`429` with `Retry-After`) until the second ends; other environments learn it at their
next addition. A tenant making fewer than `batch` requests a second in an environment
costs no write at all, so the quota's price is one write per `batch` requests of busy
tenants, not one per request. What it may miss is bounded: under `batch` requests per
environment and second. A failing counter lets requests through (logged): the quota must
never take the API down.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable

from crm_core import keys
from crm_core.errors import TooManyRequests
from crm_core.table import Table

REQUESTS_ITEM = "tenant_requests"
BATCH = 5
TTL_SECONDS = 120

log = logging.getLogger(__name__)


class TenantThrottled(TooManyRequests):
    """The tenant passed its requests per second; `retry_after` seconds until the next."""

    def __init__(self, per_second: int, retry_after: int) -> None:
        super().__init__(
            f"your tenant made more than {per_second} requests in a second: try again in "
            f"{retry_after} s"
        )
        self.retry_after = retry_after


class TenantQuota:
    def __init__(
        self,
        table: Table,
        per_second: int,
        batch: int = BATCH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if per_second < 1 or batch < 1:
            raise ValueError("a quota and its batch are at least 1")
        self.table = table
        self.per_second = per_second
        self.batch = batch
        self.clock = clock
        self._second = -1
        self._counts: dict[str, int] = {}
        self._refused: set[str] = set()

    def admit(self, tenant_id: str) -> None:
        """Count one request of the tenant; raises TenantThrottled past the quota."""
        now = self.clock()
        second = int(now)
        if second != self._second:  # a new window: what was not added is under `batch`
            self._second, self._counts, self._refused = second, {}, set()
        retry_after = max(1, math.ceil(second + 1 - now))
        if tenant_id in self._refused:
            raise TenantThrottled(self.per_second, retry_after)
        count = self._counts[tenant_id] = self._counts.get(tenant_id, 0) + 1
        if count % self.batch:
            return
        try:
            total = self.table.add(
                keys.tenant_requests(tenant_id, second),
                "requests",
                self.batch,
                type=REQUESTS_ITEM,
                ttl=second + TTL_SECONDS,
            )
        except Exception:  # any failure of the counter lets the request in
            log.warning("the tenant request counter failed; request let through", exc_info=True)
            return
        if total > self.per_second:
            self._refused.add(tenant_id)
            raise TenantThrottled(self.per_second, retry_after)


def from_environment(table: Table) -> TenantQuota | None:
    """The stage's quota (`TENANT_REQUESTS_PER_SECOND`, template.yaml); None when unset or 0."""
    per_second = int(os.environ.get("TENANT_REQUESTS_PER_SECOND") or 0)
    return TenantQuota(table, per_second) if per_second > 0 else None
