"""EventBridge rules deliver to exactly the matching Lambda targets, as EventBridge does.

One LocalCloud on tests/fixtures/templates/eventbridge.yaml for the module; events are put
with boto3 on its endpoint, and each function records what it receives on a queue.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.aws import boto_client
from infra.local.dev import LocalCloud
from infra.local.eventbridge import EventBridgeDelivery
from infra.ops.local_http import request
from tests.delivery.support import Log, QueueReader, local_cloud, wait_until

BUS = "dlv-eb-bus-local"
EVENT_KEYS = {
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
}


class Stage:
    def __init__(self, cloud: LocalCloud, log: Log) -> None:
        self.cloud = cloud
        self.log = log
        self.events = boto_client("events", cloud.endpoint.url)
        self.sqs = boto_client("sqs", cloud.endpoint.url)
        self.recorder = QueueReader(self.sqs, "dlv-eb-recorder")
        (self.delivery,) = [s for s in cloud.services if isinstance(s, EventBridgeDelivery)]

    def put(self, source: str, detail: dict[str, Any], **entry: Any) -> str:
        answer = self.events.put_events(
            Entries=[
                {
                    "EventBusName": BUS,
                    "Source": source,
                    "DetailType": entry.pop("DetailType", "Test"),
                    "Detail": json.dumps(detail),
                    **entry,
                }
            ]
        )
        assert answer["FailedEntryCount"] == 0, answer
        return str(answer["Entries"][0]["EventId"])

    def settle(self) -> None:
        """Every matched event delivered and every async invocation finished."""
        invoker = self.cloud.async_invoker
        assert invoker is not None
        wait_until(
            lambda: self.delivery.idle() and invoker.idle(), "deliveries to finish", log=self.log
        )

    def received(self, marker: str) -> list[dict[str, Any]]:
        """(function, event) records whose event carries `marker` anywhere."""
        return [r for r in self.recorder.bodies() if marker in json.dumps(r["event"])]


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    with local_cloud("eventbridge.yaml", tmp_path_factory.mktemp("eb-state")) as (cloud, log):
        yield Stage(cloud, log)


def test_an_event_reaches_exactly_the_functions_whose_rule_matches_once(stage: Stage) -> None:
    marker = uuid.uuid4().hex
    contact = stage.put("crm.contacts", {"m": marker}, DetailType="Contact Created")
    big = stage.put("crm.companies.import", {"m": marker, "size": 12})
    stage.put("crm.companies.import", {"m": marker, "size": 3})  # numeric: no match
    stage.put("crm.contacts", {"m": marker}, DetailType="Contact Deleted")  # no match
    stage.put("crm.disabled", {"m": marker})  # its rule is DISABLED
    stage.put("crm.contacts", {"m": marker}, DetailType="Contact Created", EventBusName="default")
    stage.recorder.wait_for(
        lambda _: len(stage.received(marker)) >= 2, "the two matching deliveries", stage.log
    )
    stage.settle()
    got = sorted((r["function"], r["event"]["id"]) for r in stage.received(marker))
    assert got == sorted([("dlv-eb-contacts", contact), ("dlv-eb-companies", big)])


def test_the_function_gets_the_eventbridge_event_as_delivered(stage: Stage) -> None:
    marker = uuid.uuid4().hex
    detail = {"m": marker, "size": 99, "note": 'quotes " and <tags>', "nested": {"a": [1, 2]}}
    event_id = stage.put(
        "crm.companies",
        detail,
        DetailType='Company "Acme" <Updated>',
        Resources=["arn:aws:dynamodb:us-east-1:123456789012:table/crm-local"],
        EventBusName=f"arn:aws:events:us-east-1:123456789012:event-bus/{BUS}",
    )
    (record,) = stage.recorder.wait_for(
        lambda _: stage.received(marker), "the companies consumer", stage.log
    )
    event = record["event"]
    assert set(event) == EVENT_KEYS
    assert event["version"] == "0"
    assert event["id"] == event_id
    assert event["detail-type"] == 'Company "Acme" <Updated>'
    assert event["source"] == "crm.companies"
    assert event["account"] == "123456789012"
    assert event["region"] == "us-east-1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert event["resources"] == ["arn:aws:dynamodb:us-east-1:123456789012:table/crm-local"]
    assert event["detail"] == detail


def test_input_path_and_constant_input_are_what_the_target_gets(stage: Stage) -> None:
    marker = uuid.uuid4().hex
    stage.put("dlv.ping", {"m": marker, "n": 1}, EventBusName="default")
    (ping,) = stage.recorder.wait_for(lambda _: stage.received(marker), "the ping", stage.log)
    assert ping == {**ping, "function": "dlv-eb-companies", "event": {"m": marker, "n": 1}}

    constants = len([b for b in stage.recorder.bodies() if b["event"] == {"constant": True}])
    stage.put("crm.orphan", {"m": marker})
    stage.recorder.wait_for(
        lambda bodies: [b for b in bodies if b["event"] == {"constant": True}][constants:],
        "the constant input",
        stage.log,
    )
    stage.settle()
    constant = [b for b in stage.recorder.bodies() if b["event"] == {"constant": True}]
    assert [c["function"] for c in constant[constants:]] == ["dlv-eb-contacts"]
    # The rule's SQS target is moto's own; it gets the whole event too.
    tap = QueueReader(stage.sqs, "dlv-eb-tap")
    (tapped,) = tap.wait_for(
        lambda bodies: [b for b in bodies if b["detail"].get("m") == marker],
        "the tap queue",
        stage.log,
    )
    assert set(tapped) >= EVENT_KEYS


def test_a_failing_consumer_is_retried_then_its_event_is_on_its_on_failure_queue(
    stage: Stage,
) -> None:
    marker = uuid.uuid4().hex
    event_id = stage.put("crm.failing", {"m": marker})
    failures = QueueReader(stage.sqs, "dlv-eb-failures")
    (record,) = failures.wait_for(lambda bodies: bodies, "the OnFailure record", stage.log)
    stage.settle()
    attempts = [r for r in stage.received(marker) if r["function"] == "dlv-eb-failing"]
    assert len(attempts) == 1 + 1  # the first attempt and MaximumRetryAttempts
    assert len({a["request_id"] for a in attempts}) == 2
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"].endswith(":function:dlv-eb-failing:$LATEST")
    assert record["requestPayload"]["id"] == event_id
    assert record["requestPayload"]["detail"] == {"m": marker}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "RuntimeError"


def test_a_failing_consumer_without_retries_sends_its_event_to_its_dead_letter_queue(
    stage: Stage,
) -> None:
    marker = uuid.uuid4().hex
    event_id = stage.put("crm.doomed", {"m": marker})
    dead = QueueReader(stage.sqs, "dlv-eb-dead-letters")
    wait_until(dead.drain, "the dead letter", log=stage.log)
    stage.settle()
    (message,) = dead.drain()
    assert json.loads(message["Body"])["id"] == event_id
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["ErrorMessage"] == "failing on purpose"
    assert [r["function"] for r in stage.received(marker)] == ["dlv-eb-dead-letter"]


def test_a_target_that_cannot_be_invoked_is_retried_then_dead_lettered_by_the_rule(
    stage: Stage,
) -> None:
    marker = uuid.uuid4().hex
    event_id = stage.put("crm.orphan", {"m": marker, "why": "gone"})
    dead = QueueReader(stage.sqs, "dlv-eb-rule-dead-letters")
    (message,) = wait_until(
        lambda: [m for m in dead.drain() if json.loads(m["Body"])["id"] == event_id],
        "the rule's dead letter",
        log=stage.log,
    )
    event = json.loads(message["Body"])
    assert event["id"] == event_id
    assert set(event) == EVENT_KEYS
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes == {
        "RULE_ARN": f"arn:aws:events:us-east-1:123456789012:rule/{BUS}/dlv-eb-orphan",
        "TARGET_ARN": "arn:aws:lambda:us-east-1:123456789012:function:dlv-eb-missing",
        "ERROR_CODE": "ResourceNotFoundException",
        "ERROR_MESSAGE": (
            "Function not found: arn:aws:lambda:us-east-1:123456789012:function:dlv-eb-missing"
        ),
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttemptsExhausted",
        "RETRY_ATTEMPTS": "1",
    }


def test_the_events_page_lists_recent_events_newest_first_as_json_and_html(
    stage: Stage,
) -> None:
    marker = uuid.uuid4().hex
    page = f"{stage.cloud.gateway.url}/_local/events"

    def listed() -> list[dict[str, Any]]:
        status, headers, events = request("GET", page, headers={"Accept": "application/json"})
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        return [e for e in events if marker in json.dumps(e)]

    def shown(count: int) -> bool:
        return len(listed()) == count

    ids: list[str] = []
    for n, bus in enumerate([BUS, "default", BUS]):
        detail = {"m": marker, "n": n, "html": "<script>x</script>"}
        ids.append(stage.put("dlv.page", detail, EventBusName=bus))
        wait_until(functools.partial(shown, len(ids)), f"event {n} on the page", log=stage.log)
    events = listed()
    assert [e["id"] for e in events] == ids[::-1]
    assert all(set(e) == EVENT_KEYS for e in events)

    status, headers, text = request("GET", page, headers={"Accept": "text/html"})
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "<script>x</script>" not in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text
    positions = [text.index(event_id) for event_id in ids]
    assert positions == sorted(positions, reverse=True)
    _, _, as_json = request("GET", f"{page}?format=json", headers={"Accept": "text/html"})
    assert [e["id"] for e in as_json if marker in json.dumps(e)] == ids[::-1]
