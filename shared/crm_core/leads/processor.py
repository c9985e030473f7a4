"""The lead processor: a received lead becomes a contact and a form_submission activity,
exactly once, whatever is delivered twice, at once, or after a crash.

The lead's item is the state machine, and every step is one transaction with the lead's
own Update, conditioned on the state the step starts from:

    accepted|failed, no contact_id --(contact step)--> contact_id set
        one transaction: the contact created or updated (with its email claim, tags,
        company count and event) + SET contact_id IF attribute_not_exists(contact_id)
    contact_id set, no activity_id --(activity step)--> processed
        one transaction: the activity logged (with the contact's summary and event)
        + status processed, SET activity_id IF attribute_not_exists(activity_id)
    accepted|failed, no usable email or phone --> rejected (with the reason)

A lead that carries the person's consent (`MappedLead.consent`) is their opt-in: the
contact step subscribes the contact, new or existing (one who unsubscribed before too),
records the evidence (`consent_source`: the lead, its source, when it was received) and
lifts the address's `unsubscribed` suppression, all in that step's transaction. A lead
without it changes no consent (a new contact at an address whose person unsubscribed is
created `unsubscribed`, by the contacts store's rule).

A crash between steps leaves the lead with its contact and without its activity: the
retry skips the contact step. A contact merged between the steps gets the activity on its
survivor (which becomes the lead's contact); one deleted between them leaves the lead
rejected, since someone removed that person on purpose.

A refused transaction (a race with another lead of the same person, a person's edit of the
contact, a concurrent run of this lead) wrote nothing; the processor reads the lead again
and carries on from what it finds. An unexpected error marks the lead `failed` (best
effort) and is raised again, so that Lambda retries it; a later success moves it on. The
consumer's idempotency record is not what makes this safe: a replay of an old event finds
the lead processed and does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from crm_core import keys, normalize
from crm_core.activities.models import ActivityType, validate_fields
from crm_core.activities.store import ActivityStore
from crm_core.clock import now_iso
from crm_core.contacts.store import ContactStore, OptIn, combined_attribution
from crm_core.dynamo import Item, to_attr
from crm_core.errors import ConcurrentChange, Conflict, CrmError, NotFound, Unprocessable
from crm_core.events.envelope import Origin
from crm_core.events.leads import LeadReceived
from crm_core.fields import MAX_ATTRIBUTES, MAX_TAGS
from crm_core.leads.mapping import MappedLead, map_lead
from crm_core.leads.models import LeadStatus
from crm_core.leads.payload import PayloadError, parse
from crm_core.leads.store import LeadStore, status_change
from crm_core.records.contact import ContactCreate, LifecycleStage
from crm_core.table import Table, TransactionCancelled, backoff

# Refused transactions (races) before the processor gives up and Lambda retries the event.
ATTEMPTS = 8
# Fields a lead fills on an existing contact when the contact has none; never overwritten.
FILLABLE = ("first_name", "last_name", "phone", "title", "country", "owner_id", "company_id")
FINAL = frozenset({LeadStatus.PROCESSED, LeadStatus.REJECTED})
MAX_FAILURE_CHARS = 200
# What a refused transaction raises: another writer won; read again and carry on.
_RACES = (ConcurrentChange, Conflict, Unprocessable, TransactionCancelled)


@dataclass(frozen=True)
class LeadOutcome:
    """What became of a lead. `replayed`: another run had made it final (this one did
    nothing, so counts nothing)."""

    lead_id: str
    status: LeadStatus | None  # None: no such lead
    contact_id: str | None = None
    activity_id: str | None = None
    replayed: bool = False

    def summary(self) -> dict[str, Any]:
        """Ids and status only (the consumer keeps it in its idempotency record)."""
        return {
            "lead_id": self.lead_id,
            "status": self.status.value if self.status else None,
            "contact_id": self.contact_id,
            "activity_id": self.activity_id,
        }


class LeadFailed(RuntimeError):
    """Processing failed in a way whose original message may quote the lead's data."""


