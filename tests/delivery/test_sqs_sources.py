"""SQS event sources poll, batch, invoke and settle as Lambda's do.

One LocalCloud on tests/fixtures/templates/sqs.yaml for the module. The template's own
event source is proven end to end (a poison message: partial batch failure, redrive); the
batch rules are proven on pollers driven one batch at a time (`poll_once`) on queues made
here, so that which messages share a batch is certain.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.aws import boto_client
from infra.local.dev import LocalCloud
from infra.local.sqs_sources import SqsEventSources, SqsPoller, SqsSource, failed_ids
from tests.delivery.support import Log, QueueReader, local_cloud, queue_depth, wait_until

ACCOUNT = "123456789012"
RECORD_KEYS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}


class Stage:
    def __init__(self, cloud: LocalCloud, log: Log) -> None:
        self.cloud = cloud
        self.log = log
        self.sqs = boto_client("sqs", cloud.endpoint.url)
        self.recorder = QueueReader(self.sqs, "dlv-sqs-recorder")

    def batches(self, queue: str) -> list[list[dict[str, Any]]]:
        """The record lists of every invocation for one queue, in order."""
        return [
            b["event"]["Records"]
            for b in self.recorder.bodies()
            if b["event"]["Records"][0]["eventSourceARN"].endswith(f":{queue}")
        ]

    def queue(self, visibility: int = 1, max_receive: int | None = None) -> tuple[str, str]:
        """A fresh queue (and its dead-letter queue when max_receive is given): (name, url)."""
        name = f"dlv-sqs-{uuid.uuid4().hex[:12]}"
        attributes = {"VisibilityTimeout": str(visibility)}
        if max_receive is not None:
            self.sqs.create_queue(QueueName=f"{name}-dlq")
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}-dlq",
                    "maxReceiveCount": max_receive,
                }
            )
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return name, url

    def poller(self, queue: str, url: str, **source: Any) -> SqsPoller:
        spec = SqsSource(
            function="BatchConsumer",
            event_name="Manual",
            queue_arn=f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue}",
            **source,
        )
        assert self.cloud.context is not None
        return SqsPoller(spec, self.sqs, url, self.cloud.context.invoke, self.log)

    def send(self, url: str, *bodies: str) -> None:
        for start in range(0, len(bodies), 10):
            self.sqs.send_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "MessageBody": body}
                    for n, body in enumerate(bodies[start : start + 10])
                ],
            )


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    with local_cloud("sqs.yaml", tmp_path_factory.mktemp("sqs-state")) as (cloud, log):
        yield Stage(cloud, log)


def test_a_poison_message_alone_is_retried_then_redriven_to_the_dead_letter_queue(
    stage: Stage,
) -> None:
    marker = uuid.uuid4().hex[:8]
    good = [f"good-{marker}-{n}" for n in range(3)]
    url = stage.sqs.get_queue_url(QueueName="dlv-sqs-jobs")["QueueUrl"]
    stage.send(url, good[0], "poison", good[1], good[2])
    dead = QueueReader(stage.sqs, "dlv-sqs-jobs-dlq")
    (moved,) = wait_until(dead.drain, "the poison message in the DLQ", log=stage.log)
    assert moved["Body"] == "poison"
    wait_until(lambda: queue_depth(stage.sqs, "dlv-sqs-jobs") == 0, "an empty queue")

    seen = [r for batch in stage.batches("dlv-sqs-jobs") for r in batch]
    assert sorted(r["body"] for r in seen if r["body"] != "poison") == sorted(good)
    poison = [r for r in seen if r["body"] == "poison"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in poison] == ["1", "2"]
    assert len({r["messageId"] for r in poison}) == 1


def test_records_have_the_lambda_sqs_event_shape(stage: Stage) -> None:
    name, url = stage.queue()
    stage.sqs.send_message(
        QueueUrl=url,
        MessageBody="hello",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "greeting"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    assert stage.poller(name, url).poll_once() == 1
    ((record,),) = stage.batches(name)
    assert set(record) == RECORD_KEYS | {"md5OfMessageAttributes"}
    assert record["body"] == "hello"
    assert record["md5OfBody"] == hashlib.md5(b"hello").hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"
    assert record["awsRegion"] == "us-east-1"
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "greeting",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\x01").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert queue_depth(stage.sqs, name) == 0


def test_a_function_error_deletes_no_message_of_its_batch(stage: Stage) -> None:
    name, url = stage.queue(visibility=1, max_receive=2)
    stage.send(url, "fine", "crash")
    poller = stage.poller(name, url, report_failures=True)
    assert poller.poll_once() == 2
    assert queue_depth(stage.sqs, name) == 2
    wait_until(poller.poll_once, "the batch again, after the visibility timeout")
    # Received twice: the next receive moves both to the dead-letter queue.
    dead = QueueReader(stage.sqs, f"{name}-dlq")
    wait_until(lambda: poller.poll_once() == 0 and len(dead.drain()) == 2, "both redriven")
    assert [sorted(r["body"] for r in batch) for batch in stage.batches(name)] == [
        ["crash", "fine"],
        ["crash", "fine"],
    ]


def test_a_malformed_batch_item_failures_response_fails_the_whole_batch(stage: Stage) -> None:
    name, url = stage.queue(visibility=30)
    stage.send(url, "fine", "malformed")
    assert stage.poller(name, url, report_failures=True).poll_once() == 2
    assert queue_depth(stage.sqs, name) == 2
    assert "whole batch failed" in stage.log.text()


def test_without_report_batch_item_failures_the_response_is_ignored(stage: Stage) -> None:
    name, url = stage.queue(visibility=30)
    stage.send(url, "report", "other")
    assert stage.poller(name, url, report_failures=False).poll_once() == 2
    assert queue_depth(stage.sqs, name) == 0


def test_batch_size_and_the_batching_window(stage: Stage) -> None:
    name, url = stage.queue(visibility=30)
    stage.send(url, *[f"m{n}" for n in range(25)])
    small = stage.poller(name, url, batch_size=3)
    assert small.poll_once() == 3
    windowed = stage.poller(name, url, batch_size=20, window_s=1.0)
    assert windowed.poll_once() == 20  # two receives of 10 and more, within the window
    assert stage.poller(name, url, batch_size=10).poll_once() == 2
    sizes = [len(batch) for batch in stage.batches(name)]
    assert sizes == [3, 20, 2]
    assert queue_depth(stage.sqs, name) == 0


def test_a_disabled_event_source_is_not_polled(stage: Stage) -> None:
    (service,) = [s for s in stage.cloud.services if isinstance(s, SqsEventSources)]
    polled = {p.source.event_name for p in service.pollers}
    assert polled == {"Jobs"}
    assert "Enabled is false: dlv-sqs-idle not polled" in stage.log.text()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "a"}]}, {"a"}),
        ({"batchItemFailures": [{"itemIdentifier": "z"}]}, None),  # not in the batch
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, None),
        ({"batchItemFailures": [{"id": "a"}]}, None),  # a bad key name
        ({"batchItemFailures": "a"}, None),
        ("a string", None),
        ([{"itemIdentifier": "a"}], None),
    ],
)
def test_batch_item_failures_are_read_as_lambda_reads_them(
    payload: Any, expected: set[str] | None
) -> None:
    assert failed_ids(payload, {"a", "b"}) == expected
