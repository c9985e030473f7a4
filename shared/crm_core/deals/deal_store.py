"""Deals in the single table. Every change is one transaction: the deal, its history entry,
its pipeline's forecast months (current state and a snapshot of it) and board, the
pipeline's version check, the deal's contact links, the deal summaries of its contacts and
company (crm_core/deals/summaries.py), and its events in the outbox.
docs/decisions.md, 80.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.currencies import MoneyError, format_amount, parse_amount, to_base
from crm_core.deals import bookkeeping
from crm_core.deals.currency_settings import CurrencyStore, Rates
from crm_core.deals.deal_settings import DealSettingsStore
from crm_core.deals.pipeline_store import BOARD_CHANGES, PipelineStore, stage_of
from crm_core.deals.summaries import Holder, summary_deltas
from crm_core.deals.versions import later_of
from crm_core.dynamo import Item
from crm_core.errors import (
    ConcurrentChange,
    Conflict,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from crm_core.events import deals as events
from crm_core.events.envelope import ActorType, DomainEvent, Origin
from crm_core.events.outbox import outbox_put
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.patching import apply_patch
from crm_core.records.deal import (
    DEFAULT_PIPELINE,
    Deal,
    DealContact,
    DealCreate,
    stored_contacts,
)
from crm_core.records.deal_totals import SUMMARY_ITEM
from crm_core.table import Page, Table, TransactionCancelled, read_modify_write

DEAL_ITEM = keys.DEAL_ITEM
HISTORY_ITEM = "deal_history"
CONTACT_LINK_ITEM = "deal_contact"
FORECAST_MONTH_ITEM = "forecast_month"
FORECAST_SNAPSHOT_ITEM = "forecast_snapshot"
_API_FIELDS = tuple(Deal.model_fields)
# What a deal's history records; bookkeeping (times, counters, the version) is left out.
HISTORY_FIELDS = (
    "name",
    "pipeline_id",
    "stage_id",
    "status",
    "amount",
    "currency",
    "close_date",
    "owner_id",
    "company_id",
    "contacts",
    "lost_reason",
    "next_step",
    "attributes",
)
_MOVE_FIELDS = ("pipeline_id", "stage_id")
FILTERS = ("pipeline_id", "stage_id", "owner_id", "company_id", "contact_id", "status")


def to_deal(item: Mapping[str, Any]) -> Deal:
    return Deal.model_validate({k: item[k] for k in _API_FIELDS if k in item})


def _invalid(field: str, message: str) -> Unprocessable:
    return Unprocessable(message, errors=[{"loc": ["body", field], "msg": message}])


def _seconds_between(start: str, end: str) -> int:
    parse = datetime.fromisoformat
    return max(0, int((parse(end) - parse(start)).total_seconds()))


def _stored(item: Mapping[str, Any]) -> dict[str, Any]:
    tenant_id, deal_id = item["tenant_id"], item["id"]
    by_date = f"{item['close_date']}#{deal_id}"
    stored = {
        **keys.without_keys(item),
        **keys.deal(tenant_id, deal_id),
        "GSI1PK": keys.deals_of_pipeline(tenant_id, item["pipeline_id"]),
        "GSI1SK": keys.deal_stage_sort_key(item["stage_id"], item["close_date"], deal_id),
        "GSI4PK": keys.deals_in_status(tenant_id, item["status"]),
        "GSI4SK": by_date,
    }
    if item.get("owner_id"):
        stored["GSI2PK"] = keys.deals_of_owner(tenant_id, item["owner_id"])
        stored["GSI2SK"] = by_date
    if item.get("company_id"):
        stored["GSI3PK"] = keys.deals_of_company(tenant_id, item["company_id"])
        stored["GSI3SK"] = by_date
    return stored


class DealStore:
    def __init__(self, table: Table, clock: Callable[[], str] = now_iso) -> None:
        self.table = table
        self.op = table.op
        self.clock = clock
        self.pipelines = PipelineStore(table, clock)
        self.currencies = CurrencyStore(table, clock)
        self.settings = DealSettingsStore(table, clock)

    # Reads --------------------------------------------------------------------------------
    def load(self, tenant_id: str, deal_id: str) -> Item:
        item = self.table.get(keys.deal(tenant_id, deal_id))
        if item is None or item.get("type") != DEAL_ITEM:
            raise NotFound("no such deal")
        return item

    def get(self, tenant_id: str, deal_id: str) -> Deal:
        return to_deal(self.load(tenant_id, deal_id))

    def history(self, tenant_id: str, deal_id: str, limit: int, cursor: str | None) -> Page:
        """The deal's changes, newest first; kept after the deal is deleted (the last entry
        says so). A deal that never was is NotFound."""
        listing = ListQuery("deal-history", keys.deal_partition(tenant_id, deal_id))
        page = self.table.query(listing, limit, cursor, sort_prefix=keys.HISTORY_PREFIX)
        if not page.items and cursor is None:
            raise NotFound("no such deal")
        return page

    def page(
        self,
        tenant_id: str,
        by: str | None,
        value: str | None,
        limit: int,
        cursor: str | None,
        pipeline_id: str = DEFAULT_PIPELINE,
    ) -> Page:
        """One page of deals by close date, of one filter (FILTERS; a stage is one of
        `pipeline_id`); none: the default pipeline's."""
        if by is None or value is None:
            by, value = "pipeline_id", pipeline_id
        if by == "contact_id":
            listing = ListQuery("deals-of-contact", keys.deals_of_contact(tenant_id, value))
            # The deal ids only: the partition also holds the contact's deal summary.
            links = self.table.query(
                listing, limit, cursor, newest_first=False, sort_between=keys.DEAL_IDS
            )
            found = self.table.batch_get([keys.deal(tenant_id, i["deal_id"]) for i in links.items])
            found.sort(key=lambda d: (d["close_date"], d["id"]))
            return Page(items=found, next_cursor=links.next_cursor)
        if by == "stage_id":
            stage = ListQuery(
                "deals-of-stage", keys.deals_of_pipeline(tenant_id, pipeline_id), "GSI1"
            )
            return self.table.query(
                stage, limit, cursor, newest_first=False, sort_prefix=f"{value}#"
            )
        partition_of, index = {
            "pipeline_id": (keys.deals_of_pipeline, "GSI1"),
            "owner_id": (keys.deals_of_owner, "GSI2"),
            "company_id": (keys.deals_of_company, "GSI3"),
            "status": (keys.deals_in_status, "GSI4"),
        }[by]
        listing = ListQuery(f"deals-by-{by}", partition_of(tenant_id, value), index)
        return self.table.query(listing, limit, cursor, newest_first=False)

    # Writes -------------------------------------------------------------------------------
    def create(self, tenant_id: str, body: DealCreate, origin: Origin) -> Deal:
        data = body.model_dump(mode="json", exclude_none=True)
        deal_id = new_ulid()

        def attempt() -> Deal:
            pipeline = self._pipeline(tenant_id, body.pipeline_id)
            stage_id = body.stage_id or _first_open_stage(pipeline)
            at = later_of(self.clock(), pipeline.get("updated_at"))
            item: dict[str, Any] = {
                "type": DEAL_ITEM,
                "id": deal_id,
                "tenant_id": tenant_id,
                **{k: v for k, v in data.items() if k != "contacts"},
                "stage_id": stage_id,
                "contacts": stored_contacts(body.contacts),
                "owner_id": body.owner_id or _user_of(origin),
                "stage_entered_at": at,
                "close_date_pushes": 0,
                "time_in_stages": {},
                "created_at": at,
                "updated_at": at,
                "created_by": origin.actor.id,
                "version": 1,
            }
            item = {k: v for k, v in item.items() if v is not None}
            rates = self.currencies.current(tenant_id)
            self._settle(item, None, pipeline, rates, at, lost_reason_sent="lost_reason" in item)
            self._check_references(tenant_id, item, None)
            deal = to_deal(item)
            created = events.DealCreated.create(tenant_id, origin, events.DealData(deal=deal), at)
            published = [created, *_closing_events(None, item, deal, origin)]
            self._commit(None, item, {item["pipeline_id"]: pipeline}, origin, published)
            return deal

        return read_modify_write(attempt, "deal")

    def update(
        self,
        tenant_id: str,
        deal_id: str,
        changes: dict[str, Any],
        expected: int | None,
        origin: Origin,
    ) -> Deal:
        def attempt() -> Deal:
            old = self._load_for_write(tenant_id, deal_id, expected)
            new = apply_patch(old, changes)
            if "contacts" in changes:
                new["contacts"] = stored_contacts(
                    [DealContact.model_validate(c) for c in changes["contacts"] or []]
                )
            pipelines = {old["pipeline_id"]: self.pipelines.load(tenant_id, old["pipeline_id"])}
            if new["pipeline_id"] not in pipelines:
                pipelines[new["pipeline_id"]] = self._pipeline(tenant_id, new["pipeline_id"])
            pipeline = pipelines[new["pipeline_id"]]
            at = later_of(
                self.clock(), old["updated_at"], *(p.get("updated_at") for p in pipelines.values())
            )
            new["amount"] = _amount(new["amount"], new["currency"])
            rates = self.currencies.current(tenant_id)
            sent = changes.get("lost_reason") is not None
            self._settle(new, old, pipeline, rates, at, lost_reason_sent=sent)
            changed = [f for f in HISTORY_FIELDS if old.get(f) != new.get(f)]
            if not changed:
                return to_deal(old)
            new.update(updated_at=at, version=old["version"] + 1)
            self._check_references(tenant_id, new, old)
            deal = to_deal(new)
            data = events.DealChangeData(
                deal=deal, changed=changed, previous={f: old.get(f) for f in changed}
            )
            moved = any(f in changed for f in _MOVE_FIELDS)
            kind = events.DealStageChanged if moved else events.DealUpdated
            published: list[DomainEvent] = [kind.create(tenant_id, origin, data, at)]
            published += _closing_events(old, new, deal, origin)
            self._commit(old, new, pipelines, origin, published)
            return deal

        return read_modify_write(attempt, "deal")

    def delete(self, tenant_id: str, deal_id: str, expected: int | None, origin: Origin) -> None:
        def attempt() -> None:
            old = self._load_for_write(tenant_id, deal_id, expected)
            pipeline = self.pipelines.load(tenant_id, old["pipeline_id"])
            data = events.DealDeletedData(
                deal_id=deal_id,
                pipeline_id=old["pipeline_id"],
                stage_id=old["stage_id"],
                status=old["status"],
                contact_ids=[c["contact_id"] for c in old.get("contacts", [])],
                company_id=old.get("company_id"),
                owner_id=old.get("owner_id"),
            )
            at = later_of(self.clock(), old["updated_at"], pipeline.get("updated_at"))
            deleted = events.DealDeleted.create(tenant_id, origin, data, at)
            self._commit(old, None, {old["pipeline_id"]: pipeline}, origin, [deleted], at)

        read_modify_write(attempt, "deal")

    # The rules of a deal's state --------------------------------------------------------
    def _settle(
        self,
        new: dict[str, Any],
        old: Mapping[str, Any] | None,
        pipeline: Mapping[str, Any],
        rates: Rates,
        at: str,
        *,
        lost_reason_sent: bool = False,
    ) -> None:
        """Complete `new` from its stage: status, lost reason, closing rate, time in stages."""
        stage = stage_of(pipeline, new["stage_id"])
        if stage is None:
            raise _invalid(
                "stage_id", f"the pipeline {pipeline['id']} has no stage {new['stage_id']!r}"
            )
        new["status"] = stage["kind"]
        closes = new["status"] != "open" and (old is None or old["status"] != new["status"])
        new_currency = old is None or old["currency"] != new["currency"]
        # A rate is needed to price a new currency or a closing; a rename is not refused
        # because a rate was removed since.
        if (new_currency or closes) and rates.rate(new["currency"]) is None:
            raise _invalid(
                "currency",
                f"no rate from {new['currency']} to {rates.base}: set it in /settings/currencies",
            )
        if new["status"] == "lost" and not new.get("lost_reason"):
            raise _invalid("lost_reason", "a lost deal needs a lost reason")
        if lost_reason_sent and new["status"] != "lost":
            raise _invalid("lost_reason", "only a lost deal has a lost reason")
        if lost_reason_sent:
            codes = self.settings.lost_reasons(new["tenant_id"])
            if new["lost_reason"]["reason"] not in codes:
                message = f"a lost reason is one of the tenant's: {', '.join(codes)}"
                raise Unprocessable(
                    message, errors=[{"loc": ["body", "lost_reason", "reason"], "msg": message}]
                )
        if new["status"] != "lost":
            new.pop("lost_reason", None)
        if new["status"] == "open":
            new.pop("closing", None)
            new.pop("closed_at", None)
        elif (
            old is None
            or old["status"] != new["status"]
            or old["currency"] != new["currency"]
            or "closing" not in new
        ):
            # Closing (or closing again in another currency): the rate of this moment.
            rate = rates.rate(new["currency"]) or Decimal(1)
            amount = to_base(Decimal(new["amount"]), new["currency"], rates.base, rates.rates)
            new["closing"] = {
                "base": rates.base,
                "rate": f"{rate:f}",
                "amount": format_amount(amount, rates.base),
            }
            new["closed_at"] = at
        else:
            # Still closed: a new amount keeps the rate of the closing.
            closing = new["closing"]
            kept = {new["currency"]: Decimal(closing["rate"])}
            amount = to_base(Decimal(new["amount"]), new["currency"], closing["base"], kept)
            new["closing"] = {**closing, "amount": format_amount(amount, closing["base"])}
        if old is not None:
            if (old["pipeline_id"], old["stage_id"]) != (new["pipeline_id"], new["stage_id"]):
                spent = dict(old.get("time_in_stages", {}))
                left = old["stage_id"]
                spent[left] = spent.get(left, 0) + _seconds_between(old["stage_entered_at"], at)
                new["time_in_stages"] = spent
                new["stage_entered_at"] = at
            if new["close_date"] > old["close_date"]:
                new["close_date_pushes"] = old.get("close_date_pushes", 0) + 1

    def _check_references(
        self, tenant_id: str, new: Mapping[str, Any], old: Mapping[str, Any] | None
    ) -> None:
        """The company and contacts named are the tenant's (another tenant's id is just an id
        this tenant does not have)."""
        company_id = new.get("company_id")
        if company_id and company_id != (old or {}).get("company_id"):
            company = self.table.get(keys.company(tenant_id, company_id), consistent=False)
            if company is None or company.get("type") != "company":
                raise _invalid("company_id", f"no such company: {company_id}")
        before = {c["contact_id"] for c in (old or {}).get("contacts", [])}
        added = [c["contact_id"] for c in new.get("contacts", []) if c["contact_id"] not in before]
        if added:
            found = self.table.batch_get([keys.contact(tenant_id, c) for c in added])
            known = {i["id"] for i in found if i.get("type") == keys.CONTACT_ITEM}
            missing = [c for c in added if c not in known]
            if missing:
                raise _invalid("contacts", f"no such contact: {', '.join(missing)}")

    def _pipeline(self, tenant_id: str, pipeline_id: str) -> Item:
        """The pipeline a body names: one the tenant does not have is the body's mistake."""
        try:
            return self.pipelines.load(tenant_id, pipeline_id)
        except NotFound:
            raise _invalid("pipeline_id", f"no such pipeline: {pipeline_id}") from None

    def _load_for_write(self, tenant_id: str, deal_id: str, expected: int | None) -> Item:
        item = self.load(tenant_id, deal_id)
        if expected is not None and item["version"] != expected:
            raise PreconditionFailed(f"the deal is at version {item['version']}, not {expected}")
        return item

    # The transaction ----------------------------------------------------------------------
    def _commit(
        self,
        old: Mapping[str, Any] | None,
        new: dict[str, Any] | None,
        pipelines: Mapping[str, Mapping[str, Any]],
        origin: Origin,
        published: list[DomainEvent],
        deleted_at: str | None = None,
    ) -> None:
        record = new or old
        assert record is not None
        tenant_id, deal_id = record["tenant_id"], record["id"]
        at = new["updated_at"] if new is not None else deleted_at or self.clock()
        version = new["version"] if new is not None else record["version"] + 1
        ops: list[dict[str, Any]] = []
        key = keys.deal(tenant_id, deal_id)
        if old is None:
            ops.append(self.op.put(_stored(record), "attribute_not_exists(PK)"))
        elif new is not None:
            # Only what changed: what other writers keep on the deal (its last activity,
            # the rotting alert) is left as it is.
            ops.append(
                self.op.update_changed(_stored(old), _stored(new), "version = :v", v=old["version"])
            )
        else:
            ops.append(self.op.delete(key, "version = :v", v=old["version"]))
        ops.append(
            self.op.put(_history(old, new, record, at, version, origin), "attribute_not_exists(PK)")
        )
        ops += self._forecast_writes(tenant_id, old, new, pipelines, at)
        ops += self._contact_links(tenant_id, deal_id, old, new)
        ops += self._summary_updates(tenant_id, old, new)
        ops += [outbox_put(self.op, key, event) for event in published]
        try:
            self.table.transact(ops)
        except TransactionCancelled:
            # The deal, its pipeline or a forecast month changed meanwhile: decide again.
            raise ConcurrentChange("the deal changed meanwhile; reload and retry") from None

    def _forecast_writes(
        self,
        tenant_id: str,
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any] | None,
        pipelines: Mapping[str, Mapping[str, Any]],
        at: str,
    ) -> list[dict[str, Any]]:
        before = bookkeeping.standing(old) if old is not None else None
        after = bookkeeping.standing(new) if new is not None else None
        old_pipeline = old["pipeline_id"] if old is not None else None
        new_pipeline = new["pipeline_id"] if new is not None else None
        if old_pipeline == new_pipeline:
            per_pipeline = {new_pipeline: bookkeeping.moves(before, after)}
        else:
            per_pipeline = {
                p: m
                for p, m in (
                    (old_pipeline, bookkeeping.moves(before, None)),
                    (new_pipeline, bookkeeping.moves(None, after)),
                )
                if p is not None
            }
        ops: list[dict[str, Any]] = []
        for pipeline_id, moved in per_pipeline.items():
            assert pipeline_id is not None
            pipeline = pipelines[pipeline_id]
            # The pipeline the deal was judged against is still the one in force.
            pipeline_key = keys.pipeline(tenant_id, pipeline_id)
            if pipeline["version"] == 0:
                ops.append(self.op.check(pipeline_key, "attribute_not_exists(PK)"))
            else:
                ops.append(self.op.check(pipeline_key, "version = :v", v=pipeline["version"]))
            ops += self._month_writes(tenant_id, pipeline_id, moved.months, at)
            ops.append(self._board_update(tenant_id, pipeline_id, moved.board))
        return ops

    def _month_writes(
        self,
        tenant_id: str,
        pipeline_id: str,
        months: Mapping[str, Mapping[str, tuple[int, Decimal]]],
        at: str,
    ) -> list[dict[str, Any]]:
        month_keys = [keys.forecast_month(tenant_id, pipeline_id, m) for m in sorted(months)]
        found = {
            i["month"]: i for i in self.table.batch_get(month_keys, consistent=True, exact=True)
        }
        ops = []
        for month in sorted(months):
            current = found.get(month)
            version = 0 if current is None else int(current["version"])
            cells = bookkeeping.apply(bookkeeping.decode_cells(current), months[month])
            try:
                packed = bookkeeping.encode_cells(cells)
            except bookkeeping.MonthFull as full:
                raise Conflict(
                    f"the forecast of {pipeline_id} for {month} cannot hold more: {full}; "
                    "split the pipeline or its owners"
                ) from None
            state = {
                "tenant_id": tenant_id,
                "pipeline_id": pipeline_id,
                "month": month,
                bookkeeping.CELLS_ATTRIBUTE: packed,
                "version": version + 1,
                "at": at,
            }
            month_key = keys.forecast_month(tenant_id, pipeline_id, month)
            if current is None:
                condition, values = "attribute_not_exists(PK)", {}
            else:
                condition, values = "version = :v", {"v": version}
            ops.append(
                self.op.put(
                    {**month_key, **state, "type": FORECAST_MONTH_ITEM}, condition, **values
                )
            )
            snapshot = keys.forecast_snapshot(tenant_id, pipeline_id, month, at, version + 1)
            ops.append(
                self.op.put(
                    {**snapshot, **state, "type": FORECAST_SNAPSHOT_ITEM},
                    "attribute_not_exists(PK)",
                )
            )
        return ops

    def _board_update(
        self, tenant_id: str, pipeline_id: str, board: Mapping[str, Decimal]
    ) -> dict[str, Any]:
        """ADDs to the board's totals, and to its change counter (pipeline changes check it)."""
        names = {"#c": BOARD_CHANGES, **{f"#b{i}": name for i, name in enumerate(board)}}
        values: dict[str, Any] = {"one": 1, **{f"b{i}": v for i, v in enumerate(board.values())}}
        adds = ["#c :one", *(f"#b{i} :b{i}" for i in range(len(board)))]
        return self.op.update(
            keys.pipeline_board(tenant_id, pipeline_id),
            "ADD " + ", ".join(adds) + " SET #t = :type",
            None,
            {**names, "#t": "type"},
            type="pipeline_board",
            **values,
        )

    def _summary_updates(
        self, tenant_id: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
    ) -> list[dict[str, Any]]:
        """ADDs to the deal summaries of the contacts and company the change concerns. No
        condition: a contact or company deleted meanwhile never blocks a deal's change (its
        summary stays as a record nobody reads)."""
        return [
            self._summary_update(tenant_id, holder, adds)
            for holder, adds in summary_deltas(old, new).items()
        ]

    def _summary_update(
        self, tenant_id: str, holder: Holder, adds: Mapping[str, Decimal]
    ) -> dict[str, Any]:
        kind, holder_id = holder
        if kind == "contact":
            key = keys.contact_deal_summary(tenant_id, holder_id)
        else:
            key = keys.company_deal_summary(tenant_id, holder_id)
        names = {"#t": "type", "#h": f"{kind}_id", **{f"#s{i}": n for i, n in enumerate(adds)}}
        values = {f"s{i}": v for i, v in enumerate(adds.values())}
        expression = "ADD " + ", ".join(f"#s{i} :s{i}" for i in range(len(adds)))
        return self.op.update(
            key,
            expression + " SET #t = :type, #h = :holder",
            None,
            names,
            type=SUMMARY_ITEM,
            holder=holder_id,
            **values,
        )

    def _contact_links(
        self,
        tenant_id: str,
        deal_id: str,
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any] | None,
    ) -> list[dict[str, Any]]:
        before = {c["contact_id"]: c for c in (old or {}).get("contacts", [])}
        after = {c["contact_id"]: c for c in (new or {}).get("contacts", [])}
        ops = [
            self.op.delete(keys.deal_of_contact(tenant_id, c, deal_id))
            for c in before
            if c not in after
        ]
        for contact_id, link in after.items():
            if before.get(contact_id) == link:
                continue
            ops.append(
                self.op.put(
                    {
                        **keys.deal_of_contact(tenant_id, contact_id, deal_id),
                        "type": CONTACT_LINK_ITEM,
                        "tenant_id": tenant_id,
                        "deal_id": deal_id,
                        **link,
                    }
                )
            )
        return ops


