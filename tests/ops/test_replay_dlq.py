"""`crm events replay --dlq`: each kind of dead letter the backbone produces is delivered
again after a fix, and a message leaves its queue only once its re-delivery was accepted."""

from __future__ import annotations

import json
from typing import Any

from infra.local.streams import StreamSource, failure_record
from infra.stream_records import lambda_record
from tests.delivery.support import wait_until
from tests.ops.conftest import (
    BUS,
    CONSUMER_DLQ,
    OUTBOX_DLQ,
    PICKY,
    RECORDER,
    RULE_DLQ,
    TABLE,
    Backbone,
    envelope,
    function_arn,
    rule_arn,
)


def test_a_poison_event_ends_in_the_dlq_and_after_the_fix_replay_processes_it(
    backbone: Backbone,
) -> None:
    poisoned = envelope(poison="bad-phone")
    event_id = poisoned["metadata"]["event_id"]
    backbone.put("crm.contacts", "Contact Created", poisoned)
    attempts = backbone.wait_received(event_id, PICKY, count=2)
    assert [a["outcome"] for a in attempts] == ["failed", "failed"]
    wait_until(lambda: backbone.depth(CONSUMER_DLQ) == 1, "the on-failure record", log=backbone.log)

    dry = backbone.crm("events", "replay", "--dlq", CONSUMER_DLQ, "--dry-run")
    assert dry.code == 0, dry.err
    assert f"invocation record -> {PICKY}:$LATEST (async)" in dry.out
    assert "would re-drive 1, would fail 0, kept 0" in dry.out
    assert backbone.visible(CONSUMER_DLQ) == 1  # kept, and visible again at once

    # The fix is deployed: the consumer now takes the event.
    backbone.dynamodb.put_item(
        TableName=TABLE, Item={"PK": {"S": "FIX#bad-phone"}, "SK": {"S": "FIX"}}
    )
    result = backbone.crm("events", "replay", "--dlq", CONSUMER_DLQ)
    assert result.code == 0, result.out + result.err
    assert f"{CONSUMER_DLQ}: re-driven 1, failed 0, kept 0" in result.out
    attempts = backbone.wait_received(event_id, PICKY, count=3)
    assert attempts[-1]["outcome"] == "processed"
    assert attempts[-1]["event"]["detail"] == poisoned
    wait_until(lambda: backbone.cloud.async_invoker.idle(), "the async invoker")  # type: ignore[union-attr]
    assert backbone.depth(CONSUMER_DLQ) == 0


def test_a_redrive_that_fails_keeps_its_message_and_fails_the_command(backbone: Backbone) -> None:
    url = backbone.sqs.get_queue_url(QueueName=CONSUMER_DLQ)["QueueUrl"]
    record = {
        "version": "1.0",
        "timestamp": "2025-01-01T00:00:00.000Z",
        "requestContext": {
            "requestId": "r-1",
            "functionArn": f"{function_arn('ops-local-removed')}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": {"detail": envelope()},
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "RuntimeError"},
    }
    backbone.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
    backbone.sqs.send_message(QueueUrl=url, MessageBody="not JSON at all")

    result = backbone.crm("events", "replay", "--dlq", url)
    assert result.code == 1
    assert "ResourceNotFoundException" in result.out
    assert "kept" in result.out
    assert "the body is not JSON" in result.out
    assert f"{url}: re-driven 0, failed 1, kept 1" in result.out
    assert backbone.visible(CONSUMER_DLQ) == 2  # both still there, visible again at once

    limited = backbone.crm("events", "replay", "--dlq", CONSUMER_DLQ, "--max", "1", "--dry-run")
    assert limited.code == 0
    assert limited.out.count("\n") == 2  # one message, then the summary
    backbone.purge(CONSUMER_DLQ)


def test_rule_target_dead_letters_go_to_their_target_again(backbone: Backbone) -> None:
    # A target that does not exist: EventBridge's dead letter, which no replay can deliver.
    orphan = envelope()
    backbone.put("crm.orphan", "Orphaned", orphan)
    wait_until(lambda: backbone.depth(RULE_DLQ) == 1, "the orphan's dead letter", log=backbone.log)
    # The recorder's rule could not deliver this one (say, during an outage).
    missed: dict[str, Any] = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Contact Updated",
        "source": "crm.contacts",
        "account": "123456789012",
        "time": "2025-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": envelope(note="missed"),
    }
    attributes = {
        "RULE_ARN": rule_arn("ops-local-everything"),
        "TARGET_ARN": function_arn(RECORDER),
        "ERROR_CODE": "ThrottlingException",
        "ERROR_MESSAGE": "Rate exceeded",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttemptsExhausted",
        "RETRY_ATTEMPTS": "185",
    }
    backbone.sqs.send_message(
        QueueUrl=backbone.sqs.get_queue_url(QueueName=RULE_DLQ)["QueueUrl"],
        MessageBody=json.dumps(missed),
        MessageAttributes={
            k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
        },
    )

    result = backbone.crm("events", "replay", "--dlq", RULE_DLQ)
    assert result.code == 1  # the orphan's
    assert f"{RULE_DLQ}: re-driven 1, failed 1, kept 0" in result.out
    assert "dead letter of rule ops-local-everything -> ops-local-recorder (async)" in result.out
    (received,) = backbone.wait_received(missed["detail"]["metadata"]["event_id"], RECORDER)
    assert received["event"] == missed
    assert backbone.depth(RULE_DLQ) == 1
    (left,) = backbone.sqs.receive_message(
        QueueUrl=backbone.sqs.get_queue_url(QueueName=RULE_DLQ)["QueueUrl"],
        MessageAttributeNames=["All"],
    )["Messages"]
    assert json.loads(left["Body"])["detail"] == orphan
    assert left["MessageAttributes"]["TARGET_ARN"]["StringValue"].endswith(":ops-local-gone")
    backbone.purge(RULE_DLQ)


