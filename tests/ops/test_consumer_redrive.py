"""The whole failure path of a consumer written with crm_core's consumer helper: a poisoned
event fails its retries and lands in the consumer's DLQ; after the fix, `crm events replay
--dlq` makes it take effect exactly once; later duplicates (a re-send, an archive replay)
take no effect again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.delivery.support import wait_until
from tests.ops.conftest import TABLE, Backbone
from tests.support.events import contact_created

COUNTING = "ops-local-counting"
COUNTING_DLQ = "ops-local-counting-dlq"


def effects(backbone: Backbone, event_id: str) -> int:
    item = backbone.dynamodb.get_item(
        TableName=TABLE, Key={"PK": {"S": f"COUNT#{event_id}"}, "SK": {"S": "COUNT"}}
    ).get("Item")
    return int(item["effects"]["N"]) if item else 0


def settled(backbone: Backbone) -> None:
    invoker = backbone.cloud.async_invoker
    wait_until(
        lambda: invoker is not None and invoker.idle(), "the async invoker", log=backbone.log
    )


def test_poison_dlq_fix_redrive_then_duplicates_take_no_effect(backbone: Backbone) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    detail = contact_created("acme", poison="bad-country")
    event_id = detail["metadata"]["event_id"]

    backbone.put("crm.contacts", "ContactCreated", detail)
    attempts = backbone.wait_received(event_id, COUNTING, count=2)
    assert [a["outcome"] for a in attempts] == ["failed", "failed"]  # the try and one retry
    wait_until(lambda: backbone.depth(COUNTING_DLQ) == 1, "the on-failure record", log=backbone.log)
    assert effects(backbone, event_id) == 0

    backbone.dynamodb.put_item(
        TableName=TABLE, Item={"PK": {"S": "FIX#bad-country"}, "SK": {"S": "FIX"}}
    )
    result = backbone.crm("events", "replay", "--dlq", COUNTING_DLQ)
    assert result.code == 0, result.out + result.err
    assert f"{COUNTING_DLQ}: re-driven 1, failed 0, kept 0" in result.out
    wait_until(lambda: effects(backbone, event_id) == 1, "the re-driven event's effect")
    settled(backbone)
    assert backbone.depth(COUNTING_DLQ) == 0

    # The same event again: sent twice more, and replayed from the archive.
    backbone.put("crm.contacts", "ContactCreated", detail)
    backbone.put("crm.contacts", "ContactCreated", detail)
    replay = backbone.crm(
        "events", "replay", "--archive", "--from", start.isoformat(), "--to", "now"
    )
    assert replay.code == 0, replay.out + replay.err
    wait_until(
        lambda: len(backbone.received(event_id, "ops-local-recorder")) >= 4,
        "the recorder to see every copy",
        log=backbone.log,
    )
    settled(backbone)
    assert effects(backbone, event_id) == 1
    processed = [a for a in backbone.received(event_id, COUNTING) if a["outcome"] == "processed"]
    assert len(processed) == 1  # the duplicates never reached the handler
    assert backbone.depth(COUNTING_DLQ) == 0