class LeadProcessor:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.op = table.op
        self.leads = LeadStore(table)
        self.contacts = ContactStore(table)
        self.activities = ActivityStore(table)

    def process(self, event: LeadReceived) -> LeadOutcome:
        data = event.data
        origin = Origin.lead_source(data.source_id, event.metadata.correlation_id)
        try:
            return self._process(event.tenant_id, data.lead_id, origin)
        except Exception as error:
            lead = {"tenant_id": event.tenant_id, "source_id": data.source_id, "id": data.lead_id}
            self._mark_failed(lead, _failure(error))
            if isinstance(error, ValidationError):
                # pydantic's message repeats the values it refused: personal data, which
                # must not reach the function's logs.
                raise LeadFailed(f"lead {data.lead_id}: {_failure(error)}") from None
            raise

    # The state machine ------------------------------------------------------------------
    def _process(self, tenant_id: str, lead_id: str, origin: Origin) -> LeadOutcome:
        lead = self.leads.get(tenant_id, lead_id)
        if lead is None:
            return LeadOutcome(lead_id, None)
        if lead["status"] in FINAL:
            return _outcome(lead, replayed=True)
        source = self.table.get(keys.lead_source(tenant_id, lead["source_id"]), consistent=False)
        source = source or {}  # a source is never deleted; should one be, map by defaults
        mapped = _mapped(lead, source)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                if not lead.get("contact_id"):
                    if mapped.rejection:
                        return self._reject(lead, mapped.rejection, "contact_id")
                    lead = {**lead, "contact_id": self._contact_step(lead, mapped, source, origin)}
                try:
                    return self._activity_step(lead, mapped, source, origin)
                except NotFound:
                    # The contact was deleted after the contact step: someone removed the
                    # person on purpose (an erasure, say); the lead does not bring them back.
                    reason = f"its contact {lead['contact_id']} was deleted before it was logged"
                    return self._reject(lead, reason, "activity_id")
            except _RACES as race:
                if attempt == ATTEMPTS:
                    raise
                merged_into = getattr(race, "extra", {}).get("merged_into")
                if merged_into:
                    # The contact was merged after the contact step: its survivor gets the
                    # activity (and becomes the lead's contact in the same transaction).
                    lead = {**lead, "contact_id": merged_into}
                    continue
                backoff(attempt)
            lead = self.leads.get(tenant_id, lead_id) or lead
            if lead["status"] in FINAL:
                return _outcome(lead, replayed=True)  # a concurrent run finished it
        raise AssertionError("unreachable")

    def _contact_step(
        self, lead: Item, mapped: MappedLead, source: Mapping[str, Any], origin: Origin
    ) -> str:
        """The lead's contact, created or updated in one transaction with the lead's claim
        on it; the contact's id."""
        tenant_id = lead["tenant_id"]
        touch = _touch(lead, mapped, source)
        opt_in = None
        if mapped.consent and mapped.email:
            opt_in = OptIn(mapped.email, lead["id"], lead["source_id"], lead["received_at"])

        def claim(contact: Item) -> list[dict[str, Any]]:
            return [
                _while_open(
                    self.op.update(
                        keys.lead(tenant_id, lead["id"]),
                        "SET contact_id = :contact, updated_at = :now",
                        "attribute_not_exists(contact_id)",
                        contact=contact["id"],
                        now=now_iso(),
                    )
                )
            ]

        existing = self.contacts.owner_of(tenant_id, mapped.email) if mapped.email else None
        if existing is None:
            data = ContactCreate.model_validate(
                {
                    "email": mapped.email,
                    "first_name": mapped.first_name,
                    "last_name": mapped.last_name,
                    "phone": mapped.phone,
                    "title": mapped.title,
                    "country": mapped.country,
                    "owner_id": source.get("default_owner_id"),
                    "company_id": self._company_of(tenant_id, mapped.email),
                    "lifecycle_stage": LifecycleStage.LEAD,
                    "tags": _union([], source.get("default_tags", []), mapped.tags),
                    "attributes": dict(mapped.attributes),
                }
            )
            attribution = {"first_touch": touch, "last_touch": touch}
            created = self.contacts.create(
                tenant_id, data, origin, attribution=attribution, extra_writes=claim, opt_in=opt_in
            )
            return created.id
        company_id = (
            None if existing.get("company_id") else self._company_of(tenant_id, mapped.email)
        )
        revised = _absorbed(existing, mapped, source, touch, company_id)
        return self.contacts.write_revision(
            tenant_id, existing, revised, origin, extra_writes=claim, opt_in=opt_in
        ).id

    def _activity_step(
        self, lead: Item, mapped: MappedLead, source: Mapping[str, Any], origin: Origin
    ) -> LeadOutcome:
        """The form_submission on the lead's contact, in one transaction with the lead's
        move to `processed`."""
        fields = validate_fields(
            ActivityType.FORM_SUBMISSION,
            {
                "lead_id": lead["id"],
                "source_id": lead["source_id"],
                "source_name": source.get("name"),
                "fields": dict(mapped.form_fields),
                "page_url": mapped.page_url,
            },
        )
        contact_id = lead["contact_id"]

        def processed(activity: Item) -> list[dict[str, Any]]:
            change = status_change(
                self.op,
                lead,
                LeadStatus.PROCESSED,
                reason=mapped.note,
                contact_id=contact_id,
                activity_id=activity["id"],
                processed_at=now_iso(),
            )
            return [_while_open(change, "attribute_not_exists(activity_id)")]

        activity = self.activities.log(
            lead["tenant_id"],
            contact_id,
            ActivityType.FORM_SUBMISSION,
            fields,
            datetime.fromisoformat(lead["received_at"]),
            origin,
            extra_writes=processed,
        )
        return LeadOutcome(lead["id"], LeadStatus.PROCESSED, contact_id, activity["id"])

    def _reject(self, lead: Item, reason: str, not_yet: str) -> LeadOutcome:
        """Keep the lead as `rejected`, with its reason, if it has no `not_yet` so far."""
        change = status_change(
            self.op, lead, LeadStatus.REJECTED, reason=reason, processed_at=now_iso()
        )
        self.table.transact([_while_open(change, f"attribute_not_exists({not_yet})")])
        return LeadOutcome(lead["id"], LeadStatus.REJECTED, lead.get("contact_id"))

    def _mark_failed(self, lead: Mapping[str, Any], reason: str) -> None:
        """Best effort: the error itself is what Lambda retries on."""
        try:
            change = status_change(self.op, lead, LeadStatus.FAILED, reason=reason)
            self.table.transact([_while_open(change)])
        except Exception:  # noqa: S110 - the original error is the one to raise
            pass

    def _company_of(self, tenant_id: str, email: str | None) -> str | None:
        """The company whose domain is the email's (one GetItem), or None."""
        if not email:
            return None
        try:
            domain = normalize.domain(email.rpartition("@")[2])
        except ValueError:
            return None
        owner = self.table.get(keys.company_domain(tenant_id, domain), consistent=False)
        return owner["company_id"] if owner else None


