"""Support cases in the single table: each change is one transaction.

A case's partition (`keys.case_partition`) holds the case item, its listing copy (the same
case, under the lists the case item has no index slot for), its conversation entries and
its outbox items. A change writes, in one TransactWriteItems: the case (on its version), the
listing copy, the conversation entry if any, its queue's cursor (when the queue assigns) and
unsolved counts (when the case enters or leaves them), and the outbox events.

Lists (`page`): status, queue, assignee and contact are GSI1-4 of the case item; every case,
priority, SLA state and company are GSI1-4 of the listing item. All but the SLA state are
recently updated first; the SLA state lists the most urgent (earliest due) first.

The SLA clocks (case_sla.py) are applied on every change with the tenant's policy of that
moment; `sla_next_at` is when the case's next warning or breach is due, which case_timers
keeps one schedule per case for, and `announce_due` records (once) when it fires.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from crm_core import keys
from crm_core.cases import assignment, lifecycle
from crm_core.cases.case_mail import thread_key
from crm_core.cases.case_sla import (
    SlaChange,
    announced,
    apply,
    due_alarms,
    next_alarm_at,
    sla_state,
    view,
)
from crm_core.cases.policy_store import SlaPolicyStore
from crm_core.cases.queue_store import QueueStore, open_counts
from crm_core.cases.sla_policy import SlaPolicy
from crm_core.clock import now_iso, parse_iso
from crm_core.dynamo import Item
from crm_core.errors import (
    ConcurrentChange,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from crm_core.events import cases as events
from crm_core.events.envelope import DomainEvent, Origin
from crm_core.events.outbox import outbox_put
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.patching import apply_patch
from crm_core.records.case import Case, CaseCreate, ConversationEntry, ReplyCreate
from crm_core.table import Page, Table, TransactionCancelled, read_modify_write


class CaseClosed(Exception):
    """A closed case never changes: a customer writing to it opens a follow-up case."""

    def __init__(self, case_id: str) -> None:
        super().__init__(f"the case {case_id} is closed")
        self.case_id = case_id


class DuplicateMessage(Exception):
    """The inbound email was recorded before (SES or Lambda delivered it again)."""

    def __init__(self, case_id: str) -> None:
        super().__init__(f"the email is already in case {case_id}")
        self.case_id = case_id


CASE_ITEM = "case"
# The item that says which case an email (by its Message-ID) belongs to: case_mailer writes
# it for the emails it sends, the intake for those it receives (`inbound`).
MESSAGE_ID_ITEM = "case_mail_id"
LISTING_ITEM = "case_listing"
ENTRY_ITEM = "case_entry"
FILTERS = ("status", "queue_id", "assignee_id", "contact_id", "priority", "sla", "company_id")
# The fields a PATCH may change (`type` is kept as `case_type`: `type` names the item kind).
CASE_FIELDS = (
    "subject",
    "description",
    "contact_id",
    "company_id",
    "priority",
    "case_type",
    "queue_id",
    "assignee_id",
    "status",
    "tags",
    "attributes",
)
_LISTED = {
    # filter: (index, partition of a value, the item that carries it)
    "status": ("GSI1", keys.cases_in_status, keys.CASE),
    "queue_id": ("GSI2", keys.cases_of_queue, keys.CASE),
    "assignee_id": ("GSI3", keys.cases_of_assignee, keys.CASE),
    "contact_id": ("GSI4", keys.cases_of_contact, keys.CASE),
    "priority": ("GSI2", keys.cases_of_priority, keys.LISTING),
    "sla": ("GSI3", keys.cases_in_sla_state, keys.LISTING),
    "company_id": ("GSI4", keys.cases_of_company, keys.LISTING),
}
_HIDDEN = {"PK", "SK", "tenant_id", "sla_next_at", "case_type"}


def to_case(item: Mapping[str, Any], calendar_policy: SlaPolicy | None = None) -> Case:
    """The API's form of a stored case (its SLA shown as of now, with `calendar_policy` or
    the stored due times alone)."""
    shown = {k: v for k, v in item.items() if not k.startswith(("GSI", "open#"))}
    shown["type"] = item.get("case_type")
    sla = item.get("sla") or {}
    if calendar_policy is not None:
        shown["sla"] = view(sla, calendar_policy.calendar(), datetime.now(UTC))
    else:
        shown["sla"] = {name: _stored_view(sla.get(name)) for name in sla}
    shown.setdefault("tags", [])
    shown.setdefault("attributes", {})
    shown.setdefault("reopened", 0)
    return Case.model_validate({k: v for k, v in shown.items() if k not in _HIDDEN})


def _stored_view(target: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not target or target.get("target_seconds") is None:
        return None
    due = target.get("due_at")
    return {
        "target_minutes": int(target["target_seconds"]) // 60,
        "due_at": due,
        "met_at": target.get("met_at"),
        "breached": bool(target.get("breached_at"))
        or (due is not None and target.get("met_at") is None and due <= now_iso()),
        "paused": target.get("met_at") is None and target.get("running_since") is None,
    }


def to_entry(item: Mapping[str, Any]) -> ConversationEntry:
    return ConversationEntry.model_validate(
        {
            **{k: item.get(k) for k in ConversationEntry.model_fields},
            "attachments": item.get("attachments", []),
        }
    )


def _entry_facts(entry: Mapping[str, Any]) -> events.CaseEntryFacts:
    return events.CaseEntryFacts(
        id=entry["id"],
        kind=entry["kind"],
        public=entry["public"],
        excerpt=entry["body"][: events.EXCERPT_CHARS],
        author_id=entry.get("author_id"),
        from_address=entry.get("from_address"),
        message_id=entry.get("message_id"),
        attachments=len(entry.get("attachments", [])),
        created_at=entry["created_at"],
    )


class CaseStore:
    def __init__(self, table: Table, clock: Callable[[], str] = now_iso) -> None:
        self.table = table
        self.op = table.op
        self.clock = clock
        self.policies = SlaPolicyStore(table, clock)
        self.queues = QueueStore(table, clock)

    # Reads ------------------------------------------------------------------------------
    def load(self, tenant_id: str, case_id: str, consistent: bool = True) -> Item:
        item = self.table.get(keys.case(tenant_id, case_id), consistent=consistent)
        if item is None or item.get("type") != CASE_ITEM:
            raise NotFound("no such case")
        return item

    def get(self, tenant_id: str, case_id: str) -> Case:
        return to_case(self.load(tenant_id, case_id), self.policies.get(tenant_id))

    def page(
        self, tenant_id: str, by: str | None, value: str | None, limit: int, cursor: str | None
    ) -> Page:
        """One page of cases of one filter (FILTERS), or all of them."""
        if by is None or value is None:
            listing = ListQuery("cases", keys.cases_of_tenant(tenant_id), "GSI1")
            return self.table.query(listing, limit, cursor)
        index, partition_of, _ = _LISTED[by]
        listing = ListQuery(f"cases-by-{by}", partition_of(tenant_id, value), index)
        return self.table.query(listing, limit, cursor, newest_first=by != "sla")

    def conversation(self, tenant_id: str, case_id: str, limit: int, cursor: str | None) -> Page:
        """The case's conversation, oldest first (a case that never was is NotFound)."""
        self.load(tenant_id, case_id, consistent=False)
        listing = ListQuery("case-conversation", keys.case_partition(tenant_id, case_id))
        return self.table.query(
            listing, limit, cursor, newest_first=False, sort_prefix=keys.MESSAGE_PREFIX
        )

    def attachment(
        self, tenant_id: str, case_id: str, entry_id: str, index: int
    ) -> Mapping[str, Any]:
        """An entry's attachment that was kept (NotFound: no such entry or attachment, or
        one only listed, being over the limits)."""
        entry = self.table.get(keys.case_message(tenant_id, case_id, entry_id), consistent=False)
        attachments = (entry or {}).get("attachments") or []
        if entry is None or entry.get("type") != ENTRY_ITEM or index >= len(attachments):
            raise NotFound("no such attachment")
        attachment: Mapping[str, Any] = attachments[index]
        if not attachment.get("s3_key"):
            raise NotFound("the attachment was listed, not kept (over the size or count limit)")
        return attachment

    # Writes -----------------------------------------------------------------------------
    def create(
        self,
        tenant_id: str,
        body: CaseCreate,
        origin: Origin,
        *,
        follow_up_of: str | None = None,
        first_entry: Mapping[str, Any] | None = None,
        inbound_message_id: str | None = None,
    ) -> Case:
        """Open a case; with a queue and no assignee, the queue's policy assigns it.
        `first_entry` (an inbound email, `inbound_entry`) joins its conversation in the same
        transaction, with the claim of its `inbound_message_id` (DuplicateMessage when an
        earlier delivery of the email recorded it)."""
        data = body.model_dump(mode="json", exclude_none=True)
        case_id = new_ulid()

        self._check_references(tenant_id, data, None)

        def attempt() -> Case:
            claims = self._message_claims(tenant_id, case_id, inbound_message_id)
            at = self.clock()
            queue = self._queue(tenant_id, body.queue_id)
            policy = self.policies.get(tenant_id)
            item: dict[str, Any] = {
                **keys.case(tenant_id, case_id),
                "type": CASE_ITEM,
                "id": case_id,
                "tenant_id": tenant_id,
                **{k: v for k, v in data.items() if k != "type"},
                "case_type": data.get("type"),
                "reopened": 0,
                "follow_up_of": follow_up_of,
                "created_at": at,
                "updated_at": at,
                "created_by": origin.actor.id,
                "version": 1,
            }
            by_policy = None
            turn = None
            if queue is not None and not item.get("assignee_id"):
                member, turn = _assign(queue)
                if member is not None:
                    item["assignee_id"], by_policy = member, queue["assignment"]
            item = {k: v for k, v in item.items() if v is not None}
            wrote = first_entry is not None
            change = SlaChange(parse_iso(at), item["status"], customer_wrote=wrote)
            item["sla"] = apply(policy, item["priority"], {}, change)
            self._settle_sla(item, policy, at)
            case = to_case(item, policy)
            published: list[DomainEvent] = [
                events.CaseOpened.create(tenant_id, origin, events.CaseData(case=case), at)
            ]
            if item.get("assignee_id"):
                data_ = events.CaseAssignedData(case=case, by_policy=by_policy)
                published.append(events.CaseAssigned.create(tenant_id, origin, data_, at))
            entry: dict[str, Any] | None = None
            if first_entry is not None:
                entry = {
                    **first_entry,
                    **keys.case_message(tenant_id, case_id, first_entry["id"]),
                    "type": ENTRY_ITEM,
                    "case_id": case_id,
                    "created_at": first_entry.get("created_at", at),
                }
                data_r = events.CaseRepliedData(case=case, entry=_entry_facts(entry))
                published.append(events.CaseReplied.create(tenant_id, origin, data_r, at))
            ops = self._queue_updates(tenant_id, None, item, queue, turn) + claims
            self._commit(None, item, ops, published, entry)
            return case

        return read_modify_write(attempt, "queue")

    def update(
        self,
        tenant_id: str,
        case_id: str,
        changes: Mapping[str, Any],
        expected: int | None,
        origin: Origin,
    ) -> Case:
        def attempt() -> Case:
            old = self._load_for_write(tenant_id, case_id, expected)
            stored_changes = {("case_type" if k == "type" else k): v for k, v in changes.items()}
            new = apply_patch(old, stored_changes)
            if all(old.get(k) == new.get(k) for k in CASE_FIELDS):
                return to_case(old, self.policies.get(tenant_id))
            self._check_references(tenant_id, new, old)
            return self._change(old, new, origin, reopened_by="agent")

        return read_modify_write(attempt, "case")

    def reply(
        self, tenant_id: str, case_id: str, body: ReplyCreate, origin: Origin
    ) -> tuple[Case, ConversationEntry]:
        """An agent's public reply (a response, emailed to the contact) or internal note,
        with the status the agent chose with it."""
        entry_id = new_ulid()

        def attempt() -> tuple[Case, ConversationEntry]:
            old = self._load_for_write(tenant_id, case_id, None)
            if old["status"] == lifecycle.CLOSED_FOR_GOOD:
                raise _invalid("status", "the case is closed: open a new case")
            new = dict(old)
            if body.public:
                new["status"] = lifecycle.after_agent_reply(old["status"], body.status)
                if old.get("contact_id") is None:
                    raise _invalid("public", "the case has no contact to reply to")
            elif body.status is not None:
                new["status"] = body.status
            at = self.clock()
            entry: dict[str, Any] = {
                **keys.case_message(tenant_id, case_id, entry_id),
                "type": ENTRY_ITEM,
                "id": entry_id,
                "case_id": case_id,
                "kind": "reply" if body.public else "note",
                "public": body.public,
                "body": body.body,
                "author_id": origin.actor.id,
                "attachments": [],
                "created_at": at,
            }
            case = self._change(old, new, origin, entry=entry, agent_replied=body.public, at=at)
            return case, to_entry(entry)

        return read_modify_write(attempt, "case")

    def customer_wrote(
        self,
        tenant_id: str,
        case_id: str,
        first_entry: Mapping[str, Any],
        origin: Origin,
        inbound_message_id: str | None = None,
    ) -> Case:
        """The case's contact wrote (an inbound email, `inbound_entry`): the entry joins the
        conversation, a pending, held or solved case goes back to open (a solved one is
        reopened by the customer) and the next-response clock starts. CaseClosed for a
        closed case (the caller opens a follow-up), DuplicateMessage for an email an
        earlier delivery recorded."""

        def attempt() -> Case:
            claims = self._message_claims(tenant_id, case_id, inbound_message_id)
            old = self._load_for_write(tenant_id, case_id, None)
            if old["status"] == lifecycle.CLOSED_FOR_GOOD:
                raise CaseClosed(case_id)
            new = dict(old)
            new["status"] = lifecycle.after_customer_reply(old["status"])
            at = self.clock()
            entry = {
                **first_entry,
                **keys.case_message(tenant_id, case_id, first_entry["id"]),
                "type": ENTRY_ITEM,
                "case_id": case_id,
                "created_at": at,
            }
            return self._change(
                old,
                new,
                origin,
                entry=entry,
                customer_wrote=True,
                reopened_by="customer",
                at=at,
                extra=claims,
            )

        return read_modify_write(attempt, "case")

    def _message_claims(
        self, tenant_id: str, case_id: str, message_id: str | None
    ) -> list[dict[str, Any]]:
        """The Put that records an inbound email's Message-ID for its case (once: a second
        delivery finds it, DuplicateMessage), which also threads replies naming it."""
        if message_id is None:
            return []
        key = keys.case_message_id(tenant_id, thread_key(message_id))
        known = self.table.get(key)
        if known is not None and known.get("inbound"):
            raise DuplicateMessage(str(known["case_id"]))
        claim = {
            **key,
            "type": MESSAGE_ID_ITEM,
            "tenant_id": tenant_id,
            "case_id": case_id,
            "message_id": message_id,
            "inbound": True,
        }
        return [self.op.put(claim, "attribute_not_exists(PK) OR attribute_not_exists(inbound)")]

    def announce_due(self, tenant_id: str, case_id: str, now: datetime) -> list[DomainEvent]:
        """Record the warnings and breaches due by `now` and not yet announced, with their
        events, in one transaction on the case's version: a timer firing twice (Scheduler
        delivers at least once) announces each once. The events (none when nothing was due)."""

        def attempt() -> list[DomainEvent]:
            try:
                old = self.load(tenant_id, case_id)
            except NotFound:
                return []
            due = due_alarms(old.get("sla") or {}, now)
            if not due:
                return []
            policy = self.policies.get(tenant_id)
            new = dict(old)
            at = max(self.clock(), old["updated_at"])
            sla = old["sla"]
            for target, alarm in due:
                sla = announced(sla, target, alarm, now)
            new["sla"] = sla
            self._settle_sla(new, policy, at, now=now)
            new["version"] = old["version"] + 1
            case = to_case(new, policy)
            origin = Origin.system("case_timers")
            published: list[DomainEvent] = []
            for target, alarm in due:
                kind = events.CaseSlaBreached if alarm == "breach" else events.CaseSlaWarning
                data = events.CaseSlaData.model_validate(
                    {"case": case, "target": target, "due_at": old["sla"][target]["due_at"]}
                )
                published.append(kind.create(tenant_id, origin, data, at))
            self._commit(old, new, [], published, None)
            return published

        return read_modify_write(attempt, "case")

    # The rules of a change --------------------------------------------------------------
    def _change(
        self,
        old: Item,
        new: dict[str, Any],
        origin: Origin,
        *,
        entry: dict[str, Any] | None = None,
        agent_replied: bool = False,
        customer_wrote: bool = False,
        reopened_by: str = "agent",
        at: str | None = None,
        extra: Sequence[dict[str, Any]] = (),
    ) -> Case:
        tenant_id = old["tenant_id"]
        at = max(at or self.clock(), old["updated_at"])
        if new["status"] != old["status"] and not lifecycle.allowed(old["status"], new["status"]):
            raise _invalid(
                "status",
                f"a case cannot move from {old['status']} to {new['status']} (it may move to: "
                f"{', '.join(lifecycle.moves_of(old['status'])) or 'nothing, it is closed'})",
            )
        if old["status"] == lifecycle.CLOSED_FOR_GOOD:
            raise _invalid("status", "a closed case does not change: open a new case")
        policy = self.policies.get(tenant_id)
        queue = turn = None
        if new.get("queue_id") != old.get("queue_id"):
            queue = self._queue(tenant_id, new.get("queue_id"))
        if queue is not None and not new.get("assignee_id"):
            member, turn = _assign(queue)
            if member is not None:
                new["assignee_id"] = member
        was_solved = old["status"] in ("solved", "closed")
        now_solved = new["status"] in ("solved", "closed")
        if new["status"] == "solved" and old["status"] != "solved":
            new["solved_at"] = at
        if new["status"] == "closed":
            new["closed_at"] = at
        if was_solved and not now_solved:
            new["reopened"] = int(old.get("reopened", 0)) + 1
            new.pop("solved_at", None)
        if agent_replied and not old.get("first_responded_at"):
            new["first_responded_at"] = at
        change = SlaChange(
            parse_iso(at),
            new["status"],
            old["status"],
            new["priority"] if new["priority"] != old["priority"] else None,
            agent_replied=agent_replied,
            customer_wrote=customer_wrote,
        )
        new["sla"] = apply(policy, old["priority"], old.get("sla") or {}, change)
        self._settle_sla(new, policy, at)
        new.update(updated_at=at, version=old["version"] + 1)
        case = to_case(new, policy)
        published = self._events(old, new, case, origin, at, entry, reopened_by)
        ops = self._queue_updates(tenant_id, old, new, queue, turn) + list(extra)
        self._commit(old, new, ops, published, entry)
        return case

    def _events(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        case: Case,
        origin: Origin,
        at: str,
        entry: Mapping[str, Any] | None,
        reopened_by: str,
    ) -> list[DomainEvent]:
        tenant_id = new["tenant_id"]
        published: list[DomainEvent] = []
        if entry is not None:
            data = events.CaseRepliedData(case=case, entry=_entry_facts(entry))
            published.append(events.CaseReplied.create(tenant_id, origin, data, at))
        if new["status"] != old["status"]:
            status = events.CaseStatusData(case=case, previous_status=old["status"])
            published.append(events.CaseStatusChanged.create(tenant_id, origin, status, at))
            if new["status"] == "solved":
                published.append(
                    events.CaseSolved.create(tenant_id, origin, events.CaseData(case=case), at)
                )
            elif old["status"] == "solved" and new["status"] != "closed":
                by = "customer" if reopened_by == "customer" else "agent"
                reopened = events.CaseReopenedData(case=case, by=by)
                published.append(events.CaseReopened.create(tenant_id, origin, reopened, at))
        if new.get("assignee_id") != old.get("assignee_id"):
            assigned = events.CaseAssignedData(
                case=case, previous_assignee_id=old.get("assignee_id")
            )
            published.append(events.CaseAssigned.create(tenant_id, origin, assigned, at))
        changed = [f for f in CASE_FIELDS if f not in ("status", "assignee_id")]
        fields = [f for f in changed if old.get(f) != new.get(f)]
        if fields:
            data_u = events.CaseUpdatedData(
                case=case,
                changed=["type" if f == "case_type" else f for f in fields],
                previous={("type" if f == "case_type" else f): old.get(f) for f in fields},
            )
            published.append(events.CaseUpdated.create(tenant_id, origin, data_u, at))
        return published

    def _settle_sla(
        self, item: dict[str, Any], policy: SlaPolicy, at: str, now: datetime | None = None
    ) -> None:
        """The case's SLA state (for the lists) and the moment of its next alarm."""
        sla = item.get("sla") or {}
        moment = now or parse_iso(at)
        state = sla_state(sla, policy.calendar(), moment)
        if state:
            item["sla_state"] = state
        else:
            item.pop("sla_state", None)
        coming = next_alarm_at(sla)
        if coming:
            item["sla_next_at"] = coming
        else:
            item.pop("sla_next_at", None)

    def _queue_updates(
        self,
        tenant_id: str,
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any],
        queue: Item | None,
        turn: tuple[int, int] | None,
    ) -> list[dict[str, Any]]:
        """The queue Updates of a change, one per queue: the turn taken in the queue that
        assigned, and the unsolved counts the case leaves (old queue and assignee) and
        enters (new ones), each counted only while the case is unsolved."""

        def slot(item: Mapping[str, Any] | None) -> tuple[str, str | None] | None:
            if item is None or item["status"] not in lifecycle.UNSOLVED or not item.get("queue_id"):
                return None
            return item["queue_id"], item.get("assignee_id")

        deltas: dict[str, dict[str | None, int]] = {}
        before, after = slot(old), slot(new)
        if before != after:
            for place, delta in ((before, -1), (after, 1)):
                if place is not None:
                    per_member = deltas.setdefault(place[0], {})
                    per_member[place[1]] = per_member.get(place[1], 0) + delta
        turns = {queue["id"]: turn} if queue is not None and turn is not None else {}
        ops = []
        for queue_id in sorted(set(deltas) | set(turns)):
            known = queue is not None and queue["id"] == queue_id
            if not known and self.queues.find(tenant_id, queue_id) is None:
                continue  # deleted since: nothing to count
            ops.append(
                self.queues.case_update(
                    tenant_id, queue_id, turn=turns.get(queue_id), deltas=deltas.get(queue_id)
                )
            )
        return ops

    # The transaction --------------------------------------------------------------------
    def _commit(
        self,
        old: Mapping[str, Any] | None,
        new: dict[str, Any],
        ops: list[dict[str, Any]],
        published: Sequence[DomainEvent],
        entry: Mapping[str, Any] | None,
    ) -> None:
        stored = indexed_case(new)
        key = keys.case(new["tenant_id"], new["id"])
        if old is None:
            writes = [self.op.put(stored, "attribute_not_exists(PK)")]
        else:
            writes = [
                self.op.update_changed(indexed_case(old), stored, "version = :v", v=old["version"])
            ]
        writes.append(self.op.put(listing_copy(new)))
        if entry is not None:
            writes.append(self.op.put(dict(entry), "attribute_not_exists(PK)"))
        writes += ops
        writes += [outbox_put(self.op, key, event) for event in published]
        try:
            self.table.transact(writes)
        except TransactionCancelled:
            raise ConcurrentChange("the case or its queue changed meanwhile") from None

    def _check_references(
        self, tenant_id: str, new: Mapping[str, Any], old: Mapping[str, Any] | None
    ) -> None:
        """The contact and company a case names are the tenant's (another tenant's id is an
        id this tenant does not have)."""
        for field, key_of, kind in (
            ("contact_id", keys.contact, keys.CONTACT_ITEM),
            ("company_id", keys.company, "company"),
        ):
            value = new.get(field)
            if value and value != (old or {}).get(field):
                found = self.table.get(key_of(tenant_id, value), consistent=False)
                if found is None or found.get("type") != kind:
                    raise _invalid(field, f"no such {field.removesuffix('_id')}: {value}")

    def _queue(self, tenant_id: str, queue_id: str | None) -> Item | None:
        if queue_id is None:
            return None
        queue = self.queues.find(tenant_id, queue_id)
        if queue is None:
            raise _invalid("queue_id", f"no such queue: {queue_id}")
        return queue

    def _load_for_write(self, tenant_id: str, case_id: str, expected: int | None) -> Item:
        item = self.load(tenant_id, case_id)
        if expected is not None and item["version"] != expected:
            raise PreconditionFailed(f"the case is at version {item['version']}, not {expected}")
        return item


