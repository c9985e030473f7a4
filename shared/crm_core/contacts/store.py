"""Contacts in the single table: the item form, and every read and write with its rules.

Cross-item rules (unique email, tag membership, company contact counts, merge) are kept in
one TransactWriteItems, so a crash can never leave half of a change behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crm_core import keys, normalize
from crm_core.clock import now_iso
from crm_core.contacts import suppression
from crm_core.contacts.items import (
    contact_as_read,
    load_contact,
    load_contact_for_write,
    resolve,
    revision_update,
    stored,
)
from crm_core.contacts.suppression import SuppressionReason
from crm_core.dynamo import Item
from crm_core.errors import (
    ConcurrentChange,
    Conflict,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from crm_core.events import contacts as events
from crm_core.events.envelope import DomainEvent, Origin
from crm_core.events.outbox import outbox_put
from crm_core.fields import MAX_TAGS
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.patching import apply_patch
from crm_core.records.contact import Contact, ContactCreate, ContactWithDeals, EmailConsent
from crm_core.records.deal_totals import deal_totals
from crm_core.scores.ranking import contacts_by_score
from crm_core.scores.state import score_now
from crm_core.table import Page, Table, TransactionCancelled, read_modify_write

CONTACT = keys.CONTACT_ITEM
REDIRECT = keys.REDIRECT_ITEM
EMAIL_OWNER = "contact_email"
TAG_MEMBER = "contact_tag"
MAX_OTHER_EMAILS = 20
# Fields a merge copies from the merged contact into the survivor's blanks.
_FILLABLE = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "title",
    "company_id",
    "owner_id",
    "country",
)
_API_FIELDS = tuple(Contact.model_fields)
SUBSCRIBED = EmailConsent.SUBSCRIBED.value
UNSUBSCRIBED = EmailConsent.UNSUBSCRIBED.value
# The parts a caller writes in the same transaction as a contact, given the contact's item
# (a lead's claim on the contact it became, say).
ExtraWrites = Callable[[Item], Sequence[dict[str, Any]]]


# The contact's own writes change only what they change (`Op.update_changed`), so they
# never erase a concurrent update of the summary the activities function keeps on it.


class PersonUnsubscribed(Conflict):
    """A write would subscribe a person who unsubscribed (the contact, or an address of
    it): only their own opt-in can (decision: an unsubscribe is the person's)."""

    type_slug = "unsubscribed"


def person_unsubscribed() -> PersonUnsubscribed:
    return PersonUnsubscribed(
        "the person unsubscribed from email, and only their own opt-in (a lead form with "
        "consent, say) can subscribe them again; no one at the tenant can",
        errors=[
            {
                "loc": ["body", "email_consent"],
                "msg": "the person unsubscribed: only their own opt-in can subscribe them",
            }
        ],
    )


@dataclass(frozen=True)
class OptIn:
    """The person's own opt-in to email at `email`: a signed lead that carried consent. It
    subscribes the contact and lifts the address's `unsubscribed` suppression."""

    email: str
    lead_id: str
    source_id: str
    at: str

    def evidence(self) -> dict[str, str]:
        return {"lead_id": self.lead_id, "source_id": self.source_id, "at": self.at}


def to_contact(item: Mapping[str, Any]) -> Contact:
    values = {k: item[k] for k in _API_FIELDS if k in item}
    values["score"] = score_now(item)
    values["activity_counts"] = {
        k.removeprefix(keys.ACTIVITY_COUNT_PREFIX): v
        for k, v in sorted(item.items())
        if k.startswith(keys.ACTIVITY_COUNT_PREFIX) and v
    }
    return Contact.model_validate(values)


class ContactStore:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.op = table.op

    # Reads ------------------------------------------------------------------------------
    def load(self, tenant_id: str, contact_id: str) -> Item:
        """The stored contact item; NotFound, or Moved when it was merged into another."""
        return load_contact(self.table, tenant_id, contact_id)

    def get(self, tenant_id: str, contact_id: str) -> Contact:
        return to_contact(self.load(tenant_id, contact_id))

    def get_with_deals(self, tenant_id: str, contact_id: str) -> ContactWithDeals:
        """The contact's page: the contact and its deal summary, read together in one
        BatchGetItem (strongly consistent, for the ETag; the summary's sums exactly). A
        merged contact is Moved, as `load`."""
        contact_key = keys.contact(tenant_id, contact_id)
        summary_key = keys.contact_deal_summary(tenant_id, contact_id)
        found = {
            i["SK"]: i
            for i in self.table.batch_get(
                [contact_key, summary_key],
                consistent=True,
                exact=lambda key: key["SK"] == keys.SUMMARY,
            )
        }
        item = contact_as_read(self.table, tenant_id, contact_id, found.get(contact_key["SK"]))
        contact = to_contact(item)
        return ContactWithDeals(**dict(contact), deals=deal_totals(found.get(keys.SUMMARY)))

    def _load_for_write(self, tenant_id: str, contact_id: str, expected: int | None) -> Item:
        item = load_contact_for_write(self.table, tenant_id, contact_id)
        if expected is not None and item["version"] != expected:
            raise PreconditionFailed(f"the contact is at version {item['version']}, not {expected}")
        return item

    # Create -----------------------------------------------------------------------------
    def create(
        self,
        tenant_id: str,
        data: ContactCreate,
        origin: Origin,
        *,
        attribution: dict[str, Any] | None = None,
        extra_writes: ExtraWrites | None = None,
        opt_in: OptIn | None = None,
    ) -> Contact:
        """A new contact. `attribution` is the CRM's own (the lead processor's); `also`
        adds the caller's parts to the transaction; `opt_in` subscribes it (the person's
        own consent, with its evidence).

        An address whose person unsubscribed (a contact deleted since, say) keeps them
        unsubscribed: asked to subscribe it, PersonUnsubscribed (409); else the contact is
        created `unsubscribed`, as the person chose."""
        now = now_iso()
        item: dict[str, Any] = {
            "type": CONTACT,
            "id": new_ulid(),
            "tenant_id": tenant_id,
            **apply_patch({}, data.model_dump(mode="json", exclude_none=True)),
            "other_emails": [],
            "created_at": now,
            "updated_at": now,
            "created_by": origin.actor.id,
            "version": 1,
        }
        if attribution:
            item["attribution"] = attribution
        lifts: list[dict[str, Any]] = []
        if opt_in is not None:
            item.update(email_consent=SUBSCRIBED, consent_source=opt_in.evidence())
            lifts = self._lift(tenant_id, opt_in.email)
        try:
            return self._insert(item, origin, extra_writes, lifts, check=opt_in is None)
        except PersonUnsubscribed:
            if item["email_consent"] == SUBSCRIBED:
                raise
        # The address's person unsubscribed: the record says so (one write more, only then).
        item["email_consent"] = UNSUBSCRIBED
        return self._insert(item, origin, extra_writes, lifts, check=False)

    def _insert(
        self,
        item: dict[str, Any],
        origin: Origin,
        extra_writes: ExtraWrites | None,
        lifts: list[dict[str, Any]],
        *,
        check: bool,
    ) -> Contact:
        tenant_id = item["tenant_id"]
        ops = [self.op.put(stored(item), "attribute_not_exists(PK)")]
        ops += self._email_claims(item, [item.get("email")])
        ops += self._tag_changes(item, set(), set(item["tags"]))
        ops += self._company_counts(tenant_id, {item.get("company_id"): 1})
        ops += self._consent_parts(None, item, check=check) + lifts
        contact = to_contact(item)
        event = events.ContactCreated.create(
            tenant_id, origin, events.ContactData(contact=contact), item["created_at"]
        )
        self._write(ops, item, event, extra_writes(item) if extra_writes else ())
        return contact

    # Update -----------------------------------------------------------------------------
    def update(
        self,
        tenant_id: str,
        contact_id: str,
        changes: dict[str, Any],
        expected: int | None,
        origin: Origin,
        *,
        by_person: bool = True,
    ) -> Contact:
        """`by_person` False: a function's change (a deal's promotion), which a person's
        later choice of stage overrides, and not the other way round."""
        asked = changes.get("email_consent")

        def attempt() -> Contact:
            old = self._load_for_write(tenant_id, contact_id, expected)
            if asked is not None and asked != UNSUBSCRIBED and _unsubscribed(old):
                # Back to subscribed, or to unknown (the record would lie): the person's.
                raise person_unsubscribed()
            new = {
                **apply_patch(old, changes),
                "updated_at": now_iso(),
                "version": old["version"] + 1,
            }
            if new.get("phone") and {"phone", "country"} & changes.keys():
                # The patch model could use only a country sent with it; the stored one is
                # the hint for a national number, as on create.
                new["phone"] = normalize.phone(new["phone"], new.get("country"))
            if new.get("email") is None and new.get("phone") is None:
                raise Unprocessable(
                    "a contact needs an email or a phone",
                    errors=[{"loc": ["body", "email"], "msg": "cannot clear both email and phone"}],
                )
            email_ops: list[dict[str, Any]] = []
            if new.get("email") != old.get("email"):
                email_ops += self._email_releases(old, [old.get("email")])
                others = old.get("other_emails", [])
                if new.get("email") in others:
                    # Promoting a merged address: this contact already owns it. (Decided
                    # before the item's write is built, so the stored list loses it too.)
                    new["other_emails"] = [e for e in others if e != new["email"]]
                else:
                    email_ops += self._email_claims(new, [new.get("email")])
            if by_person and new.get("lifecycle_stage") != old.get("lifecycle_stage"):
                # A person's choice of stage: scoring does not undo it (decision 42).
                new["stage_changed_at"] = new["updated_at"]
            ops = [revision_update(self.op, old, new)]
            ops += email_ops
            ops += self._tag_changes(new, set(old.get("tags", [])), set(new.get("tags", [])))
            ops += self._company_counts(
                tenant_id, _deltas(old.get("company_id"), new.get("company_id"))
            )
            ops += self._consent_parts(old, new, check=asked == SUBSCRIBED)
            after = to_contact(new)
            event = events.contact_updated(tenant_id, origin, to_contact(old), after)
            self._write(ops, new, event)
            return after

        return read_modify_write(attempt, "contact")

    def write_revision(
        self,
        tenant_id: str,
        old: Item,
        new: dict[str, Any],
        origin: Origin,
        *,
        extra_writes: ExtraWrites | None = None,
        opt_in: OptIn | None = None,
    ) -> Contact:
        """Write `new`, a revision of `old` (the contact as just read, strongly consistent)
        that keeps its email: one attempt, for a caller that reads, decides and retries
        itself (the lead processor filling blanks from a lead, an unsubscribe). `opt_in`
        subscribes it, as on create. ConcurrentChange when the contact (or the opted-in
        address's suppression) changed since it was read; Unprocessable when its new
        company is gone."""
        if new.get("email") != old.get("email"):
            raise ValueError("write_revision keeps the contact's email")
        new = {**new, "updated_at": now_iso(), "version": old["version"] + 1}
        lifts: list[dict[str, Any]] = []
        if opt_in is not None:
            new.update(email_consent=SUBSCRIBED, consent_source=opt_in.evidence())
            lifts = self._lift(tenant_id, opt_in.email)
        ops = [revision_update(self.op, old, new)]
        ops += self._tag_changes(new, set(old.get("tags", [])), set(new.get("tags", [])))
        ops += self._company_counts(
            tenant_id, _deltas(old.get("company_id"), new.get("company_id"))
        )
        ops += self._consent_parts(old, new, check=False) + lifts
        after = to_contact(new)
        event = events.contact_updated(tenant_id, origin, to_contact(old), after)
        self._write(ops, new, event, extra_writes(new) if extra_writes else ())
        return after

    # Delete -----------------------------------------------------------------------------
    def delete(self, tenant_id: str, contact_id: str, expected: int | None, origin: Origin) -> None:
        read_modify_write(
            lambda: self._delete_once(tenant_id, contact_id, expected, origin), "contact"
        )

    def _delete_once(
        self, tenant_id: str, contact_id: str, expected: int | None, origin: Origin
    ) -> None:
        old = self._load_for_write(tenant_id, contact_id, expected)
        ops = [
            self.op.delete(keys.contact(tenant_id, contact_id), "version = :v", v=old["version"])
        ]
        ops += self._email_releases(old, [old.get("email"), *old.get("other_emails", [])])
        ops += self._tag_changes(old, set(old.get("tags", [])), set())
        ops += self._company_counts(tenant_id, {old.get("company_id"): -1})
        if _unsubscribed(old):
            # The person's unsubscribe outlives the contact: its addresses stay suppressed
            # (they are already, unless it unsubscribed before the list kept unsubscribes).
            ops += suppression.suppress_all(
                self.op, tenant_id, suppression.addresses(old), _UNSUBSCRIBE, now_iso()
            )
        event = events.ContactDeleted.create(
            tenant_id,
            origin,
            events.ContactDeletedData(
                contact_id=contact_id,
                company_id=old.get("company_id"),
                owner_id=old.get("owner_id"),
            ),
        )
        self._write(ops, old, event)

    # Merge ------------------------------------------------------------------------------
    def merge(
        self,
        tenant_id: str,
        target_id: str,
        from_id: str,
        expected: int | None,
        origin: Origin,
    ) -> Contact:
        if target_id == from_id:
            raise Unprocessable(
                "a contact cannot be merged into itself",
                errors=[{"loc": ["body", "from_id"], "msg": "same as the target"}],
            )
        return read_modify_write(
            lambda: self._merge_once(tenant_id, target_id, from_id, expected, origin), "contact"
        )

    def _merge_once(
        self,
        tenant_id: str,
        target_id: str,
        from_id: str,
        expected: int | None,
        origin: Origin,
    ) -> Contact:
        target = self._load_for_write(tenant_id, target_id, expected)
        try:
            loser = self._load_for_write(tenant_id, from_id, None)
        except NotFound:
            raise Unprocessable(
                "from_id names no contact of yours",
                errors=[{"loc": ["body", "from_id"], "msg": "no such contact"}],
            ) from None
        except Conflict as exc:
            raise Conflict(f"contact {from_id} was already merged", **exc.extra) from None
        survivor = _merged(target, loser)
        now = now_iso()
        survivor.update(updated_at=now, version=target["version"] + 1)
        redirect = {
            **keys.contact(tenant_id, from_id),
            "type": REDIRECT,
            "id": from_id,
            "tenant_id": tenant_id,
            "merged_into": target_id,
            "merged_at": now,
            "version": loser["version"] + 1,
        }
        moved_emails = [e for e in [loser.get("email"), *loser.get("other_emails", [])] if e]
        ops = [
            revision_update(self.op, target, survivor),
            self.op.put(redirect, "version = :v", v=loser["version"]),
        ]
        ops += [
            self.op.update(
                keys.contact_email(tenant_id, email),
                "SET contact_id = :to",
                "contact_id = :loser",
                to=target_id,
                loser=from_id,
            )
            for email in moved_emails
        ]
        ops += self._tag_changes(loser, set(loser.get("tags", [])), set())
        ops += self._tag_changes(survivor, set(target.get("tags", [])), set(survivor["tags"]))
        counts = _deltas(target.get("company_id"), survivor.get("company_id"))
        if loser.get("company_id"):
            counts[loser["company_id"]] = counts.get(loser["company_id"], 0) - 1
        ops += self._company_counts(tenant_id, counts)
        # An unsubscribe kept by the merge covers every address the survivor now holds.
        ops += self._consent_parts(target, survivor, check=False)
        contact = to_contact(survivor)
        event = events.ContactMerged.create(
            tenant_id,
            origin,
            events.ContactMergedData(survivor_id=target_id, merged_id=from_id, contact=contact),
            now,
        )
        self._write(ops, survivor, event)
        return contact

    # Lists ------------------------------------------------------------------------------
    def list_recent(self, tenant_id: str, limit: int, cursor: str | None) -> Page:
        listing = ListQuery("contacts", keys.contacts_by_updated(tenant_id), "GSI1")
        return self.table.query(listing, limit, cursor)

    def list_by_stage(
        self,
        tenant_id: str,
        stage: str,
        limit: int,
        cursor: str | None,
        min_score: float | None = None,
    ) -> Page:
        """The stage's contacts, highest score first (and at least `min_score`): one GetItem
        and a Query per score rank (crm_core/scores/ranking.py)."""
        return contacts_by_score(
            self.table, tenant_id, stage, limit, cursor, min_score, clock=time.time
        )

    def list_by_owner(self, tenant_id: str, owner_id: str, limit: int, cursor: str | None) -> Page:
        listing = ListQuery(
            "contacts-by-owner", keys.contacts_by_owner(tenant_id, owner_id), "GSI3"
        )
        return self.table.query(listing, limit, cursor)

    def list_by_company(
        self, tenant_id: str, company_id: str, limit: int, cursor: str | None
    ) -> Page:
        listing = ListQuery(
            "contacts-by-company", keys.contacts_by_company(tenant_id, company_id), "GSI4"
        )
        return self.table.query(listing, limit, cursor)

    def list_by_tag(self, tenant_id: str, tag: str, limit: int, cursor: str | None) -> Page:
        """Tag members (one Query), then their contacts (one BatchGetItem)."""
        listing = ListQuery("contacts-by-tag", keys.tag_partition(tenant_id, tag))
        members = self.table.query(
            listing, limit, cursor, newest_first=False, sort_prefix=keys.MEMBER_PREFIX
        )
        contact_keys = [keys.contact(tenant_id, m["contact_id"]) for m in members.items]
        items = [i for i in self.table.batch_get(contact_keys) if i.get("type") == CONTACT]
        return Page(items=items, next_cursor=members.next_cursor)

    def owner_of(self, tenant_id: str, email: str) -> Item | None:
        """The contact that owns `email` (its own or a merged contact's), read strongly
        consistent for a write that follows; None when no contact has it."""
        owner = self.table.get(keys.contact_email(tenant_id, email))
        return None if owner is None else self.survivor(tenant_id, owner["contact_id"])

    def survivor(self, tenant_id: str, contact_id: str) -> Item | None:
        """The contact item of `contact_id`, or of the contact at the end of its chain of
        merges (`items.resolve`); None when it is gone. Strongly consistent."""
        return resolve(self.table, tenant_id, contact_id)

    def find_by_email(self, tenant_id: str, email: str) -> list[Item]:
        owner = self.table.get(keys.contact_email(tenant_id, email), consistent=False)
        if owner is None:
            return []
        item = self.table.get(keys.contact(tenant_id, owner["contact_id"]), consistent=False)
        return [item] if item and item.get("type") == CONTACT else []

    # Transaction parts ------------------------------------------------------------------
    def _consent_parts(self, old: Item | None, new: Item, *, check: bool) -> list[dict[str, Any]]:
        """The suppression list's side of a contact's write (`old` None: a new contact).

        Unsubscribed: each of its addresses suppressed as `unsubscribed`, in the same
        transaction, whenever it becomes unsubscribed or holds an address it did not (its
        old ones too: the person's address stays theirs). `check`: the write subscribes it
        at the caller's request, so none of its addresses may be suppressed as unsubscribed
        (condition checks: a refusal is PersonUnsubscribed)."""
        tenant_id = new["tenant_id"]
        after = suppression.addresses(new)
        if _unsubscribed(new):
            before = suppression.addresses(old) if old is not None and _unsubscribed(old) else []
            if old is not None and before and set(after) <= set(before):
                return []
            held = list(dict.fromkeys([*after, *before]))
            return suppression.suppress_all(
                self.op, tenant_id, held, _UNSUBSCRIBE, new["updated_at"]
            )
        if check:
            return [suppression.not_unsubscribed(self.op, tenant_id, a) for a in after]
        return []

    def _lift(self, tenant_id: str, email: str) -> list[dict[str, Any]]:
        """An opt-in's part: the address's `unsubscribed` suppression taken off, as read
        now (one GetItem); nothing when there is none."""
        item = self.table.get(suppression.suppression_key(tenant_id, email))
        part = suppression.lift_unsubscribe(self.op, item)
        return [part] if part is not None else []

    def _email_claims(self, item: Item, emails: list[str | None]) -> list[dict[str, Any]]:
        return [
            self.op.put(
                {
                    **keys.contact_email(item["tenant_id"], email),
                    "type": EMAIL_OWNER,
                    "tenant_id": item["tenant_id"],
                    "email": email,
                    "contact_id": item["id"],
                },
                "attribute_not_exists(PK)",
            )
            for email in emails
            if email
        ]

    def _email_releases(self, item: Item, emails: list[str | None]) -> list[dict[str, Any]]:
        return [
            self.op.delete(
                keys.contact_email(item["tenant_id"], email), "contact_id = :id", id=item["id"]
            )
            for email in emails
            if email
        ]

    def _tag_changes(self, item: Item, before: set[str], after: set[str]) -> list[dict[str, Any]]:
        tenant, cid = item["tenant_id"], item["id"]
        ops = [self.op.delete(keys.tag_member(tenant, t, cid)) for t in sorted(before - after)]
        ops += [
            self.op.put(
                {**keys.tag_member(tenant, t, cid), "type": TAG_MEMBER, "tag": t, "contact_id": cid}
            )
            for t in sorted(after - before)
        ]
        return ops

    def _company_counts(
        self, tenant_id: str, deltas: Mapping[str | None, int]
    ) -> list[dict[str, Any]]:
        return [
            self.op.update(
                keys.company(tenant_id, company_id),
                "ADD contact_count :n",
                "attribute_exists(PK)",
                n=delta,
            )
            for company_id, delta in sorted(deltas.items(), key=lambda kv: str(kv[0]))
            if company_id and delta
        ]

    def _write(
        self,
        ops: list[dict[str, Any]],
        item: Item,
        event: DomainEvent | None,
        extra_writes: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Run the change, the caller's parts (`also`) and its event (the outbox item) as
        one transaction, and turn a refusal into the error that names its cause (a refused
        part of the caller's is a ConcurrentChange: the caller reads again)."""
        ops = [*ops, *extra_writes]
        if event is not None:
            ops = [*ops, outbox_put(self.op, keys.contact(item["tenant_id"], item["id"]), event)]
        try:
            self.table.transact(ops)
        except TransactionCancelled as cancelled:
            raise _explain(cancelled, ops, item) from None


def _explain(cancelled: TransactionCancelled, ops: list[dict[str, Any]], item: Item) -> Exception:
    for index, op in enumerate(ops):
        if not cancelled.failed(index):
            continue
        kind, body = next(iter(op.items()))
        pk = body.get("Item", body.get("Key", {}))["PK"]["S"]
        if keys.is_email_claim(pk) and kind == "Put":
            existing = cancelled.items[index] or {}
            owner = existing.get("contact_id")
            return Conflict(
                f"a contact with this email already exists: {owner}",
                existing_id=owner,
                errors=[{"loc": ["body", "email"], "msg": "already used by another contact"}],
            )
        if keys.is_suppression(pk) and kind == "ConditionCheck":
            return person_unsubscribed()
        if keys.is_company(pk) and kind == "Update":
            return Unprocessable(
                "company_id names no company of yours",
                errors=[{"loc": ["body", "company_id"], "msg": "no such company"}],
            )
        if keys.is_email_claim(pk):
            return Conflict("the contact's email changed concurrently; try again")
        return ConcurrentChange("the contact was changed by someone else; reload and retry")
    return Conflict(f"the change was refused: {cancelled}")


_UNSUBSCRIBE = SuppressionReason.UNSUBSCRIBED


def _unsubscribed(contact: Item) -> bool:
    return contact.get("email_consent") == UNSUBSCRIBED


def _deltas(before: str | None, after: str | None) -> dict[str | None, int]:
    if before == after:
        return {}
    return {before: -1, after: 1}


def _merged(target: Item, loser: Item) -> dict[str, Any]:
    survivor = dict(target)
    for name in _FILLABLE:
        if survivor.get(name) is None and loser.get(name) is not None:
            survivor[name] = loser[name]
    survivor["attributes"] = {**loser.get("attributes", {}), **target.get("attributes", {})}
    tags = list(dict.fromkeys([*target.get("tags", []), *loser.get("tags", [])]))
    if len(tags) > MAX_TAGS:
        raise Unprocessable(f"the merged contact would have {len(tags)} tags; at most {MAX_TAGS}")
    survivor["tags"] = tags
    # Never re-subscribe someone: an unsubscribe on either record wins.
    consents = {target.get("email_consent"), loser.get("email_consent")}
    if EmailConsent.UNSUBSCRIBED in consents:
        survivor["email_consent"] = EmailConsent.UNSUBSCRIBED.value
    elif target.get("email_consent") == EmailConsent.UNKNOWN:
        survivor["email_consent"] = loser.get("email_consent", EmailConsent.UNKNOWN.value)
    # The person's latest opt-in, whichever record kept it.
    sources = [s for s in (target.get("consent_source"), loser.get("consent_source")) if s]
    if sources:
        survivor["consent_source"] = max(sources, key=lambda s: (s["at"], s["lead_id"]))
    attribution = combined_attribution(target.get("attribution"), loser.get("attribution"))
    if attribution:
        survivor["attribution"] = attribution
    others = [
        e
        for e in dict.fromkeys(
            [*target.get("other_emails", []), loser.get("email"), *loser.get("other_emails", [])]
        )
        if e and e != survivor.get("email")
    ]
    if len(others) > MAX_OTHER_EMAILS:
        raise Unprocessable(f"a contact keeps at most {MAX_OTHER_EMAILS} merged addresses")
    survivor["other_emails"] = others
    return survivor


def combined_attribution(*records: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The attribution of a person known by several records (a contact and a new lead, or
    two merged contacts): the earliest first touch and the latest last touch, by the
    touch's time (`at`) then its lead's id. Whatever order leads are processed or contacts
    merged in, the result is the same."""
    firsts = [r["first_touch"] for r in records if r and r.get("first_touch")]
    lasts = [r["last_touch"] for r in records if r and r.get("last_touch")]
    combined: dict[str, Any] = {}
    if firsts:
        combined["first_touch"] = min(firsts, key=_touch_order)
    if lasts:
        combined["last_touch"] = max(lasts, key=_touch_order)
    return combined or None


def _touch_order(touch: Mapping[str, Any]) -> tuple[str, str]:
    return str(touch.get("at") or ""), str(touch.get("lead_id") or "")
