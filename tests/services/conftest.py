"""A real local cloud per test module, from a fixture template, with the services under test
built from its context (not from `infra.local.dev.service_builders()`, which they are wired
into)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.local.dev import LocalCloud, LocalConfig

TEMPLATES = Path(__file__).resolve().parents[1] / "fixtures" / "templates"


@contextmanager
def local_cloud(template: str, state_dir: Path) -> Iterator[LocalCloud]:
    """The local cloud of `tests/fixtures/templates/<template>` with no services of its own:
    each test module builds and starts the one it tests, so none runs twice."""
    config = LocalConfig(
        template_override=TEMPLATES / template,
        state_dir_override=state_dir,
        aws_port=0,
        api_port=0,
    )
    cloud = LocalCloud(config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("infra.local.dev.service_builders", lambda: [])
        cloud.start()
    try:
        yield cloud
    finally:
        cloud.stop()


class Inbox:
    """Reads an SQS queue of the local cloud, keeping every message body seen."""

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs = sqs
        self.url = url
        self.seen: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        """Whatever arrived since the last read (and remember it)."""
        fresh = []
        while True:
            reply = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            )
            messages = reply.get("Messages", [])
            if not messages:
                break
            for message in messages:
                body = json.loads(message["Body"])
                if message.get("MessageAttributes"):
                    body = {"body": body, "attributes": message["MessageAttributes"]}
                fresh.append(body)
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        self.seen += fresh
        return fresh

    def wait_for(
        self,
        done: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 15.0,
        what: str = "messages",
    ) -> list[dict[str, Any]]:
        """Every message seen, once `done(seen)` holds; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.read()
            if done(self.seen):
                return self.seen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; seen: {self.seen}")
            time.sleep(0.1)

    def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """What arrives during the next `seconds` (to show that nothing more comes)."""
        before = len(self.seen)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.read()
            time.sleep(0.1)
        self.read()
        return self.seen[before:]


def inbox(cloud: LocalCloud, queue_name: str) -> Inbox:
    sqs = cloud.client("sqs")
    return Inbox(sqs, sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])


def wait_until(check: Callable[[], bool], timeout: float = 10.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# The stage's bus, on template.yaml's own local cloud -------------------------------------------
WHOLE_EVENT = {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"}


@contextmanager
def template_cloud(
    state_dir: Path, services: list[Any], log: Callable[[str], None]
) -> Iterator[LocalCloud]:
    """The local cloud of template.yaml itself, with only the given service builders."""
    config = LocalConfig(state_dir_override=state_dir, aws_port=0, api_port=0, fresh=True, log=log)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("infra.local.dev.service_builders", lambda: services)
        cloud = LocalCloud(config)
        cloud.start()
    try:
        yield cloud
    finally:
        cloud.stop()


def watch_bus(cloud: LocalCloud, bus: str, name: str, pattern: dict[str, Any]) -> Inbox:
    """A queue that receives, whole, every event of `bus` that matches `pattern`."""
    events, sqs = cloud.client("events"), cloud.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule=name,
        EventBusName=bus,
        Targets=[{"Id": "watch", "Arn": arn["QueueArn"], "InputTransformer": WHOLE_EVENT}],
    )
    return Inbox(sqs, url)


def take_down_bus(cloud: LocalCloud, bus: str) -> None:
    """An outage: the bus and its rules are gone, so every PutEvents to it fails."""
    events = cloud.client("events")
    for rule in events.list_rules(EventBusName=bus)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        if targets:
            ids = [t["Id"] for t in targets]
            events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=ids)
        events.delete_rule(Name=rule["Name"], EventBusName=bus)
    events.delete_event_bus(Name=bus)


class FakeClock:
    """The schedules' clock in a test: it moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now
