"""When a deal rots: its stage's rotting days after it entered the stage or had its last
activity, whichever is later; never for a closed deal or a stage that does not rot."""

from __future__ import annotations

from typing import Any

import pytest

from crm_core.deals.rotting import RotSchedules, RotTarget, rots_at, schedule_name

PIPELINE = {
    "id": "default",
    "stages": [
        {"id": "new", "kind": "open", "rotting_days": None},
        {"id": "proposal", "kind": "open", "rotting_days": 14},
        {"id": "won", "kind": "won", "rotting_days": None},
    ],
}


def deal(**fields: Any) -> dict[str, Any]:
    return {
        "status": "open",
        "stage_id": "proposal",
        "stage_entered_at": "2027-01-01T10:00:00.000Z",
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "2027-01-15T10:00:00.000Z"),
        ({"last_activity_at": "2027-01-03T08:30:00.250Z"}, "2027-01-17T08:30:00.250Z"),
        ({"last_activity_at": "2026-12-01T00:00:00.000Z"}, "2027-01-15T10:00:00.000Z"),
        ({"stage_id": "new"}, None),
        ({"stage_id": "won", "status": "won"}, None),
        ({"status": "lost"}, None),
        ({"stage_id": "gone"}, None),
    ],
)
def test_rots_at(fields: dict[str, Any], expected: str | None) -> None:
    assert rots_at(deal(**fields), PIPELINE) == expected


def test_the_schedule_fires_once_at_the_moment_never_before_it() -> None:
    target = RotTarget("g", "arn:fn", "arn:role", "arn:dlq")
    request = RotSchedules(target, make_client=lambda: None).request(
        "acme", "01JX9DEA1B3D5F7H9K1M3P5R7T", "2027-01-15T10:00:00.250Z"
    )
    assert request["Name"] == schedule_name("01JX9DEA1B3D5F7H9K1M3P5R7T")
    assert len(request["Name"]) <= 64
    # at() has whole seconds: a fraction rounds up, never down.
    assert request["ScheduleExpression"] == "at(2027-01-15T10:00:01)"
    assert request["ScheduleExpressionTimezone"] == "UTC"
    assert request["ActionAfterCompletion"] == "DELETE"
    assert request["Target"]["DeadLetterConfig"] == {"Arn": "arn:dlq"}