def outbox_item(pk: str, detail: dict[str, Any], source: str = "crm.companies") -> dict[str, Any]:
    return {
        "PK": {"S": pk},
        "SK": {"S": f"OUTBOX#{detail['metadata']['event_id']}"},
        "type": {"S": "outbox_event"},
        "source": {"S": source},
        "detail_type": {"S": "Company Created"},
        "detail": {"S": json.dumps(detail)},
        "occurred_at": {"S": detail["metadata"]["occurred_at"]},
        "event_id": {"S": detail["metadata"]["event_id"]},
        "tenant_id": {"S": detail["metadata"]["tenant_id"]},
    }


def stream_records(backbone: Backbone) -> tuple[str, str, list[dict[str, Any]]]:
    """Every record of the fixture table's stream so far, in Lambda's shape."""
    arn = backbone.dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    (shard,) = backbone.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = backbone.streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    raw = backbone.streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return arn, shard["ShardId"], [lambda_record(r, arn) for r in raw]


def test_an_outbox_batch_the_publisher_gave_up_on_is_published_from_the_stream(
    backbone: Backbone,
) -> None:
    details = [envelope(tenant="acme", n=n) for n in range(3)]
    put = backbone.dynamodb.put_item
    put(TableName=TABLE, Item=outbox_item("COMPANY#1", details[0]))
    put(
        TableName=TABLE, Item={"PK": {"S": "COMPANY#1"}, "SK": {"S": "A"}, "type": {"S": "company"}}
    )
    put(TableName=TABLE, Item=outbox_item("COMPANY#2", details[1]))
    put(TableName=TABLE, Item=outbox_item("COMPANY#3", details[2]))
    stream_arn, shard_id, records = stream_records(backbone)
    batch = [r for r in records if r["dynamodb"]["Keys"]["PK"]["S"].startswith("COMPANY#")]
    batch = [r for r in batch if r["dynamodb"]["NewImage"]["type"]["S"] == "outbox_event"]
    assert len(batch) == 3
    publisher = next(f for f in backbone.cloud.functions if f.name == RECORDER)
    source = StreamSource(function=publisher, event_id="Outbox", stream_arn=stream_arn)
    record = failure_record(source, shard_id, batch, "RetryAttemptsExhausted", 11, None)
    dlq = backbone.cloud.running.outputs["OutboxPublisherDlqUrl"]  # type: ignore[union-attr]
    backbone.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(record))

    dry = backbone.crm("events", "replay", "--dlq", dlq, "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    assert f"-> {BUS}: would publish 3 event(s)" in dry.out
    assert backbone.depth(OUTBOX_DLQ) == 1

    result = backbone.crm("events", "replay", "--dlq", OUTBOX_DLQ)
    assert result.code == 0, result.out + result.err
    assert "published 3 event(s)" in result.out
    assert f"{OUTBOX_DLQ}: re-driven 1, failed 0, kept 0" in result.out
    for detail in details:
        (received,) = backbone.wait_received(detail["metadata"]["event_id"], RECORDER)
        event = received["event"]
        assert (event["source"], event["detail-type"]) == ("crm.companies", "Company Created")
        assert event["detail"] == detail
        assert event["time"] == detail["metadata"]["occurred_at"][:19] + "Z"
    assert backbone.depth(OUTBOX_DLQ) == 0


def test_a_stream_batch_past_the_streams_records_fails_and_stays(backbone: Backbone) -> None:
    stream_arn, shard_id, records = stream_records(backbone)
    last = int(records[-1]["dynamodb"]["SequenceNumber"])
    missing = dict(
        records[-1], dynamodb={**records[-1]["dynamodb"], "SequenceNumber": str(last + 50)}
    )
    publisher = next(f for f in backbone.cloud.functions if f.name == RECORDER)
    source = StreamSource(function=publisher, event_id="Outbox", stream_arn=stream_arn)
    record = failure_record(source, shard_id, [records[-1], missing], "RecordAgeExceeded", 1, None)
    url = backbone.sqs.get_queue_url(QueueName=OUTBOX_DLQ)["QueueUrl"]
    backbone.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))

    result = backbone.crm("events", "replay", "--dlq", OUTBOX_DLQ)
    assert result.code == 1
    assert f"the stream has no record {last + 50}" in result.out
    assert backbone.visible(OUTBOX_DLQ) == 1
    backbone.purge(OUTBOX_DLQ)