def _user_of(origin: Origin) -> str | None:
    """The owner of a deal created without one: the user who creates it."""
    return origin.actor.id if origin.actor.type == ActorType.USER else None


def _first_open_stage(pipeline: Mapping[str, Any]) -> str:
    return str(next(s["id"] for s in pipeline["stages"] if s["kind"] == "open"))


def _amount(text: str, currency: str) -> str:
    """The amount, checked against the currency (a new one, or a new amount)."""
    try:
        return format_amount(parse_amount(text, currency), currency)
    except MoneyError as error:
        raise _invalid("amount", str(error)) from None


def _history(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    record: Mapping[str, Any],
    at: str,
    version: int,
    origin: Origin,
) -> dict[str, Any]:
    changes = [
        {"field": f, "previous": (old or {}).get(f), "value": (new or {}).get(f)}
        for f in HISTORY_FIELDS
        if (old or {}).get(f) != (new or {}).get(f)
    ]
    action = "created" if old is None else "deleted" if new is None else "updated"
    return {
        **keys.deal_history(record["tenant_id"], record["id"], at, version),
        "type": HISTORY_ITEM,
        "tenant_id": record["tenant_id"],
        "deal_id": record["id"],
        "at": at,
        "version": version,
        "action": action,
        "actor": origin.actor.model_dump(mode="json", exclude_none=True),
        "changes": changes,
    }


def _closing_events(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], deal: Deal, origin: Origin
) -> list[DomainEvent]:
    """DealWon or DealLost when the deal enters that status."""
    if old is not None and old["status"] == new["status"]:
        return []
    kind = {"won": events.DealWon, "lost": events.DealLost}.get(new["status"])
    if kind is None:
        return []
    return [kind.create(new["tenant_id"], origin, events.DealData(deal=deal), new["updated_at"])]
