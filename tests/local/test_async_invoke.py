"""Lambda's asynchronous invocation: retries, event age, destinations and the DLQ."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from infra.aws import boto_client
from infra.local.async_invoke import AsyncInvoker
from infra.local.endpoint import LocalEndpoint
from infra.local.invocation import InvokeResult
from infra.topology import FunctionSpec
from tests.support.local import function_spec

FAIL = InvokeResult(error={"errorType": "ValueError", "errorMessage": "boom", "stackTrace": []})


def spec(name: str, **properties: Any) -> FunctionSpec:
    return function_spec(name, f"crm-local-{name}", properties=properties)


class Calls:
    """The invoke dependency: answers from a script, and counts."""

    def __init__(self, *answers: InvokeResult) -> None:
        self.answers = list(answers)
        self.events: list[Any] = []

    def __call__(self, function: str, event: Any) -> InvokeResult:
        self.events.append(event)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def queues(endpoint: LocalEndpoint) -> Any:
    sqs = boto_client("sqs", endpoint.url)

    def make(name: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        return url, f"arn:aws:sqs:us-east-1:123456789012:{name}"

    return sqs, make


def receive(sqs: Any, url: str, deadline_s: float = 5.0) -> dict[str, Any]:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        got = sqs.receive_message(
            QueueUrl=url, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if got:
            return dict(got[0])
    raise AssertionError("nothing arrived")


def run(invoker: AsyncInvoker, function: str, event: Any) -> None:
    invoker.submit(function, event)
    end = time.monotonic() + 5
    while not invoker.idle():
        assert time.monotonic() < end, "the invocation never ended"
        time.sleep(0.02)


def test_retries_then_on_failure_record(endpoint: LocalEndpoint, queues: Any) -> None:
    sqs, make = queues
    url, arn = make("async-failures")
    config = {"MaximumRetryAttempts": 1, "DestinationConfig": {"OnFailure": {"Destination": arn}}}
    calls = Calls(FAIL)
    invoker = AsyncInvoker(
        calls,
        [spec("worker", EventInvokeConfig=config)],
        lambda s: boto_client(s, endpoint.url),
        retry_delays=(0.05,),
        log=lambda _: None,
    )

    run(invoker, "worker", {"n": 1})

    assert calls.events == [{"n": 1}, {"n": 1}]  # 1 + MaximumRetryAttempts
    record = json.loads(receive(sqs, url)["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"].endswith("function:crm-local-worker:$LATEST")
    assert record["requestPayload"] == {"n": 1}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "boom"


def test_a_success_after_a_retry_goes_to_on_success(endpoint: LocalEndpoint, queues: Any) -> None:
    sqs, make = queues
    url, arn = make("async-successes")
    config = {"DestinationConfig": {"OnSuccess": {"Destination": arn}}}
    calls = Calls(FAIL, InvokeResult(payload={"ok": True}))
    invoker = AsyncInvoker(
        calls,
        [spec("worker", EventInvokeConfig=config)],
        lambda s: boto_client(s, endpoint.url),
        retry_delays=(0.05,),
        log=lambda _: None,
    )

    run(invoker, "crm-local-worker", {"n": 2})  # by function name, as an ARN target names it

    record = json.loads(receive(sqs, url)["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responsePayload"] == {"ok": True}


def test_an_event_too_old_to_retry_ends_at_once(endpoint: LocalEndpoint, queues: Any) -> None:
    sqs, make = queues
    url, arn = make("async-aged")
    config = {
        "MaximumEventAgeInSeconds": 0,
        "DestinationConfig": {"OnFailure": {"Destination": arn}},
    }
    calls = Calls(FAIL)
    invoker = AsyncInvoker(
        calls,
        [spec("worker", EventInvokeConfig=config)],
        lambda s: boto_client(s, endpoint.url),
        retry_delays=(0.05,),
        log=lambda _: None,
    )

    run(invoker, "worker", {"n": 3})

    assert len(calls.events) == 1
    assert (
        json.loads(receive(sqs, url)["Body"])["requestContext"]["condition"] == "EventAgeExceeded"
    )


def test_without_destination_the_dlq_gets_the_event(endpoint: LocalEndpoint, queues: Any) -> None:
    sqs, make = queues
    url, arn = make("async-dlq")
    calls = Calls(FAIL)
    invoker = AsyncInvoker(
        calls,
        [
            spec(
                "worker",
                EventInvokeConfig={"MaximumRetryAttempts": 0},
                DeadLetterQueue={"Type": "SQS", "TargetArn": arn},
            )
        ],
        lambda s: boto_client(s, endpoint.url),
        retry_delays=(0.05,),
        log=lambda _: None,
    )

    run(invoker, "worker", {"n": 4})

    message = receive(sqs, url)
    assert json.loads(message["Body"]) == {"n": 4}
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["ErrorMessage"] == "boom"
    assert set(attributes) == {"RequestID", "ErrorCode", "ErrorMessage"}


def test_an_unknown_function_is_refused_at_submit(endpoint: LocalEndpoint) -> None:
    invoker = AsyncInvoker(Calls(FAIL), [], lambda s: boto_client(s, endpoint.url))
    with pytest.raises(KeyError):
        invoker.submit("nobody", {})