# Parts --------------------------------------------------------------------------------------
def _mapped(lead: Mapping[str, Any], source: Mapping[str, Any]) -> MappedLead:
    try:
        payload = parse(lead["content_type"], lead["payload"])
    except PayloadError as error:
        return MappedLead(rejection=f"the payload cannot be read: {error}")
    return map_lead(payload, source.get("field_map") or {})


def _touch(
    lead: Mapping[str, Any], mapped: MappedLead, source: Mapping[str, Any]
) -> dict[str, Any]:
    """One touch of attribution: where and when the lead came from."""
    touch = {
        "source_id": lead["source_id"],
        "source_name": source.get("name"),
        "lead_id": lead["id"],
        "at": lead["received_at"],
        **mapped.utm,
        "page_url": mapped.page_url,
        "referrer": mapped.referrer,
    }
    return {k: v for k, v in touch.items() if v is not None}


def _absorbed(
    contact: Item,
    mapped: MappedLead,
    source: Mapping[str, Any],
    touch: dict[str, Any],
    company_id: str | None,
) -> dict[str, Any]:
    """The contact with what the lead adds: blanks filled (never a value someone entered),
    tags and attributes added, attribution moved on. Computed from the contact as just read,
    inside the attempt, so a concurrent edit is never written over (the write is
    conditioned on the version read)."""
    new = dict(contact)
    offered = {
        "first_name": mapped.first_name,
        "last_name": mapped.last_name,
        "phone": mapped.phone,
        "title": mapped.title,
        "country": mapped.country,
        "owner_id": source.get("default_owner_id"),
        "company_id": company_id,
    }
    for name in FILLABLE:
        if new.get(name) is None and offered[name] is not None:
            new[name] = offered[name]
    if new.get("phone") and contact.get("phone") is None:
        # The lead's phone, read with the contact's country when the lead named none.
        new["phone"] = normalize.phone(new["phone"], new.get("country"))
    new["tags"] = _union(contact.get("tags", []), source.get("default_tags", []), mapped.tags)
    attributes = dict(contact.get("attributes", {}))
    for name, value in mapped.attributes.items():
        if name not in attributes and len(attributes) < MAX_ATTRIBUTES:
            attributes[name] = value
    new["attributes"] = attributes
    lead_touch = {"first_touch": touch, "last_touch": touch}
    new["attribution"] = combined_attribution(contact.get("attribution"), lead_touch)
    return new


