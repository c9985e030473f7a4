"""Companies in the single table, with their unique domain per tenant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crm_core import keys, normalize
from crm_core.clock import now_iso
from crm_core.dynamo import Item
from crm_core.errors import ConcurrentChange, Conflict, NotFound, PreconditionFailed
from crm_core.events import contacts as events
from crm_core.events.envelope import DomainEvent, Origin
from crm_core.events.outbox import outbox_put
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.patching import apply_patch
from crm_core.records.company import Company, CompanyCreate, CompanyWithDeals
from crm_core.records.deal_totals import deal_totals
from crm_core.table import Page, Table, TransactionCancelled, read_modify_write

COMPANY = "company"
DOMAIN_OWNER = "company_domain"
_API_FIELDS = tuple(Company.model_fields)


def to_company(item: Mapping[str, Any]) -> Company:
    return Company.model_validate({k: item[k] for k in _API_FIELDS if k in item})


def _stored(item: dict[str, Any]) -> dict[str, Any]:
    body = keys.without_keys(item)
    return {
        **keys.company(item["tenant_id"], item["id"]),
        **body,
        "GSI1PK": keys.companies_by_name(item["tenant_id"]),
        "GSI1SK": keys.company_name_sort_key(item["name"], item["id"]),
    }


class CompanyStore:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.op = table.op

    def load(self, tenant_id: str, company_id: str) -> Item:
        item = self.table.get(keys.company(tenant_id, company_id))
        if item is None or item.get("type") != COMPANY:
            raise NotFound("no such company")
        return item

    def get(self, tenant_id: str, company_id: str) -> Company:
        return to_company(self.load(tenant_id, company_id))

    def get_with_deals(self, tenant_id: str, company_id: str) -> CompanyWithDeals:
        """The company's page: the company and its deal summary, read together in one
        BatchGetItem (strongly consistent; the summary's sums exactly)."""
        company_key = keys.company(tenant_id, company_id)
        summary_key = keys.company_deal_summary(tenant_id, company_id)
        found = {
            i["PK"]: i
            for i in self.table.batch_get(
                [company_key, summary_key],
                consistent=True,
                exact=lambda key: key == summary_key,
            )
        }
        item = found.get(company_key["PK"])
        if item is None or item.get("type") != COMPANY:
            raise NotFound("no such company")
        summary = found.get(summary_key["PK"])
        return CompanyWithDeals(**dict(to_company(item)), deals=deal_totals(summary))

    def create(self, tenant_id: str, data: CompanyCreate, origin: Origin) -> Company:
        now = now_iso()
        item: dict[str, Any] = {
            "type": COMPANY,
            "id": new_ulid(),
            "tenant_id": tenant_id,
            **apply_patch({}, data.model_dump(mode="json", exclude_none=True)),
            "contact_count": 0,
            "created_at": now,
            "updated_at": now,
            "created_by": origin.actor.id,
            "version": 1,
        }
        ops = [self.op.put(_stored(item), "attribute_not_exists(PK)")]
        ops += self._domain_claim(item)
        company = to_company(item)
        event = events.CompanyCreated.create(
            tenant_id, origin, events.CompanyData(company=company), now
        )
        self._write(ops, event)
        return company

    def update(
        self,
        tenant_id: str,
        company_id: str,
        changes: dict[str, Any],
        expected: int | None,
        origin: Origin,
    ) -> Company:
        def attempt() -> Company:
            old = self._load_for_write(tenant_id, company_id, expected)
            new = {
                **apply_patch(old, changes),
                "updated_at": now_iso(),
                "version": old["version"] + 1,
            }
            if new.get("phone") and {"phone", "country"} & changes.keys():
                # The patch model could use only a country sent with it; the stored one is
                # the hint for a national number, as on create.
                new["phone"] = normalize.phone(new["phone"], new.get("country"))
            # The put rewrites contact_count too: contacts joining or leaving meanwhile (an
            # ADD that leaves the version alone) must fail it, or their counts would be lost.
            ops = [
                self.op.put(
                    _stored(new),
                    "version = :v AND (attribute_not_exists(contact_count) OR contact_count = :n)",
                    v=old["version"],
                    n=old.get("contact_count", 0),
                )
            ]
            if new.get("domain") != old.get("domain"):
                ops += self._domain_release(old)
                ops += self._domain_claim(new)
            after = to_company(new)
            event = events.company_updated(tenant_id, origin, to_company(old), after)
            self._write(ops, event)
            return after

        return read_modify_write(attempt, "company")

    def delete(self, tenant_id: str, company_id: str, expected: int | None, origin: Origin) -> None:
        read_modify_write(
            lambda: self._delete_once(tenant_id, company_id, expected, origin), "company"
        )

    def _delete_once(
        self, tenant_id: str, company_id: str, expected: int | None, origin: Origin
    ) -> None:
        old = self._load_for_write(tenant_id, company_id, expected)
        if old.get("contact_count", 0) > 0:
            raise Conflict(
                f"the company still has {old['contact_count']} contacts; move them first"
            )
        # The count is checked again inside the transaction: a contact added meanwhile wins.
        ops = [
            self.op.delete(
                keys.company(tenant_id, company_id),
                "version = :v AND (attribute_not_exists(contact_count) OR contact_count = :zero)",
                v=old["version"],
                zero=0,
            )
        ]
        ops += self._domain_release(old)
        event = events.CompanyDeleted.create(
            tenant_id, origin, events.CompanyDeletedData(company_id=company_id)
        )
        self._write(ops, event)

    def list_by_name(
        self, tenant_id: str, prefix: str | None, limit: int, cursor: str | None
    ) -> Page:
        listing = ListQuery("companies", keys.companies_by_name(tenant_id), "GSI1")
        return self.table.query(
            listing,
            limit,
            cursor,
            newest_first=False,
            sort_prefix=keys.company_name_prefix(prefix) if prefix else None,
        )

    def _load_for_write(self, tenant_id: str, company_id: str, expected: int | None) -> Item:
        item = self.load(tenant_id, company_id)
        if expected is not None and item["version"] != expected:
            raise PreconditionFailed(f"the company is at version {item['version']}, not {expected}")
        return item

    def _domain_claim(self, item: Item) -> list[dict[str, Any]]:
        if not item.get("domain"):
            return []
        owner = {
            **keys.company_domain(item["tenant_id"], item["domain"]),
            "type": DOMAIN_OWNER,
            "tenant_id": item["tenant_id"],
            "domain": item["domain"],
            "company_id": item["id"],
        }
        return [self.op.put(owner, "attribute_not_exists(PK)")]

    def _domain_release(self, item: Item) -> list[dict[str, Any]]:
        if not item.get("domain"):
            return []
        key = keys.company_domain(item["tenant_id"], item["domain"])
        return [self.op.delete(key, "company_id = :id", id=item["id"])]

    def _write(self, ops: list[dict[str, Any]], event: DomainEvent | None) -> None:
        """Run the change and its event (the outbox item) as one transaction."""
        if event is not None:
            owner = keys.company(event.tenant_id, _company_id(event))
            ops = [*ops, outbox_put(self.op, owner, event)]
        try:
            self.table.transact(ops)
        except TransactionCancelled as cancelled:
            for index, op in enumerate(ops):
                if not cancelled.failed(index):
                    continue
                kind, body = next(iter(op.items()))
                pk = body.get("Item", body.get("Key", {}))["PK"]["S"]
                if keys.is_domain_claim(pk) and kind == "Put":
                    holder = (cancelled.items[index] or {}).get("company_id")
                    raise Conflict(
                        f"a company with this domain already exists: {holder}",
                        existing_id=holder,
                        errors=[
                            {"loc": ["body", "domain"], "msg": "already used by another company"}
                        ],
                    ) from None
                # The company changed (or gained contacts) meanwhile: read_modify_write
                # reads it again and decides on fresh data.
                raise ConcurrentChange(
                    "the company was changed by someone else; reload and retry"
                ) from None
            raise Conflict(f"the change was refused: {cancelled}") from None


def _company_id(event: DomainEvent) -> str:
    data = event.data
    return str(data.company_id if isinstance(data, events.CompanyDeletedData) else data.company.id)
