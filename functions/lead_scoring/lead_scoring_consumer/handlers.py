"""lead_scoring: every contact's score, current with each event, and re-scores after a
model change.

- ActivityLogged: the activity's points, added in one conditional write of the contact
  (crm_core/scoring/scorer.py), with LeadScoreChanged, and LeadQualified on a crossing;
- ContactCreated, ContactUpdated: the fit rules evaluated again;
- ContactMerged: the survivor rebuilt from its activities (now both contacts' ones);
- ScoringModelChanged: a re-score job for the new version, run until time runs low;
- ScoringJobProgressed (running): the next run of a paused job.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from crm_core.events.activities import ActivityLogged
from crm_core.events.contacts import ContactCreated, ContactMerged, ContactUpdated
from crm_core.events.envelope import DomainEvent, Origin
from crm_core.events.scoring import ScoreCause, ScoringJobProgressed, ScoringModelChanged
from crm_core.scoring.jobs import JobStatus
from crm_core.scoring.rescore import RunResult
from crm_core.scoring.rules import Activity
from crm_core.scoring.scorer import PRODUCER, Scored
from lead_scoring_consumer.context import (
    consumer,
    invocation,
    jobs,
    logger,
    metrics,
    rescorer,
    scorer,
)


def _report(scored: Scored | None, what: str) -> dict[str, Any]:
    if scored is None:
        return {"changed": False}
    if abs(scored.new_score - scored.old_score) > 1e-6:
        metrics.add_metric(name="LeadScoreChanged", unit=MetricUnit.Count, value=1)
    if scored.qualified:
        metrics.add_metric(name="LeadQualified", unit=MetricUnit.Count, value=1)
    summary = {
        "changed": True,
        "contact_id": scored.contact_id,
        "old_score": round(scored.old_score, 2),
        "new_score": round(scored.new_score, 2),
        "rules": [e.rule_id for e in scored.reasons],
        "qualified": scored.qualified,
        "lifecycle_stage": scored.stage_after,
    }
    logger.info(f"score changed by {what}", extra=summary)
    return summary


@consumer.on(ActivityLogged)
def activity_logged(event: ActivityLogged) -> dict[str, Any]:
    activity = Activity.of(event.data.activity.model_dump())
    return _report(scorer.on_activity(event, activity), activity.type)


@consumer.on(ContactCreated)
def contact_created(event: ContactCreated) -> dict[str, Any]:
    return _report(scorer.on_contact(event, event.data.contact.id), "fit")


@consumer.on(ContactUpdated)
def contact_updated(event: ContactUpdated) -> dict[str, Any]:
    return _report(scorer.on_contact(event, event.data.contact.id), "fit")


@consumer.on(ContactMerged)
def contact_merged(event: ContactMerged) -> dict[str, Any]:
    cause = ScoreCause(detail_type=event.DETAIL_TYPE, event_id=event.event_id)
    scored = scorer.rebuild(
        event.tenant_id,
        event.data.survivor_id,
        cause,
        _origin(event),
        merged_from=event.data.merged_id,
    )
    return _report(scored, "merge")


@consumer.on(ScoringModelChanged)
def model_changed(event: ScoringModelChanged) -> dict[str, Any]:
    job_id = jobs.start(event.tenant_id, event.data.version, _origin(event))
    return _run(event, job_id)


@consumer.on(ScoringJobProgressed)
def job_progressed(event: ScoringJobProgressed) -> dict[str, Any]:
    if event.data.status != JobStatus.RUNNING:
        return {"job_id": event.data.job_id, "status": event.data.status}
    return _run(event, event.data.job_id)


def _run(event: DomainEvent, job_id: str) -> dict[str, Any]:
    result: RunResult = rescorer.run(
        event.tenant_id, job_id, invocation.time_left_ms, _origin(event)
    )
    metrics.add_metric(name="ContactsRescored", unit=MetricUnit.Count, value=result.rescored)
    summary = {
        "job_id": result.job_id,
        "status": result.status.value,
        "seen": result.seen,
        "rescored": result.rescored,
        "stopped_by_another": result.stopped_by_another,
    }
    logger.info("re-score run ended", extra=summary)
    return summary


def _origin(event: DomainEvent) -> Origin:
    return Origin.system(PRODUCER, event.metadata.correlation_id)