def _assign(queue: Mapping[str, Any]) -> tuple[str | None, tuple[int, int] | None]:
    """The member the queue's policy takes, and the turn to record (None: nobody)."""
    member, cursor = assignment.choose(
        queue["assignment"],
        queue.get("members", []),
        int(queue.get("rr_cursor", 0)),
        open_counts(queue),
    )
    if member is None:
        return None, None
    return member, (int(queue.get("assign_seq", 0)), cursor)


def _invalid(field: str, message: str) -> Unprocessable:
    return Unprocessable(message, errors=[{"loc": ["body", field], "msg": message}])


def _sort(item: Mapping[str, Any]) -> str:
    return f"{item['updated_at']}#{item['id']}"


def indexed_case(item: Mapping[str, Any]) -> dict[str, Any]:
    """The case item as stored: its index keys (GSI1-4) made from its fields. Every writer
    of a case (the store, ratings) stores it through this and `listing_copy`."""
    tenant_id = item["tenant_id"]
    stored = {k: v for k, v in item.items() if not k.startswith("GSI")}
    stored["GSI1PK"], stored["GSI1SK"] = (
        keys.cases_in_status(tenant_id, item["status"]),
        _sort(item),
    )
    for index, field, partition_of in (
        ("GSI2", "queue_id", keys.cases_of_queue),
        ("GSI3", "assignee_id", keys.cases_of_assignee),
        ("GSI4", "contact_id", keys.cases_of_contact),
    ):
        if item.get(field):
            stored[f"{index}PK"] = partition_of(tenant_id, item[field])
            stored[f"{index}SK"] = _sort(item)
    return stored


def listing_copy(item: Mapping[str, Any]) -> dict[str, Any]:
    """The case's listing copy: the same case, indexed by what its item has no room for."""
    tenant_id = item["tenant_id"]
    listing = {k: v for k, v in item.items() if not k.startswith("GSI")}
    listing.update(keys.case_listing(tenant_id, item["id"]), type=LISTING_ITEM)
    listing["GSI1PK"], listing["GSI1SK"] = keys.cases_of_tenant(tenant_id), _sort(item)
    listing["GSI2PK"] = keys.cases_of_priority(tenant_id, item["priority"])
    listing["GSI2SK"] = _sort(item)
    state = item.get("sla_state")
    if state:
        due = min(
            (t["due_at"] for t in (item.get("sla") or {}).values() if t.get("due_at")),
            default=item["updated_at"],
        )
        listing["GSI3PK"] = keys.cases_in_sla_state(tenant_id, state)
        listing["GSI3SK"] = f"{due}#{item['id']}"
    if item.get("company_id"):
        listing["GSI4PK"] = keys.cases_of_company(tenant_id, item["company_id"])
        listing["GSI4SK"] = _sort(item)
    return listing
