"""outbox_publisher: real stream records, through the template's filter, onto the bus."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from crm_core.events.outbox import STREAM_FILTER
from infra.cfn import load_template
from infra.local.streams import RecordFilter
from infra.stream_records import lambda_record
from tests.conftest import ConsumerFunction, load_consumer
from tests.support.api import Api, LambdaContext, User
from tests.support.aws_calls import count_calls
from tests.support.calls import create, patch

ADMIN = User("acme", ("admin",))
BUS = "crm-test-bus"
WHOLE_EVENT = {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"}


def template_filter() -> dict[str, Any]:
    props = load_template()["Resources"]["OutboxPublisherFunction"]["Properties"]
    (pattern,) = props["Events"]["Outbox"]["Properties"]["FilterCriteria"]["Filters"]
    found: dict[str, Any] = json.loads(pattern["Pattern"])
    return found


@pytest.fixture(scope="module")
def publisher(contacts_module: ModuleType) -> ConsumerFunction:
    os.environ["EVENT_BUS_NAME"] = BUS
    return load_consumer("outbox_publisher")


class Bus:
    """The test bus, with a rule that copies every event, whole, into a queue."""

    def __init__(self) -> None:
        self.events = boto3.client("events")
        self.sqs = boto3.client("sqs")
        self.events.create_event_bus(Name=BUS)
        self.queue = self.sqs.create_queue(QueueName="bus-watch")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])
        self.events.put_rule(
            Name="watch", EventBusName=BUS, EventPattern=json.dumps({"source": [{"prefix": ""}]})
        )
        self.events.put_targets(
            Rule="watch",
            EventBusName=BUS,
            Targets=[
                {
                    "Id": "q",
                    "Arn": arn["Attributes"]["QueueArn"],
                    "InputTransformer": WHOLE_EVENT,
                }
            ],
        )

    def received(self) -> list[dict[str, Any]]:
        events = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10)
            messages = batch.get("Messages", [])
            if not messages:
                return events
            for message in messages:
                events.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])

    def close(self) -> None:
        self.events.remove_targets(Rule="watch", EventBusName=BUS, Ids=["q"])
        self.events.delete_rule(Name="watch", EventBusName=BUS)
        self.events.delete_event_bus(Name=BUS)
        self.sqs.delete_queue(QueueUrl=self.queue)


@pytest.fixture
def bus(aws: None) -> Iterator[Bus]:
    watched = Bus()
    yield watched
    watched.close()


def stream_records(table: Any) -> list[dict[str, Any]]:
    """Every record of the (fresh) table's stream so far, as Lambda delivers them."""
    arn = table.client.describe_table(TableName=table.name)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams")
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += [
            lambda_record(r, arn) for r in streams.get_records(ShardIterator=iterator)["Records"]
        ]
    return records


def delivered(table: Any) -> list[dict[str, Any]]:
    """The stream records the template's FilterCriteria lets through to the publisher."""
    keep = RecordFilter.of({"Filters": [{"Pattern": json.dumps(template_filter())}]})
    return [r for r in stream_records(table) if keep.matches(r)]


def outbox_details(table: Any) -> list[dict[str, Any]]:
    return [json.loads(r["dynamodb"]["NewImage"]["detail"]["S"]) for r in delivered(table)]


