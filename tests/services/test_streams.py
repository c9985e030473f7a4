"""DynamoDB stream event sources through a running local cloud, from
tests/fixtures/templates/streams.yaml.

Two functions read the same table's stream: ContactsConsumer with a filter (INSERT or
MODIFY of a contact whose email starts with "ok-"), JobsConsumer (jobs; it fails on a job
that mentions "poison", retries twice, then sends the batch to StreamFailures). Both record
what they receive on the Received queue.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local import streams
from infra.local.dev import LocalCloud
from tests.services.conftest import Inbox, inbox, local_cloud

TABLE = "svc-streams"
RESTORED = [
    {"PK": {"S": "restored-contact"}, "kind": {"S": "contact"}, "email": {"S": "ok-restored"}},
    {"PK": {"S": "restored-job"}, "kind": {"S": "job"}, "title": {"S": "from the last run"}},
]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    state_dir = tmp_path_factory.mktemp("streams-state")
    # Saved by an earlier run: restored into the table before any service starts.
    saved = state_dir / "state" / f"table-{TABLE}.jsonl"
    saved.parent.mkdir(parents=True)
    saved.write_text("".join(json.dumps(item) + "\n" for item in RESTORED))
    with local_cloud("streams.yaml", state_dir) as running:
        assert running.context is not None
        service = streams.build(running.context)
        assert isinstance(service, streams.StreamService)
        fast = streams.StreamService(
            running.context, service.sources, retry_delays=(0.2,), poll_interval_s=0.1
        )
        fast.start()
        try:
            yield running
        finally:
            fast.stop()


@pytest.fixture(scope="module")
def received(cloud: LocalCloud) -> Inbox:
    return inbox(cloud, "svc-streams-received")


def put(cloud: LocalCloud, pk: str, **attributes: str) -> None:
    item = {"PK": {"S": pk}, **{k: {"S": v} for k, v in attributes.items()}}
    cloud.client("dynamodb").put_item(TableName=TABLE, Item=item)


def records_of(messages: list[dict[str, Any]], function: str) -> list[dict[str, Any]]:
    return [r for m in messages if m["function"] == function for r in m["event"]["Records"]]


def test_saved_items_are_restored_but_not_delivered_again(
    cloud: LocalCloud, received: Inbox
) -> None:
    assert cloud.restored[TABLE] == 2
    put(cloud, "job-after-restart", kind="job", title="new")
    seen = received.wait_for(
        lambda s: any(
            r["dynamodb"]["Keys"]["PK"]["S"] == "job-after-restart"
            for r in records_of(s, "svc-streams-jobs")
        ),
        what="the job written after the start",
    )
    keys = [r["dynamodb"]["Keys"]["PK"]["S"] for m in seen for r in m["event"]["Records"]]
    assert "restored-contact" not in keys
    assert "restored-job" not in keys  # even with StartingPosition TRIM_HORIZON


def test_a_filter_drops_records_and_delivers_matches_once_in_order(
    cloud: LocalCloud, received: Inbox
) -> None:
    dynamodb = cloud.client("dynamodb")
    put(cloud, "c1", kind="contact", email="ok-1")  # INSERT: matches
    put(cloud, "co1", kind="company", email="ok-company")  # another kind
    put(cloud, "c2", kind="contact", email="bad-2")  # no "ok-" prefix
    put(cloud, "c3", kind="contact", email="ok-3")  # INSERT: matches
    put(cloud, "c1", kind="contact", email="ok-1b")  # MODIFY: matches
    dynamodb.delete_item(TableName=TABLE, Key={"PK": {"S": "c3"}})  # REMOVE: not asked for
    put(cloud, "c4", kind="contact")  # no email at all

    def contacts(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return records_of(seen, "svc-streams-contacts")

    received.wait_for(lambda s: len(contacts(s)) >= 3, what="three matching records")
    received.quiet(1.0)  # ten polls more: nothing else may come
    delivered = contacts(received.seen)
    assert [(r["eventName"], r["dynamodb"]["NewImage"]["email"]["S"]) for r in delivered] == [
        ("INSERT", "ok-1"),
        ("INSERT", "ok-3"),
        ("MODIFY", "ok-1b"),
    ]
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in delivered]
    assert sequences == sorted(sequences)

    stream_arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    modify = delivered[2]
    assert set(modify) == {
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    }
    assert modify["eventSource"] == "aws:dynamodb"
    assert modify["eventVersion"] == "1.1"
    assert modify["awsRegion"] == "us-east-1"
    assert modify["eventSourceARN"] == stream_arn
    assert modify["dynamodb"]["Keys"] == {"PK": {"S": "c1"}}
    assert modify["dynamodb"]["OldImage"]["email"] == {"S": "ok-1"}
    assert modify["dynamodb"]["NewImage"]["email"] == {"S": "ok-1b"}
    assert modify["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert isinstance(modify["dynamodb"]["ApproximateCreationDateTime"], int)
    assert isinstance(modify["dynamodb"]["SizeBytes"], int)


def test_a_failing_batch_is_retried_then_sent_to_its_on_failure_queue(
    cloud: LocalCloud, received: Inbox
) -> None:
    failures = inbox(cloud, "svc-streams-failures")
    put(cloud, "poison-1", kind="job", title="poison")

    def attempts(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            r
            for r in records_of(seen, "svc-streams-jobs")
            if r["dynamodb"]["Keys"]["PK"]["S"] == "poison-1"
        ]

    (failure,) = failures.wait_for(lambda s: len(s) >= 1, what="the on-failure record")
    received.read()  # each attempt was recorded before it failed
    assert len(attempts(received.seen)) == 3  # the first attempt and MaximumRetryAttempts 2
    poison = attempts(received.seen)[0]
    stream_arn = poison["eventSourceARN"]
    shard = cloud.client("dynamodbstreams").describe_stream(StreamArn=stream_arn)
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    assert failure["requestContext"]["functionArn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:svc-streams-jobs"
    )
    assert failure["responseContext"]["functionError"] == "Unhandled"
    assert failure["version"] == "1.0"
    info = failure["DDBStreamBatchInfo"]
    assert info["shardId"] == shard["StreamDescription"]["Shards"][0]["ShardId"]
    assert info["startSequenceNumber"] == poison["dynamodb"]["SequenceNumber"]
    assert info["endSequenceNumber"] == poison["dynamodb"]["SequenceNumber"]
    assert info["batchSize"] == 1
    assert info["streamArn"] == stream_arn
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")

    # The shard moved on: the next job is delivered, and the poison one is not tried again.
    put(cloud, "job-after-the-failure", kind="job", title="fine")
    received.wait_for(
        lambda s: any(
            r["dynamodb"]["Keys"]["PK"]["S"] == "job-after-the-failure"
            for r in records_of(s, "svc-streams-jobs")
        ),
        what="the job after the poison one",
    )
    assert len(attempts(received.seen)) == 3
    assert failures.quiet(0.5) == []
