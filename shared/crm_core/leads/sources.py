"""Lead sources in the single table: the source (tenant-keyed, what admins see) and its
route (source-keyed, what the webhook reads), always written together in one transaction.

The secret is generated here, sealed with KMS, and only its ciphertext is stored, in the
route. A rotation keeps the previous secret valid for `PREVIOUS_SECRET_HOURS`; rotating
again within that time retires the oldest at once (a source has at most two secrets).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_core import keys
from crm_core.clock import format_iso, now_iso
from crm_core.dynamo import Item
from crm_core.errors import ConcurrentChange, Conflict, NotFound, PreconditionFailed
from crm_core.ids import new_ulid
from crm_core.leads.models import LeadSource, LeadSourceCreate, SourceStatus
from crm_core.leads.secret_box import SecretBox, new_secret
from crm_core.pagination import ListQuery
from crm_core.patching import apply_patch
from crm_core.table import Page, Table, TransactionCancelled, read_modify_write

SOURCE_ITEM = "lead_source"
ROUTE_ITEM = "lead_source_route"
PREVIOUS_SECRET_HOURS = 24
_API_FIELDS = tuple(LeadSource.model_fields)


def webhook_path(source_id: str) -> str:
    return f"/webhooks/leads/{source_id}"


def to_source(item: Mapping[str, Any]) -> LeadSource:
    values = {k: item[k] for k in _API_FIELDS if k in item}
    values["webhook_path"] = webhook_path(item["id"])
    return LeadSource.model_validate(values)


def live_secrets(route: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The route's sealed secrets still valid at `now` (the current one never expires)."""
    moment = format_iso(now)
    return [
        s for s in route.get("secrets", []) if not s.get("expires_at") or s["expires_at"] > moment
    ]


