"""Campaigns in the single table: the item, its edits, and every move between states.

A campaign lives in its own partition (`keys.campaign`), beside its recipients; a
tenant's list is GSI1. Each change is one transaction: an Update of the campaign whose
condition names the states it may leave (and the version, for a client's If-Match), and
the change's outbox event. Edits write only the attributes they change, so the counters
that senders and email events ADD to meanwhile are never written back stale.

The HTML and text bodies live in a content item beside it (`keys.campaign_content`): the
campaign item, which every send and SES event updates, stays about a kilobyte, and
DynamoDB bills an update on the whole item. The store reads both together (one
BatchGetItem) and hands out one dict; it writes the bodies to their item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from crm_core import keys
from crm_core.campaigns.campaign_models import (
    COUNTERS,
    EDITABLE,
    Campaign,
    CampaignCreate,
    CampaignState,
    CampaignStats,
    CampaignSummary,
    counter,
)
from crm_core.clock import now_iso
from crm_core.dynamo import Item
from crm_core.errors import ConcurrentChange, Conflict, NotFound, PreconditionFailed
from crm_core.events import campaigns as events
from crm_core.events.envelope import DomainEvent, Origin
from crm_core.events.outbox import outbox_put
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.patching import apply_patch
from crm_core.table import Page, Table, TransactionCancelled, read_modify_write

CAMPAIGN_ITEM = "campaign"
CONTENT_ITEM = "campaign_content"
CONTENT_FIELDS = ("html", "text")
_FIELDS = tuple(f for f in Campaign.model_fields if f != "stats")
_SUMMARY_FIELDS = tuple(f for f in CampaignSummary.model_fields if f != "stats")


def to_campaign(item: Mapping[str, Any]) -> Campaign:
    body = {k: item[k] for k in _FIELDS if k in item}
    return Campaign.model_validate({**body, "stats": CampaignStats.of(dict(item))})


def to_summary(item: Mapping[str, Any]) -> CampaignSummary:
    body = {k: item[k] for k in _SUMMARY_FIELDS if k in item}
    return CampaignSummary.model_validate({**body, "stats": CampaignStats.of(dict(item))})


def counts(item: Mapping[str, Any]) -> dict[str, int]:
    return {name: int(item.get(counter(name), 0)) for name in COUNTERS}


def campaign_data(item: Mapping[str, Any], reason: str | None = None) -> events.CampaignData:
    return events.CampaignData(
        campaign_id=item["id"],
        name=item["name"],
        segment_id=item["segment_id"],
        state=item["state"],
        version=item["version"],
        dispatch_id=item.get("dispatch_id"),
        send_at=item.get("send_at"),
        timezone=item.get("timezone"),
        reason=reason if reason is not None else item.get("state_reason"),
        stats=counts(item),
    )


def is_complete(item: Mapping[str, Any]) -> bool:
    """Every recipient of the audience handled: the send is over."""
    c = counts(item)
    return (
        bool(item.get("dispatch_done")) and c["sent"] + c["failed"] + c["skipped"] >= c["audience"]
    )


def _split(item: Mapping[str, Any]) -> tuple[Item, Item]:
    """The campaign item and its content item, from one campaign dict."""
    campaign = {k: v for k, v in item.items() if k not in CONTENT_FIELDS}
    content: Item = {
        **keys.campaign_content(item["tenant_id"], item["id"]),
        "type": CONTENT_ITEM,
        "tenant_id": item["tenant_id"],
        "campaign_id": item["id"],
        **{k: item[k] for k in CONTENT_FIELDS if k in item},
    }
    return campaign, content


class CampaignStore:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.op = table.op

    # Reads ------------------------------------------------------------------------------
    def load(
        self, tenant_id: str, campaign_id: str, consistent: bool = True, content: bool = True
    ) -> Item:
        """The campaign, with its bodies unless `content` is False (one call either way)."""
        if not content:
            item = self.table.get(keys.campaign(tenant_id, campaign_id), consistent=consistent)
            if item is None or item.get("type") != CAMPAIGN_ITEM:
                raise NotFound("no such campaign")
            return item
        found = self.table.batch_get(
            [keys.campaign(tenant_id, campaign_id), keys.campaign_content(tenant_id, campaign_id)],
            consistent=consistent,
        )
        items = {i["SK"]: i for i in found}
        item = items.get(keys.CAMPAIGN)
        if item is None or item.get("type") != CAMPAIGN_ITEM:
            raise NotFound("no such campaign")
        body = items.get(keys.CAMPAIGN_CONTENT) or {}
        return {**item, **{k: body[k] for k in CONTENT_FIELDS if k in body}}

    def list(self, tenant_id: str, limit: int, cursor: str | None) -> Page:
        """Newest first (campaign ids are ULIDs)."""
        listing = ListQuery("campaigns", keys.campaigns_of_tenant(tenant_id), index="GSI1")
        return self.table.query(listing, limit, cursor)

    # Drafts -----------------------------------------------------------------------------
    def create(self, tenant_id: str, body: CampaignCreate, origin: Origin) -> Item:
        now, campaign_id = now_iso(), new_ulid()
        item: Item = {
            **keys.campaign(tenant_id, campaign_id),
            "GSI1PK": keys.campaigns_of_tenant(tenant_id),
            "GSI1SK": campaign_id,
            "type": CAMPAIGN_ITEM,
            "id": campaign_id,
            "tenant_id": tenant_id,
            **body.model_dump(mode="json", exclude_none=True),
            "state": CampaignState.DRAFT.value,
            "created_at": now,
            "updated_at": now,
            "created_by": origin.actor.id,
            "version": 1,
            **{counter(name): 0 for name in COUNTERS},
        }
        event = events.CampaignCreated.create(tenant_id, origin, campaign_data(item), now)
        campaign, content = _split(item)
        self.table.transact(
            [
                self.op.put(campaign, "attribute_not_exists(PK)"),
                self.op.put(content, "attribute_not_exists(PK)"),
                outbox_put(self.op, keys.campaign(tenant_id, campaign_id), event),
            ]
        )
        return item

    def update(
        self,
        tenant_id: str,
        campaign_id: str,
        changes: dict[str, Any],
        expected: int | None,
        origin: Origin,
    ) -> Item:
        """Edit a draft or scheduled campaign (409 in any other state)."""

        def attempt() -> Item:
            old = self._for_write(tenant_id, campaign_id, expected)
            if CampaignState(old["state"]) not in EDITABLE:
                raise Conflict(f"a {old['state']} campaign cannot be changed")
            new = {
                **apply_patch(old, changes),
                "updated_at": now_iso(),
                "version": old["version"] + 1,
            }
            event = events.CampaignUpdated.create(
                tenant_id, origin, campaign_data(new), new["updated_at"]
            )
            # The bodies live in the content item, which `load` reads them from.
            (old_campaign, old_content), (new_campaign, new_content) = _split(old), _split(new)
            self._transact(
                self.op.update_changed(
                    old_campaign,
                    new_campaign,
                    "version = :v AND #state = :state",
                    v=old["version"],
                    state=old["state"],
                ),
                tenant_id,
                campaign_id,
                event,
                extra_writes=[self.op.put(new_content)] if new_content != old_content else [],
            )
            return new

        return read_modify_write(attempt, "campaign")

    # States -----------------------------------------------------------------------------
    def move(
        self,
        tenant_id: str,
        campaign_id: str,
        to: CampaignState,
        event_type: type[DomainEvent],
        origin: Origin,
        *,
        allowed_from: Iterable[CampaignState],
        expected: int | None = None,
        dispatch_id: str | None = None,
        reason: str | None = None,
        sets: Mapping[str, Any] | None = None,
        removes: Iterable[str] = (),
    ) -> Item:
        """Move the campaign to `to` from one of `allowed_from`, with `event_type`.

        `expected` is a client's If-Match (412 when stale); `dispatch_id`, when given, must
        be the campaign's (a stale schedule or an old send's event moves nothing: 409).
        `sets` are more attributes to write, `removes` attributes to drop. A state it may
        not leave is a 409 naming the state."""
        sources = frozenset(allowed_from)

        def attempt() -> Item:
            old = self._for_write(tenant_id, campaign_id, expected)
            state = CampaignState(old["state"])
            if state not in sources:
                raise Conflict(f"the campaign is {state.value}: it cannot become {to.value}")
            if dispatch_id is not None and old.get("dispatch_id") != dispatch_id:
                raise Conflict("this send is not the campaign's current one")
            now = now_iso()
            new: Item = {
                **{k: v for k, v in old.items() if k not in set(removes)},
                **(sets or {}),
                "state": to.value,
                "state_reason": reason,
                "updated_at": now,
                "version": old["version"] + 1,
            }
            event = event_type.create(tenant_id, origin, campaign_data(new, reason), now)
            self._transact(
                self.op.update_changed(
                    old,
                    new,
                    "version = :v AND #state = :state",
                    v=old["version"],
                    state=state.value,
                ),
                tenant_id,
                campaign_id,
                event,
            )
            return new

        return read_modify_write(attempt, "campaign")

    def schedule(
        self,
        tenant_id: str,
        campaign_id: str,
        send_at: str,
        timezone: str,
        dispatch_id: str,
        expected: int | None,
        origin: Origin,
    ) -> Item:
        """draft|scheduled -> scheduled for `send_at` (UTC): `dispatch_id` is the one the
        schedule's Input carries; an older schedule's firing is then ignored."""
        return self.move(
            tenant_id,
            campaign_id,
            CampaignState.SCHEDULED,
            events.CampaignScheduled,
            origin,
            allowed_from=EDITABLE,
            expected=expected,
            sets={"send_at": send_at, "timezone": timezone, "dispatch_id": dispatch_id},
        )

    def send_now(
        self, tenant_id: str, campaign_id: str, expected: int | None, origin: Origin
    ) -> Item:
        """draft|scheduled -> sending with a new dispatch: CampaignSendRequested wakes the
        dispatcher."""
        now = now_iso()
        return self.move(
            tenant_id,
            campaign_id,
            CampaignState.SENDING,
            events.CampaignSendRequested,
            origin,
            allowed_from=EDITABLE,
            expected=expected,
            sets={"dispatch_id": new_ulid(), "sending_started_at": now},
            removes=("send_at", "timezone"),
        )

    def start_scheduled(
        self, tenant_id: str, campaign_id: str, dispatch_id: str, origin: Origin
    ) -> Item:
        """The schedule fired: scheduled -> sending, if `dispatch_id` is still the
        campaign's (Conflict otherwise: rescheduled, sent now, or cancelled)."""
        return self.move(
            tenant_id,
            campaign_id,
            CampaignState.SENDING,
            events.CampaignSendingStarted,
            origin,
            allowed_from=(CampaignState.SCHEDULED,),
            dispatch_id=dispatch_id,
            sets={"sending_started_at": now_iso()},
        )

    def pause(
        self,
        tenant_id: str,
        campaign_id: str,
        reason: str,
        origin: Origin,
        expected: int | None = None,
    ) -> Item:
        return self.move(
            tenant_id,
            campaign_id,
            CampaignState.PAUSED,
            events.CampaignPaused,
            origin,
            allowed_from=(CampaignState.SENDING,),
            expected=expected,
            reason=reason,
        )

    def resume(
        self, tenant_id: str, campaign_id: str, origin: Origin, expected: int | None = None
    ) -> Item:
        """paused -> sending: CampaignResumed makes the dispatcher queue the recipients not
        yet handled."""
        return self.move(
            tenant_id,
            campaign_id,
            CampaignState.SENDING,
            events.CampaignResumed,
            origin,
            allowed_from=(CampaignState.PAUSED,),
            expected=expected,
        )

    def cancel(
        self, tenant_id: str, campaign_id: str, origin: Origin, expected: int | None = None
    ) -> Item:
        return self.move(
            tenant_id,
            campaign_id,
            CampaignState.CANCELLED,
            events.CampaignCancelled,
            origin,
            allowed_from=(
                CampaignState.DRAFT,
                CampaignState.SCHEDULED,
                CampaignState.SENDING,
                CampaignState.PAUSED,
            ),
            expected=expected,
            reason="cancelled",
        )

    def fail(self, tenant_id: str, campaign_id: str, dispatch_id: str, reason: str) -> Item:
        return self.move(
            tenant_id,
            campaign_id,
            CampaignState.FAILED,
            events.CampaignFailed,
            Origin.system("campaign_dispatcher"),
            allowed_from=(CampaignState.SENDING,),
            dispatch_id=dispatch_id,
            reason=reason,
        )

    def finish_if_complete(self, tenant_id: str, campaign_id: str, origin: Origin) -> bool:
        """sending -> sent once every recipient is handled; True when this call moved it.
        Safe to call from every sender and the dispatcher: one of them wins."""
        item = self.load(tenant_id, campaign_id, content=False)
        if item["state"] != CampaignState.SENDING or not is_complete(item):
            return False
        try:
            self.move(
                tenant_id,
                campaign_id,
                CampaignState.SENT,
                events.CampaignSent,
                origin,
                allowed_from=(CampaignState.SENDING,),
                dispatch_id=item.get("dispatch_id"),
                sets={"sent_at": now_iso()},
            )
        except Conflict:
            return False  # another caller finished it, or it was paused or cancelled
        return True

    # Internals --------------------------------------------------------------------------
    def _for_write(self, tenant_id: str, campaign_id: str, expected: int | None) -> Item:
        item = self.load(tenant_id, campaign_id)
        if expected is not None and item["version"] != expected:
            raise PreconditionFailed(
                f"the campaign is at version {item['version']}, not {expected}"
            )
        return item

    def _transact(
        self,
        update: dict[str, Any],
        tenant_id: str,
        campaign_id: str,
        event: DomainEvent,
        extra_writes: Iterable[dict[str, Any]] = (),
    ) -> None:
        update["Update"].setdefault("ExpressionAttributeNames", {})["#state"] = "state"
        outbox = outbox_put(self.op, keys.campaign(tenant_id, campaign_id), event)
        try:
            self.table.transact([update, *extra_writes, outbox])
        except TransactionCancelled:
            raise ConcurrentChange("the campaign changed meanwhile") from None
