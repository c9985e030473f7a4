"""The `activities` report: activities per owner, type and period.

An activity counts once, in the periods of the day it occurred on (in the tenant's zone),
for its owner: a task's assignee, anything else's author. Its `n` moves when it is logged,
when a change moves it (another day, owner or type) and when it is deleted.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from crm_core.clock import parse_iso
from crm_core.events.activities import ActivityFacts
from crm_core.reports.contributions import Bucket, Contribution, contribution
from crm_core.reports.periods import local_date, period_keys

REPORT = "activities"
SOURCE_KIND = "activity"
DIMENSIONS = ("owner_id", "type")


def owner_of(activity: ActivityFacts) -> str:
    return activity.assignee_id or activity.created_by


def activity_contribution(activity: ActivityFacts, zone: ZoneInfo) -> Contribution:
    """What one activity adds: `n` = 1 in its day, week, month and quarter."""
    day = local_date(parse_iso(activity.occurred_at), zone)
    dims = (("owner_id", owner_of(activity)), ("type", activity.type))
    return contribution(
        (Bucket(REPORT, granularity, key, dims), {"n": 1})
        for granularity, key in period_keys(day).items()
    )
