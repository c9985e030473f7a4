"""The tenant's email settings: one item (`keys.email_settings`), versioned like every object.

Every campaign email shows the postal address kept here (anti-spam laws ask for one), so a
campaign cannot be scheduled, sent or test-sent before the tenant has PUT its settings.
The sender reads the item with a GetItem of its own; this store serves the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_core import keys
from crm_core.campaigns.campaign_models import EmailSettings, StoredEmailSettings
from crm_core.clock import now_iso
from crm_core.dynamo import Item
from crm_core.errors import ConcurrentChange, NotFound, PreconditionFailed
from crm_core.table import Table, TransactionCancelled, read_modify_write

EMAIL_SETTINGS_ITEM = "email_settings"
_API_FIELDS = tuple(StoredEmailSettings.model_fields)
MISSING_DETAIL = (
    "the tenant has no email settings yet: PUT /settings/email with the postal address "
    "every campaign email must show (and, optionally, the company name)"
)


def to_settings(item: Mapping[str, Any]) -> StoredEmailSettings:
    return StoredEmailSettings.model_validate({k: item[k] for k in _API_FIELDS if k in item})


class EmailSettingsStore:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.op = table.op

    def find(self, tenant_id: str, consistent: bool = True) -> StoredEmailSettings | None:
        item = self.table.get(keys.email_settings(tenant_id), consistent=consistent)
        if item is None or item.get("type") != EMAIL_SETTINGS_ITEM:
            return None
        return to_settings(item)

    def get(self, tenant_id: str) -> StoredEmailSettings:
        """The settings, or NotFound saying how to set them."""
        found = self.find(tenant_id)
        if found is None:
            raise NotFound(MISSING_DETAIL)
        return found

    def put(
        self, tenant_id: str, body: EmailSettings, expected: int | None, user_id: str
    ) -> tuple[StoredEmailSettings, bool]:
        """Replace the settings (create them the first time); `expected` is a client's
        If-Match (412 when stale, or when there is nothing to match yet). Returns the
        stored settings and whether they were created."""

        def attempt() -> tuple[StoredEmailSettings, bool]:
            old = self.table.get(keys.email_settings(tenant_id))
            version = int(old["version"]) if old else 0
            if expected is not None and version != expected:
                raise PreconditionFailed(
                    f"the email settings are at version {version}, not {expected}"
                    if old
                    else "there are no email settings to match yet: PUT without If-Match"
                )
            item: Item = {
                **keys.email_settings(tenant_id),
                "type": EMAIL_SETTINGS_ITEM,
                "tenant_id": tenant_id,
                **body.model_dump(mode="json", exclude_none=True),
                "updated_at": now_iso(),
                "updated_by": user_id,
                "version": version + 1,
            }
            if old:
                operation = self.op.put(item, "version = :v", v=version)
            else:
                operation = self.op.put(item, "attribute_not_exists(PK)")
            try:
                self.table.transact([operation])
            except TransactionCancelled:
                raise ConcurrentChange("the email settings changed meanwhile") from None
            return to_settings(item), old is None

        return read_modify_write(attempt, "email settings")
