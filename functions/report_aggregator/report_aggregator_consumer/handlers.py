"""report_aggregator: each record's contribution to the reports follows its changes
(crm_core/reports/aggregates.py).

The handlers keep no idempotency record (`once=False`): the aggregator applies a record's
change once by itself, whatever the duplicates, replays and order (decision 90).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from crm_core.events.activities import ActivityDeleted, ActivityLogged, ActivityUpdated
from crm_core.events.envelope import DomainEvent
from crm_core.reports.activities_report import SOURCE_KIND, activity_contribution
from crm_core.reports.aggregates import Change
from crm_core.reports.contributions import Contribution
from report_aggregator_consumer.context import aggregates, consumer, metrics, zones


def _apply(event: DomainEvent, kind: str, record_id: str, made: Contribution | None) -> str:
    change = Change(event.metadata.occurred_at, event.metadata.event_id)
    outcome = aggregates.apply(event.tenant_id, kind, record_id, change, made)
    metrics.add_metric(name=f"ReportChange_{outcome}", unit=MetricUnit.Count, value=1)
    return outcome


@consumer.on(ActivityLogged, once=False)
def activity_logged(event: ActivityLogged) -> str:
    activity = event.data.activity
    made = activity_contribution(activity, zones.of(event.tenant_id))
    return _apply(event, SOURCE_KIND, activity.id, made)


@consumer.on(ActivityUpdated, once=False)
def activity_updated(event: ActivityUpdated) -> str:
    activity = event.data.activity
    made = activity_contribution(activity, zones.of(event.tenant_id))
    return _apply(event, SOURCE_KIND, activity.id, made)


@consumer.on(ActivityDeleted, once=False)
def activity_deleted(event: ActivityDeleted) -> str:
    return _apply(event, SOURCE_KIND, event.data.activity.id, None)