class LeadSourceStore:
    def __init__(self, table: Table, box: SecretBox) -> None:
        self.table = table
        self.op = table.op
        self.box = box

    # Reads ------------------------------------------------------------------------------
    def load(self, tenant_id: str, source_id: str) -> Item:
        item = self.table.get(keys.lead_source(tenant_id, source_id))
        if item is None:
            raise NotFound("no such lead source")
        return item

    def get(self, tenant_id: str, source_id: str) -> LeadSource:
        return to_source(self.load(tenant_id, source_id))

    def list_page(self, tenant_id: str, limit: int, cursor: str | None) -> Page:
        listing = ListQuery("lead-sources", keys.lead_sources_of_tenant(tenant_id), "GSI1")
        return self.table.query(listing, limit, cursor, newest_first=False)

    def route(self, source_id: str) -> Item | None:
        """The webhook's view of a source (strongly consistent: a disable holds at once)."""
        return self.table.get(keys.lead_source_route(source_id))

    # Writes -----------------------------------------------------------------------------
    def create(self, tenant_id: str, data: LeadSourceCreate, user_id: str) -> tuple[Item, str]:
        """The new source and its secret (the only time the secret leaves this store)."""
        now = now_iso()
        source_id = new_ulid()
        secret = new_secret()
        item: dict[str, Any] = {
            **keys.lead_source(tenant_id, source_id),
            "type": SOURCE_ITEM,
            "id": source_id,
            "tenant_id": tenant_id,
            **data.model_dump(mode="json", exclude_none=True),
            "status": SourceStatus.ACTIVE.value,
            "created_at": now,
            "updated_at": now,
            "created_by": user_id,
            "version": 1,
            "GSI1PK": keys.lead_sources_of_tenant(tenant_id),
            "GSI1SK": source_id,
        }
        route = {
            **keys.lead_source_route(source_id),
            "type": ROUTE_ITEM,
            "tenant_id": tenant_id,
            "source_id": source_id,
            "status": SourceStatus.ACTIVE.value,
            "secrets": [{"sealed": self.box.seal(tenant_id, source_id, secret)}],
            "external_id_path": data.field_map.get("external_id"),
            "version": 1,
        }
        self.table.transact(
            [
                self.op.put(item, "attribute_not_exists(PK)"),
                self.op.put(route, "attribute_not_exists(PK)"),
            ]
        )
        return item, secret

    def update(
        self, tenant_id: str, source_id: str, changes: dict[str, Any], expected: int | None
    ) -> Item:
        def attempt() -> Item:
            old = self._load_for_write(tenant_id, source_id, expected)
            new = {
                **apply_patch(old, changes),
                "updated_at": now_iso(),
                "version": old["version"] + 1,
            }
            ops = [self.op.update_changed(old, new, "version = :v", v=old["version"])]
            path = new.get("field_map", {}).get("external_id")
            if path != old.get("field_map", {}).get("external_id"):
                # The webhook finds the sender's external_id with it: kept on the route.
                ops.append(self._route_path(source_id, path))
            self._write(ops)
            return new

        return read_modify_write(attempt, "lead source")

    def disable(self, tenant_id: str, source_id: str, expected: int | None) -> None:
        """Refuse the source's deliveries from now on; its deliveries stay readable."""

        def attempt() -> None:
            old = self._load_for_write(tenant_id, source_id, expected)
            if old["status"] == SourceStatus.DISABLED:
                return
            now = now_iso()
            new = {
                **old,
                "status": SourceStatus.DISABLED.value,
                "disabled_at": now,
                "updated_at": now,
                "version": old["version"] + 1,
            }
            self._write(
                [
                    self.op.update_changed(old, new, "version = :v", v=old["version"]),
                    self.op.update(
                        keys.lead_source_route(source_id),
                        "SET #status = :disabled REMOVE secrets",
                        "attribute_exists(PK)",
                        {"#status": "status"},
                        disabled=SourceStatus.DISABLED.value,
                    ),
                ]
            )

        read_modify_write(attempt, "lead source")

    def rotate(
        self, tenant_id: str, source_id: str, expected: int | None, now: datetime | None = None
    ) -> tuple[Item, str]:
        secret = new_secret()
        sealed = self.box.seal(tenant_id, source_id, secret)

        def attempt() -> Item:
            old = self._load_for_write(tenant_id, source_id, expected)
            if old["status"] == SourceStatus.DISABLED:
                raise Conflict("the lead source is disabled; create a new one")
            route = self.table.get(keys.lead_source_route(source_id))
            if route is None or route.get("tenant_id") != tenant_id:
                raise NotFound("no such lead source")
            moment = now or datetime.now(UTC)
            current = next(s for s in route["secrets"] if not s.get("expires_at"))
            until = format_iso(moment + timedelta(hours=PREVIOUS_SECRET_HOURS))
            rotated = format_iso(moment)
            new = {
                **old,
                "secret_rotated_at": rotated,
                "previous_secret_expires_at": until,
                "updated_at": rotated,
                "version": old["version"] + 1,
            }
            secrets = [{"sealed": sealed}, {"sealed": current["sealed"], "expires_at": until}]
            self._write(
                [
                    self.op.update_changed(old, new, "version = :v", v=old["version"]),
                    self.op.update(
                        keys.lead_source_route(source_id),
                        "SET secrets = :secrets, version = :next",
                        "version = :v",
                        secrets=secrets,
                        next=route["version"] + 1,
                        v=route["version"],
                    ),
                ]
            )
            return new

        return read_modify_write(attempt, "lead source"), secret

    # Parts ------------------------------------------------------------------------------
    def _route_path(self, source_id: str, path: str | None) -> dict[str, Any]:
        key = keys.lead_source_route(source_id)
        if path is None:
            return self.op.update(key, "REMOVE external_id_path", "attribute_exists(PK)")
        return self.op.update(key, "SET external_id_path = :p", "attribute_exists(PK)", p=path)

    def _load_for_write(self, tenant_id: str, source_id: str, expected: int | None) -> Item:
        item = self.load(tenant_id, source_id)
        if expected is not None and item["version"] != expected:
            raise PreconditionFailed(
                f"the lead source is at version {item['version']}, not {expected}"
            )
        return item

    def _write(self, ops: list[dict[str, Any]]) -> None:
        try:
            self.table.transact(ops)
        except TransactionCancelled:
            raise ConcurrentChange("the lead source was changed by someone else") from None
