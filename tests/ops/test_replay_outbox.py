"""`crm events replay --outbox`: the outbox items of a window, published again onto the bus,
for an outage longer than the stream keeps its records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from crm_core.clock import format_iso
from tests.ops.conftest import RECORDER, TABLE, Backbone, envelope
from tests.ops.test_replay_dlq import outbox_item


def at(moment: datetime, **data: Any) -> dict[str, Any]:
    detail = envelope(tenant="acme", **data)
    detail["metadata"]["occurred_at"] = format_iso(moment)
    return detail


def test_the_window_of_outbox_items_is_published_again(backbone: Backbone) -> None:
    now = datetime.now(UTC)
    before = at(now - timedelta(hours=30), which="before")
    inside = [at(now - timedelta(hours=26, minutes=n), which=f"inside-{n}") for n in range(3)]
    after = at(now - timedelta(minutes=5), which="after")
    for n, detail in enumerate([before, *inside, after]):
        backbone.dynamodb.put_item(TableName=TABLE, Item=outbox_item(f"T#acme#CO#{n}", detail))
    backbone.dynamodb.put_item(  # not an outbox item, in the window's time
        TableName=TABLE,
        Item={
            "PK": {"S": "T#acme#CO#9"},
            "SK": {"S": "PROFILE"},
            "type": {"S": "company"},
            "occurred_at": {"S": format_iso(now - timedelta(hours=26))},
        },
    )
    window = [
        "--from",
        format_iso(now - timedelta(hours=27)),
        "--to",
        format_iso(now - timedelta(hours=25)),
    ]

    dry = backbone.crm("events", "replay", "--outbox", *window, "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    assert "outbox items of" in dry.out
    assert "3  crm.companies Company Created" in dry.out
    assert "dry run: nothing published" in dry.out

    result = backbone.crm("events", "replay", "--outbox", *window)
    assert result.code == 0, result.out + result.err
    assert "published 3 of 3 onto ops-local-bus" in result.out
    for detail in inside:
        (got,) = backbone.wait_received(detail["metadata"]["event_id"], RECORDER)
        assert got["event"]["detail"] == detail
        assert got["event"]["source"] == "crm.companies"
        assert got["event"]["time"] == detail["metadata"]["occurred_at"][:19] + "Z"
    for detail in (before, after):
        assert backbone.received(detail["metadata"]["event_id"], RECORDER) == []


def test_outbox_replay_refuses_what_belongs_to_other_sources(backbone: Backbone) -> None:
    refused = backbone.crm(
        "events", "replay", "--outbox", "--from", "2025-01-01", "--to", "now", "--rule", "x"
    )
    assert refused.code == 2
    assert "--rule goes with --archive" in refused.err
    refused = backbone.crm("events", "replay", "--outbox", "--from", "2025-01-01")
    assert refused.code == 2
    assert "--outbox needs --from and --to" in refused.err
