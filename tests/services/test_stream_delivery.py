"""The stream poller's pure parts: filter patterns and one batch's retries, splits and
partial failures, with a fake function instead of a running cloud."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.local.invocation import InvokeResult
from infra.local.streams import BatchDelivery, RecordFilter, StreamSource
from infra.stream_records import lambda_record
from tests.support.local import function_spec

STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"
FAILURES = "arn:aws:sqs:us-east-1:123456789012:failures"
FUNCTION = function_spec("Consumer", "consumer")


def record(sequence: int, name: str = "INSERT", created: int = 1_800_000_000, **image: Any) -> Any:
    raw = {
        "eventID": f"e{sequence}",
        "eventName": name,
        "eventVersion": "1.0",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": created,
            "Keys": {"PK": {"S": f"k{sequence}"}},
            "NewImage": {"PK": {"S": f"k{sequence}"}, **image},
            "SequenceNumber": str(1000 + sequence),
            "SizeBytes": 40 + sequence,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    return lambda_record(raw, STREAM)


def matches(pattern: dict[str, Any], rec: Any) -> bool:
    return RecordFilter([json.dumps(pattern)]).matches(rec)


# Filters ---------------------------------------------------------------------------------
def test_no_filter_lets_everything_through() -> None:
    assert RecordFilter.of(None).matches(record(1))
    assert RecordFilter.of({"Filters": []}).matches(record(1))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"eventName": ["INSERT"]}, True),
        ({"eventName": ["REMOVE"]}, False),
        ({"dynamodb": {"NewImage": {"status": {"S": ["active"]}}}}, True),
        ({"dynamodb": {"NewImage": {"status": {"S": ["closed"]}}}}, False),
        ({"dynamodb": {"NewImage": {"email": {"S": [{"prefix": "ana@"}]}}}}, True),
        ({"dynamodb": {"NewImage": {"email": {"S": [{"prefix": "bob@"}]}}}}, False),
        ({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": ["closed"]}]}}}}, True),
        ({"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": ["active"]}]}}}}, False),
        ({"dynamodb": {"NewImage": {"email": {"S": [{"exists": True}]}}}}, True),
        ({"dynamodb": {"NewImage": {"phone": {"S": [{"exists": True}]}}}}, False),
        ({"dynamodb": {"NewImage": {"phone": {"S": [{"exists": False}]}}}}, True),
        ({"dynamodb": {"SizeBytes": [{"numeric": [">", 40, "<=", 41]}]}}, True),
        ({"dynamodb": {"SizeBytes": [{"numeric": [">", 100]}]}}, False),
        ({"dynamodb": {"NewImage": {"address": {"M": {"city": {"S": ["Lyon"]}}}}}}, True),
        ({"dynamodb": {"NewImage": {"address": {"M": {"city": {"S": ["Paris"]}}}}}}, False),
        ({"$or": [{"eventName": ["REMOVE"]}, {"dynamodb": {"Keys": {"PK": {"S": ["k1"]}}}}]}, True),
    ],
)
def test_filter_patterns_match_the_record_as_lambda_sends_it(
    pattern: dict[str, Any], expected: bool
) -> None:
    rec = record(
        1,
        status={"S": "active"},
        email={"S": "ana@example.com"},
        address={"M": {"city": {"S": "Lyon"}}},
    )
    assert matches(pattern, rec) is expected


def test_a_record_passes_if_any_filter_matches() -> None:
    criteria = {
        "Filters": [
            {"Pattern": json.dumps({"eventName": ["REMOVE"]})},
            {"Pattern": json.dumps({"eventName": ["INSERT"]})},
        ]
    }
    assert RecordFilter.of(criteria).matches(record(1))
    assert not RecordFilter.of(criteria).matches(record(2, name="MODIFY"))


def test_binary_values_are_base64_as_lambda_sends_them() -> None:
    rec = record(1, blob={"B": b"\x00\x01"}, tags={"BS": [b"\xff"]})
    assert rec["dynamodb"]["NewImage"]["blob"] == {"B": "AAE="}
    assert rec["dynamodb"]["NewImage"]["tags"] == {"BS": ["/w=="]}


# One batch -------------------------------------------------------------------------------
class FakeFunction:
    """Fails any invocation whose batch holds a record in `poison`; or reports them."""

    def __init__(self, poison: set[str], report: bool = False) -> None:
        self.poison = poison
        self.report = report
        self.batches: list[list[str]] = []

    def __call__(self, function: str, event: Any) -> InvokeResult:
        sequences = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
        self.batches.append(sequences)
        bad = [s for s in sequences if s in self.poison]
        if not bad:
            return InvokeResult(payload={"batchItemFailures": []} if self.report else None)
        if self.report:
            return InvokeResult(payload={"batchItemFailures": [{"itemIdentifier": s} for s in bad]})
        return InvokeResult(error={"errorType": "ValueError", "errorMessage": "bad record"})


def source_with(**settings: Any) -> StreamSource:
    return StreamSource(FUNCTION, "Stream", STREAM, on_failure=FAILURES, **settings)


def deliver(
    source: StreamSource, fake: FakeFunction, records: list[Any], now: float = 1_800_000_010
) -> list[dict[str, Any]]:
    given_up: list[dict[str, Any]] = []
    delivery = BatchDelivery(
        source, fake, given_up.append, wait=lambda s: False, log=lambda m: None, now=lambda: now
    )
    assert delivery.deliver("shard-1", records)
    return given_up


def test_a_failing_batch_is_retried_then_given_up_with_its_batch_info() -> None:
    source = source_with(max_retries=2)
    fake = FakeFunction({"1002"})
    (failure,) = deliver(source, fake, [record(1), record(2), record(3)])
    assert fake.batches == [["1001", "1002", "1003"]] * 3
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == ("1001", "1003")
    assert (info["batchSize"], info["shardId"], info["streamArn"]) == (3, "shard-1", STREAM)


def test_bisecting_isolates_the_failing_record() -> None:
    source = source_with(max_retries=1, bisect=True)
    fake = FakeFunction({"1003"})
    records = [record(i) for i in range(1, 5)]
    (failure,) = deliver(source, fake, records)
    assert fake.batches == [
        ["1001", "1002", "1003", "1004"],
        ["1001", "1002"],
        ["1003", "1004"],
        ["1003"],
        ["1003"],  # its one retry
        ["1004"],
    ]
    assert failure["DDBStreamBatchInfo"]["startSequenceNumber"] == "1003"
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 1


def test_reported_item_failures_retry_from_the_first_failed_record() -> None:
    source = source_with(max_retries=1, report_item_failures=True)
    fake = FakeFunction({"1002"}, report=True)
    (failure,) = deliver(source, fake, [record(1), record(2), record(3)])
    assert fake.batches == [["1001", "1002", "1003"], ["1002", "1003"]]
    assert failure["DDBStreamBatchInfo"]["startSequenceNumber"] == "1002"
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 2
    assert "functionError" not in failure["responseContext"]


def test_an_invalid_item_identifier_fails_the_whole_batch() -> None:
    source = source_with(max_retries=1, report_item_failures=True)
    calls: list[int] = []

    def function(name: str, event: Any) -> InvokeResult:
        calls.append(len(event["Records"]))
        return InvokeResult(payload={"batchItemFailures": [{"itemIdentifier": ""}]})

    given_up: list[dict[str, Any]] = []
    delivery = BatchDelivery(
        source, function, given_up.append, wait=lambda s: False, log=lambda m: None
    )
    assert delivery.deliver("shard-1", [record(1), record(2)])
    assert calls == [2, 2]
    assert given_up[0]["DDBStreamBatchInfo"]["batchSize"] == 2


def test_without_report_item_failures_a_response_is_a_success() -> None:
    source = source_with(max_retries=3)
    fake = FakeFunction({"1001"}, report=True)  # reports, but the mapping does not read it
    assert deliver(source, fake, [record(1)]) == []
    assert fake.batches == [["1001"]]


def test_records_past_their_maximum_age_are_not_invoked_again() -> None:
    source = source_with(max_retries=5, max_record_age_s=60)
    fake = FakeFunction(set())
    (failure,) = deliver(source, fake, [record(1, created=1_800_000_000)], now=1_800_000_100)
    assert fake.batches == []
    assert failure["requestContext"]["condition"] == "RecordAgeExceeded"


def test_unlimited_retries_are_capped_locally() -> None:
    props = {"Stream": STREAM, "MaximumRetryAttempts": -1}
    assert StreamSource.of(FUNCTION, "Stream", props).max_retries == 5
    assert StreamSource.of(FUNCTION, "Stream", {"Stream": STREAM}).max_retries == 5
    assert (
        StreamSource.of(FUNCTION, "Stream", {**props, "MaximumRetryAttempts": 0}).max_retries == 0
    )