def _union(*groups: Any) -> list[str]:
    """Tags in order of first appearance, the earlier groups' kept when over MAX_TAGS."""
    return list(dict.fromkeys(t for group in groups for t in group))[:MAX_TAGS]


def _while_open(change: dict[str, Any], condition: str = "") -> dict[str, Any]:
    """`change` (an Update of the lead) only while the lead is accepted or failed: a
    processed or rejected lead never changes again. `condition` adds to it."""
    body = change["Update"]
    clauses = [body.get("ConditionExpression") or "attribute_exists(PK)"]
    clauses.append("#status IN (:open_accepted, :open_failed)")
    if condition:
        clauses.append(condition)
    body["ConditionExpression"] = " AND ".join(clauses)
    body["ExpressionAttributeNames"] = {
        **body.get("ExpressionAttributeNames", {}),
        "#status": "status",
    }
    body["ExpressionAttributeValues"] = {
        **body.get("ExpressionAttributeValues", {}),
        ":open_accepted": to_attr(LeadStatus.ACCEPTED.value),
        ":open_failed": to_attr(LeadStatus.FAILED.value),
    }
    return change


def _outcome(lead: Mapping[str, Any], replayed: bool) -> LeadOutcome:
    return LeadOutcome(
        lead["id"],
        LeadStatus(lead["status"]),
        lead.get("contact_id"),
        lead.get("activity_id"),
        replayed,
    )


def _failure(error: Exception) -> str:
    """A short reason for the deliveries log, without the lead's data."""
    if isinstance(error, CrmError):
        text = f"{type(error).__name__}: {error.detail}"
    elif isinstance(error, ClientError):
        text = f"DynamoDB {error.response.get('Error', {}).get('Code', 'error')}"
    elif isinstance(error, ValidationError):
        places = ", ".join(".".join(map(str, e["loc"])) for e in error.errors()[:5])
        text = f"{error.error_count()} validation error(s) of {error.title}: {places}"
    else:
        text = type(error).__name__
    return text[:MAX_FAILURE_CHARS]
