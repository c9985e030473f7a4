"""`crm events replay --archive`: StartReplay of the stage's archive for a time window, onto
its bus, optionally to named rules only; then DescribeReplay until it ends."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from infra.local.eventbridge import EventBridgeDelivery
from tests.delivery.support import wait_until
from tests.ops.conftest import PICKY, RECORDER, Backbone, envelope, rule_arn


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def idle(backbone: Backbone) -> bool:
    (delivery,) = [s for s in backbone.cloud.services if isinstance(s, EventBridgeDelivery)]
    invoker = backbone.cloud.async_invoker
    return delivery.idle() and invoker is not None and invoker.idle()


def replay_name(output: str) -> str:
    found = re.search(r"^replay (\S+):", output, re.MULTILINE)
    assert found, output
    return found.group(1)


def test_a_window_of_the_archive_is_delivered_again_to_the_named_rule(backbone: Backbone) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    detail = envelope(tenant="acme", deal="big")
    event_id = detail["metadata"]["event_id"]
    backbone.put("crm.deals", "Deal Won", detail)
    (first,) = backbone.wait_received(event_id, RECORDER)
    assert "replay-name" not in first["event"]
    end = datetime.now(UTC)

    result = backbone.crm(
        "events", "replay", "--archive", "--from", iso(start), "--to", iso(end),
        "--rule", "ops-local-everything",
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    name = replay_name(result.out)
    window = f"[{start.isoformat()}, {end.isoformat()})"
    assert f"ops-local-archive {window} onto ops-local-bus" in result.out
    assert result.out.rstrip().endswith(f"{name}: COMPLETED")
    first_again, again = backbone.wait_received(event_id, RECORDER, count=2)
    assert first_again == first
    assert again["event"]["replay-name"] == name
    assert again["event"]["detail"] == detail
    assert again["event"]["id"] != first["event"]["id"]  # a new EventBridge id, our event_id

    described = backbone.events.describe_replay(ReplayName=name)
    assert described["EventStartTime"] == start
    assert described["EventEndTime"] == end
    assert described["Destination"] == {
        "Arn": "arn:aws:events:us-east-1:123456789012:event-bus/ops-local-bus",
        "FilterArns": [rule_arn("ops-local-everything")],
    }


def test_events_outside_the_window_are_not_replayed(backbone: Backbone) -> None:
    before = envelope(when="before")
    backbone.put("crm.deals", "Deal Lost", before)
    backbone.wait_received(before["metadata"]["event_id"], RECORDER)
    time.sleep(1.1)  # event times are whole seconds
    start = datetime.now(UTC)
    inside = envelope(when="inside")
    backbone.put("crm.deals", "Deal Lost", inside)
    backbone.wait_received(inside["metadata"]["event_id"], RECORDER)
    result = backbone.crm(
        "events", "replay", "--archive", "--from", iso(start), "--to", "now"
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    backbone.wait_received(inside["metadata"]["event_id"], RECORDER, count=2)
    wait_until(lambda: idle(backbone), "every replayed event handed on", log=backbone.log)
    assert len(backbone.received(before["metadata"]["event_id"], RECORDER)) == 1


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (("--from", "2025-01-02T00:00:00Z", "--to", "2025-01-01T00:00:00Z"), "must be before"),
        (("--from", "2025-01-01T00:00:00Z", "--to", "2999-01-01T00:00:00Z"), "in the future"),
        (("--from", "yesterday", "--to", "now"), "not an ISO 8601 time"),
        (("--from", "2025-01-01T00:00:00Z"), "--archive needs --from and --to"),
        (("--from", "2025-01-01", "--to", "now", "--rule", "ops-local-nope"), "no rule"),
        (("--from", "2025-01-01", "--to", "now", "--dry-run"), "goes with --dlq or --outbox"),
    ],
)
def test_a_window_or_rule_that_makes_no_sense_is_refused(
    backbone: Backbone, window: tuple[str, ...], message: str
) -> None:
    result = backbone.crm("events", "replay", "--archive", *window)
    assert result.code == 2
    assert message in result.err
    assert result.out == ""


def test_a_replay_for_named_rules_leaves_the_other_rules_alone(backbone: Backbone) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    detail = envelope(tenant="acme", note="both rules match")
    event_id = detail["metadata"]["event_id"]
    backbone.put("crm.contacts", "ContactTagged", detail)
    backbone.wait_received(event_id, RECORDER)
    backbone.wait_received(event_id, PICKY)

    result = backbone.crm(
        "events", "replay", "--archive", "--from", iso(start), "--to", "now",
        "--rule", "ops-local-everything",
    )  # fmt: skip
    assert result.code == 0, result.out + result.err
    backbone.wait_received(event_id, RECORDER, count=2)
    wait_until(lambda: idle(backbone), "every replayed event handed on", log=backbone.log)
    assert len(backbone.received(event_id, PICKY)) == 1