def run(publisher: ConsumerFunction, records: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = publisher.handler({"Records": records}, LambdaContext())
    return result


class FlakyEvents:
    """EventBridge that refuses chosen entries (by detail-type) a number of times, and
    passes every other entry to the real (moto) client: PutEvents' partial failure."""

    def __init__(self, real: Any, refuse: dict[str, int]) -> None:
        self.real = real
        self.refuse = dict(refuse)
        self.requests: list[list[dict[str, Any]]] = []
        self.meta = real.meta

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.requests.append(Entries)
        results: list[dict[str, Any]] = []
        passed = []
        for entry in Entries:
            if self.refuse.get(entry["DetailType"], 0) > 0:
                self.refuse[entry["DetailType"]] -= 1
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                passed.append(entry)
                results.append({})
        if passed:
            sent = iter(self.real.put_events(Entries=passed)["Entries"])
            results = [r or next(sent) for r in results]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


# The filter -----------------------------------------------------------------------------------
def test_the_template_filter_is_the_outbox_filter() -> None:
    assert template_filter() == STREAM_FILTER


def test_only_new_outbox_items_reach_the_publisher(api: Api, table: Any) -> None:
    contact = create(api, "/contacts", ADMIN, {"email": "ada@example.com", "tags": ["vip"]})
    patch(api, f"/contacts/{contact['id']}", ADMIN, {"title": "CEO"})
    # An outbox item expiring (TTL) or removed is not an event.
    (first,) = [
        r
        for r in delivered(table)
        if "ContactCreated" in r["dynamodb"]["NewImage"]["detail_type"]["S"]
    ]
    table.client.delete_item(TableName=table.name, Key=first["dynamodb"]["Keys"])

    all_records = stream_records(table)
    passed = delivered(table)
    assert len(all_records) > len(passed)
    assert [r["dynamodb"]["NewImage"]["detail_type"]["S"] for r in passed] == [
        "ContactCreated",
        "ContactUpdated",
    ]
    assert all(r["eventName"] == "INSERT" for r in passed)


# Publishing -----------------------------------------------------------------------------------
def test_each_event_reaches_the_bus_as_written(
    api: Api, table: Any, bus: Bus, publisher: ConsumerFunction
) -> None:
    for n in range(3):
        create(api, "/contacts", ADMIN, {"email": f"p{n}@example.com"})

    assert run(publisher, delivered(table)) == {"batchItemFailures": []}

    events = bus.received()
    written = outbox_details(table)
    assert sorted((e["detail"] for e in events), key=lambda d: d["metadata"]["event_id"]) == written
    for event in events:
        assert event["source"] == "crm.contacts"
        assert event["detail-type"] == "ContactCreated"
        # EventBridge's time is the change's time (to the second).
        assert event["time"] == event["detail"]["metadata"]["occurred_at"][:19] + "Z"


def test_puts_at_most_ten_entries_per_request(
    api: Api, table: Any, bus: Bus, publisher: ConsumerFunction
) -> None:
    for n in range(23):
        create(api, "/contacts", ADMIN, {"email": f"c{n}@example.com"})
    records = delivered(table)

    with count_calls(publisher.context.events) as calls:
        assert run(publisher, records) == {"batchItemFailures": []}

    assert calls.by_operation == {"PutEvents": 3}
    assert len(bus.received()) == 23


def test_refused_entries_are_sent_again_and_arrive_once(
    api: Api, table: Any, bus: Bus, publisher: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    contact = create(api, "/contacts", ADMIN, {"email": "ada@example.com"})
    patch(api, f"/contacts/{contact['id']}", ADMIN, {"title": "CEO"})
    create(api, "/contacts", ADMIN, {"email": "bob@example.com"})
    flaky = FlakyEvents(publisher.context.events, {"ContactUpdated": 2})
    monkeypatch.setattr(publisher.context, "events", flaky)

    assert run(publisher, delivered(table)) == {"batchItemFailures": []}

    assert [len(r) for r in flaky.requests] == [3, 1, 1]
    received = bus.received()
    assert sorted(e["detail-type"] for e in received) == [
        "ContactCreated",
        "ContactCreated",
        "ContactUpdated",
    ]
    assert len({e["detail"]["metadata"]["event_id"] for e in received}) == 3


def test_entries_that_keep_failing_are_reported_so_the_stream_retries_them(
    api: Api, table: Any, bus: Bus, publisher: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    contact = create(api, "/contacts", ADMIN, {"email": "ada@example.com"})
    patch(api, f"/contacts/{contact['id']}", ADMIN, {"title": "CEO"})
    create(api, "/contacts", ADMIN, {"email": "bob@example.com"})
    records = delivered(table)
    monkeypatch.setattr(
        publisher.context, "events", FlakyEvents(publisher.context.events, {"ContactUpdated": 99})
    )
    monkeypatch.setattr("crm_core.events.forwarding._backoff", lambda attempt: None)

    result = run(publisher, records)

    updated = records[1]["dynamodb"]["SequenceNumber"]
    assert result == {"batchItemFailures": [{"itemIdentifier": updated}]}
    assert sorted(e["detail-type"] for e in bus.received()) == ["ContactCreated", "ContactCreated"]

    # The stream delivers the batch again from the reported record; the bus works again.
    monkeypatch.undo()
    assert run(publisher, records[1:]) == {"batchItemFailures": []}
    again = bus.received()
    assert [e["detail-type"] for e in again].count("ContactUpdated") == 1


def test_a_bus_that_cannot_be_reached_fails_the_whole_batch(
    api: Api, table: Any, publisher: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(api, "/contacts", ADMIN, {"email": "ada@example.com"})
    monkeypatch.setattr(publisher.context, "BUS_NAME", "no-such-bus")
    records = delivered(table)
    # A function error: Lambda retries (and bisects) the batch, then sends it to the DLQ.
    with pytest.raises(Exception, match=r"no-such-bus|ResourceNotFound"):
        run(publisher, records)


def test_the_trace_of_the_write_is_carried_to_the_bus(
    api: Api, table: Any, bus: Bus, publisher: ConsumerFunction, monkeypatch: pytest.MonkeyPatch
) -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    create(api, "/contacts", ADMIN, {"email": "ada@example.com"})
    monkeypatch.delenv("_X_AMZN_TRACE_ID")
    flaky = FlakyEvents(publisher.context.events, {})
    monkeypatch.setattr(publisher.context, "events", flaky)

    run(publisher, delivered(table))

    (request,) = flaky.requests
    assert request[0]["TraceHeader"] == header


def test_records_that_are_not_outbox_inserts_are_skipped(
    table: Any, bus: Bus, publisher: ConsumerFunction
) -> None:
    table.client.put_item(
        TableName=table.name,
        Item={"PK": {"S": "T#acme#X"}, "SK": {"S": "Y"}, "type": {"S": "other"}},
    )
    assert run(publisher, stream_records(table)) == {"batchItemFailures": []}
    assert bus.received() == []
