"""Scoring a contact: on an event, in constant time; after a model change, from its history.

Every change is one read (BatchGetItem: the contact, the tenant's model, its ranks) and one
TransactWriteItems: the contact's `scoring` map and index keys on the score's sequence
number and the contact's version (so concurrent events lose no points and a person's
concurrent edit is never overwritten), a change record keyed by the causing event
(`attribute_not_exists`: a second delivery finds it and changes nothing), LeadScoreChanged
and, on an upward crossing of a threshold, LeadQualified. No history is read, except when a
contact's score was made with another model version than the current one: then it is
rebuilt from its activities, which is what the re-score job does for every contact.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.contacts.items import revision_update
from crm_core.dynamo import Item
from crm_core.errors import ConcurrentChange
from crm_core.events.envelope import DomainEvent, Origin
from crm_core.events.outbox import outbox_put
from crm_core.events.scoring import (
    LeadQualified,
    LeadQualifiedData,
    LeadScoreChanged,
    LeadScoreChangedData,
    RulePoints,
    ScoreCause,
)
from crm_core.ids import new_ulid
from crm_core.scores.state import (
    MAX_REBUILT_IDS,
    REBUILD_WINDOW_SECONDS,
    ScoreState,
    ranks_in,
)
from crm_core.scoring.decision import ScoreDecision, decide, fit_changes
from crm_core.scoring.models import ScoringModel
from crm_core.scoring.rules import Activity, Earned, earn, epoch_of, fit_of
from crm_core.scoring.store import default_model, to_model
from crm_core.table import Table, TransactionCancelled, read_modify_write

PRODUCER = "lead_scoring"
SCORE_CHANGE_ITEM = "score_change"
# Change records outlive every way an event can come back (the archive keeps 90 days at
# most), so a replay always finds the one its event wrote; then they expire, also those of
# a deleted contact.
CHANGE_RECORD_DAYS = 400

Change = Callable[[ScoreState, Item, ScoringModel, float], tuple[ScoreState, list[Earned]]]


@dataclass(frozen=True)
class Scored:
    """What one scoring did: the score before and after (at the same moment), the rules
    behind the change, the threshold crossed and the stage it moved the contact to."""

    contact_id: str
    old_score: float
    new_score: float
    reasons: list[Earned]
    qualified: str | None = None
    stage_after: str | None = None


class Scorer:
    def __init__(self, table: Table, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.op = table.op
        self.clock = clock

    # Events ----------------------------------------------------------------------------
    def on_activity(self, event: DomainEvent, activity: Activity) -> Scored | None:
        """An activity was logged: what its rules earn, added to the engagement."""
        cause = ScoreCause(
            detail_type=event.DETAIL_TYPE,
            event_id=event.event_id,
            activity_id=activity.id,
            activity_type=activity.type,
        )
        logged_at = epoch_of(event.metadata.occurred_at)

        def change(
            state: ScoreState, item: Item, model: ScoringModel, now: float
        ) -> tuple[ScoreState, list[Earned]]:
            if state.counted_already(activity.id, logged_at):
                return state, []
            return earn(state, model, activity, now)

        return self._score(event.tenant_id, activity.contact_id, cause, change, event)

    def on_contact(self, event: DomainEvent, contact_id: str) -> Scored | None:
        """A contact was created or changed: its fit, evaluated again on what it is now."""
        cause = ScoreCause(detail_type=event.DETAIL_TYPE, event_id=event.event_id)
        return self._score(event.tenant_id, contact_id, cause, refit, event)

    def rebuild(
        self,
        tenant_id: str,
        contact_id: str,
        cause: ScoreCause,
        origin: Origin,
        merged_from: str | None = None,
    ) -> Scored | None:
        """The contact's score computed anew from its activities with the current model
        (by the re-score job, or after a merge: `merged_from`'s activities count too, also
        those not moved to the survivor yet)."""
        return self._score(
            tenant_id,
            contact_id,
            cause,
            None,
            None,
            origin=origin,
            force=True,
            merged_from=merged_from,
        )

    # The one write -----------------------------------------------------------------------
    def _score(
        self,
        tenant_id: str,
        contact_id: str,
        cause: ScoreCause,
        change: Change | None,
        event: DomainEvent | None,
        *,
        origin: Origin | None = None,
        force: bool = False,
        merged_from: str | None = None,
    ) -> Scored | None:
        if origin is None:
            assert event is not None
            origin = Origin.system(PRODUCER, event.metadata.correlation_id)
        event_time = event.metadata.occurred_at if event is not None else None

        def attempt() -> Scored | None:
            item, model, ranks = self._read(tenant_id, contact_id)
            if item is None:
                return None  # deleted, or merged: the survivor is rebuilt on ContactMerged
            state = ScoreState.of(item)
            now = self.clock()
            if force or (state.model_version != model.version and not _first_fit(state, event)):
                new_state, reasons = self._rebuilt(tenant_id, item, model, now, merged_from)
            else:
                assert change is not None
                new_state, reasons = change(state, item, model, now)
            if new_state == state:
                return None
            decision = decide(
                item, state, new_state, model, reasons, now=now, at=now_iso(), event_time=event_time
            )
            return self._write(item, decision, model, cause, origin, ranks, now)

        return read_modify_write(attempt, "score")

    def _read(self, tenant_id: str, contact_id: str) -> tuple[Item | None, ScoringModel, set[str]]:
        contact_key = keys.contact(tenant_id, contact_id)
        model_key, ranks_key = keys.scoring_model(tenant_id), keys.scoring_ranks(tenant_id)
        found = {
            (i["PK"], i["SK"]): i
            for i in self.table.batch_get([contact_key, model_key, ranks_key], consistent=True)
        }
        item = found.get((contact_key["PK"], contact_key["SK"]))
        model_item = found.get((model_key["PK"], model_key["SK"]))
        ranks_item = found.get((ranks_key["PK"], ranks_key["SK"])) or {}
        model = to_model(model_item) if model_item else default_model()
        if item is not None and item.get("type") != keys.CONTACT_ITEM:
            item = None
        return item, model, ranks_in(ranks_item)

    def _write(
        self,
        item: Item,
        decision: ScoreDecision,
        model: ScoringModel,
        cause: ScoreCause,
        origin: Origin,
        ranks: set[str],
        now: float,
    ) -> Scored | None:
        """What `decision` says, in one transaction (the rank registered before it)."""
        tenant_id, contact_id = item["tenant_id"], item["id"]
        if decision.state.rank not in ranks:
            # Before the contact moves there, so a list never misses a rank (never removed).
            self.table.update(
                self.op.update(
                    keys.scoring_ranks(tenant_id),
                    "SET #rank = :t",
                    None,
                    {"#rank": decision.state.rank},
                    t=True,
                )
            )
        ops = [revision_update(self.op, item, decision.item)]
        if decision.moved or decision.promoted:
            ops.append(self._change_record(decision, model, cause, now))
        events = _events(tenant_id, contact_id, decision, model, cause, origin)
        ops += [outbox_put(self.op, keys.contact(tenant_id, contact_id), e) for e in events]
        try:
            self.table.transact(ops)
        except TransactionCancelled as cancelled:
            if len(ops) > 1 and cancelled.failed(1) and not cancelled.failed(0):
                return None  # this event changed the score already
            raise ConcurrentChange("the contact changed meanwhile") from None
        return Scored(
            contact_id,
            decision.old_score,
            decision.new_score,
            decision.reasons,
            decision.qualified,
            decision.stage_after,
        )

    def _change_record(
        self, decision: ScoreDecision, model: ScoringModel, cause: ScoreCause, now: float
    ) -> dict[str, Any]:
        """The change record, keyed by the causing event: a second delivery finds it."""
        item = decision.item
        return self.op.put(
            {
                **keys.score_change(item["tenant_id"], item["id"], cause.event_id or new_ulid()),
                "type": SCORE_CHANGE_ITEM,
                "at": decision.state.updated_at,
                "old_score": round(decision.old_score, 4),
                "new_score": round(decision.new_score, 4),
                "fit": decision.state.fit,
                "engagement": round(decision.engagement, 4),
                "model_version": model.version,
                "reasons": [{"rule_id": e.rule_id, "points": e.points} for e in decision.reasons],
                "cause": cause.model_dump(exclude_none=True),
                "lifecycle_stage": decision.stage_after if decision.promoted else None,
                "ttl": int(now) + CHANGE_RECORD_DAYS * 86_400,
            },
            "attribute_not_exists(PK)",
        )

    # From history --------------------------------------------------------------------
    def _rebuilt(
        self,
        tenant_id: str,
        item: Item,
        model: ScoringModel,
        now: float,
        merged_from: str | None = None,
    ) -> tuple[ScoreState, list[Earned]]:
        """The score from every activity of the contact, oldest first (caps as they were).

        After a merge, the merged contact's partition is read first, then the survivor's:
        an activity moved between the two reads is seen twice and counted once (by id), and
        none can be missed, as a move takes it out of one and into the other at once."""
        found: dict[str, Activity] = {}
        for contact_id in (merged_from, item["id"]):
            if contact_id:
                for raw in self._activities(tenant_id, contact_id):
                    found[raw["id"]] = Activity.of(raw)
        activities = sorted(found.values(), key=lambda a: (a.occurred_at, a.id))
        state = ScoreState(seq=ScoreState.of(item).seq)
        earned: dict[str, int] = {}
        for activity in activities:
            state, gained = earn(state, model, activity, now)
            for e in gained:
                earned[e.rule_id] = earned.get(e.rule_id, 0) + e.points
        fit_rules = fit_of(model, item)
        recent = now - REBUILD_WINDOW_SECONDS
        state = ScoreState(
            fit=sum(fit_rules.values()),
            engagement=state.engagement,
            half_life_days=model.half_life_days,
            model_version=model.version,
            seq=state.seq,
            behaviour=state.behaviour,
            fit_rules=fit_rules,
            caps=state.caps,
            rebuilt_before=recent,
            rebuilt_ids=_newest_ids(activities, recent),
        )
        reasons = [Earned(k, v) for k, v in earned.items()]
        reasons += [Earned(k, v) for k, v in fit_rules.items()]
        return state, reasons

    def _activities(self, tenant_id: str, contact_id: str) -> Iterable[Item]:
        partition = keys.contact(tenant_id, contact_id)["PK"]
        below = keys.ACTIVITY_PREFIX[:-1] + chr(ord(keys.ACTIVITY_PREFIX[-1]) + 1)
        for item in self.table.query_all(None, partition, sort_below=below, consistent=True):
            if item.get("type") == "activity":
                yield item


def _newest_ids(activities: list[Activity], since: float) -> tuple[str, ...]:
    recent = sorted(
        (a for a in activities if a.created_epoch >= since), key=lambda a: a.created_epoch
    )
    return tuple(a.id for a in recent[-MAX_REBUILT_IDS:])


def refit(
    state: ScoreState, item: Item, model: ScoringModel, now: float
) -> tuple[ScoreState, list[Earned]]:
    """The fit rules evaluated on the contact as it is now."""
    fit_rules = fit_of(model, item)
    if fit_rules == dict(state.fit_rules) and state.scored:
        return state, []
    reasons = fit_changes(state.fit_rules, fit_rules)
    return state.next(fit=sum(fit_rules.values()), fit_rules=fit_rules), reasons


def _first_fit(state: ScoreState, event: DomainEvent | None) -> bool:
    """A contact never scored, on its ContactCreated: nothing to rebuild, its fit is all."""
    return not state.scored and event is not None and event.DETAIL_TYPE == "ContactCreated"


def _events(
    tenant_id: str,
    contact_id: str,
    decision: ScoreDecision,
    model: ScoringModel,
    cause: ScoreCause,
    origin: Origin,
) -> list[DomainEvent]:
    """LeadScoreChanged when the score moved; LeadQualified on an upward crossing."""
    at = str(decision.state.updated_at)
    events: list[DomainEvent] = []
    if decision.moved:
        events.append(
            LeadScoreChanged.create(
                tenant_id,
                origin,
                LeadScoreChangedData(
                    contact_id=contact_id,
                    old_score=round(decision.old_score, 2),
                    new_score=round(decision.new_score, 2),
                    fit=decision.state.fit,
                    engagement=round(decision.engagement, 2),
                    model_version=model.version,
                    reasons=[
                        RulePoints(rule_id=e.rule_id, points=e.points) for e in decision.reasons
                    ],
                    cause=cause,
                ),
                at,
            )
        )
    if decision.qualified:
        events.append(
            LeadQualified.create(
                tenant_id,
                origin,
                LeadQualifiedData(
                    contact_id=contact_id,
                    threshold=decision.qualified,
                    threshold_score=getattr(model.thresholds, decision.qualified),
                    score=round(decision.new_score, 2),
                    model_version=model.version,
                    lifecycle_stage_before=decision.stage_before,
                    lifecycle_stage_after=decision.stage_after,
                ),
                at,
            )
        )
    return events
