"""The event backbone in small (tests/fixtures/templates/backbone.yaml) on a LocalCloud in this
process, one per test module, and the `crm` command run against it as a developer runs it."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.aws import boto_client
from infra.cli import main
from infra.local.dev import LocalCloud
from infra.ops import dlq_replay
from infra.topology import ACCOUNT_ID, REGION
from tests.delivery.support import Log, QueueReader, local_cloud, queue_depth, wait_until

BUS = "ops-local-bus"
TABLE = "ops-local-table"
RECORDER = "ops-local-recorder"
PICKY = "ops-local-picky"
CONSUMER_DLQ = "ops-local-consumer-dlq"
RULE_DLQ = "ops-local-rule-dlq"
OUTBOX_DLQ = "ops-local-outbox-publisher-dlq"


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"


def rule_arn(name: str) -> str:
    return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{BUS}/{name}"


def envelope(tenant: str = "t1", **data: Any) -> dict[str, Any]:
    """A domain event's detail, with a fresh metadata.event_id."""
    return {
        "metadata": {
            "event_id": secrets.token_hex(13).upper(),
            "event_version": 1,
            "tenant_id": tenant,
            "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "actor": {"type": "system", "id": "tests"},
        },
        "data": data,
    }


@dataclass
class Result:
    code: int
    out: str
    err: str


class Backbone:
    """The running cloud, clients on its endpoint, and the recorder's queue."""

    def __init__(self, cloud: LocalCloud, log: Log, state_dir: Path) -> None:
        self.cloud = cloud
        self.log = log
        self.state_dir = state_dir
        url = cloud.endpoint.url
        self.events = boto_client("events", url)
        self.sqs = boto_client("sqs", url)
        self.dynamodb = boto_client("dynamodb", url)
        self.streams = boto_client("dynamodbstreams", url)
        assert cloud.running is not None
        self.api_url = cloud.running.api_url
        self.lambda_ = boto_client("lambda", self.api_url)
        self.recorder = QueueReader(self.sqs, RECORDER)

    def crm(self, *args: str) -> Result:
        """`crm --state-dir <this cloud's> ARGS...`, in this process."""
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["--state-dir", str(self.state_dir), *args])
        return Result(code, out.getvalue(), err.getvalue())

    def put(self, source: str, detail_type: str, detail: dict[str, Any]) -> None:
        answer = self.events.put_events(
            Entries=[
                {
                    "EventBusName": BUS,
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                }
            ]
        )
        assert answer["FailedEntryCount"] == 0, answer

    def received(self, event_id: str, function: str | None = None) -> list[dict[str, Any]]:
        """What the consumers recorded of the event whose metadata.event_id is `event_id`."""
        return [
            body
            for body in self.recorder.bodies()
            if _event_id(body.get("event")) == event_id
            and (function is None or body["function"] == function)
        ]

    def wait_received(
        self, event_id: str, function: str, count: int = 1, what: str = ""
    ) -> list[dict[str, Any]]:
        return list(
            wait_until(
                lambda: (
                    (found := self.received(event_id, function)) and len(found) >= count and found
                ),
                what or f"{function} to receive {event_id} {count} time(s)",
                log=self.log,
            )
        )

    def depth(self, queue: str) -> int:
        return queue_depth(self.sqs, queue)

    def visible(self, queue: str) -> int:
        url = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def purge(self, queue: str) -> None:
        QueueReader(self.sqs, queue).drain()


def _event_id(event: Any) -> str | None:
    detail = event.get("detail") if isinstance(event, dict) else None
    metadata = detail.get("metadata") if isinstance(detail, dict) else None
    return metadata.get("event_id") if isinstance(metadata, dict) else None


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backbone]:
    state_dir = tmp_path_factory.mktemp("ops-state")
    with local_cloud("backbone.yaml", state_dir) as (cloud, log):
        yield Backbone(cloud, log, state_dir)


@pytest.fixture(autouse=True)
def _drained_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto answers a receive with every visible message: no need to wait for more."""
    monkeypatch.setattr(dlq_replay, "DLQ_WAIT_S", 0)
