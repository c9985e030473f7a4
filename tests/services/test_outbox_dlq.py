"""Never lost: when the bus stays unreachable past every retry, the batch's record lands in
the outbox publisher's DLQ (and its alarm would fire); after the fix, `crm events replay
--dlq` reads the records back from the stream and publishes them. On template.yaml itself."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import pytest

from crm_core.contacts.store import ContactStore
from crm_core.events.envelope import Origin
from crm_core.records.contact import ContactCreate
from crm_core.table import Table
from infra.aws import boto_client
from infra.cli import main
from infra.local import eventbridge, streams
from infra.local.dev import LocalCloud
from tests.delivery.support import Log, wait_until
from tests.services.conftest import take_down_bus, template_cloud, watch_bus

BUS = "crm-local-bus"
DLQ = "crm-local-outbox-publisher-dlq"


def fast_streams(ctx: Any) -> streams.StreamService:
    """The stream service with the template's 10 retries 50 ms apart, not seconds."""
    return streams.StreamService(ctx, streams.stream_sources(ctx.functions), retry_delays=(0.05,))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Log]]:
    log = Log()
    state = tmp_path_factory.mktemp("outbox-dlq")
    with template_cloud(state, [fast_streams, eventbridge.build], log) as local:
        yield local, log


def test_a_batch_past_its_retries_is_published_from_the_dlq_after_the_fix(
    cloud: tuple[LocalCloud, Log],
) -> None:
    local, log = cloud
    sqs = local.client("sqs")
    take_down_bus(local, BUS)  # the outage

    table = Table(boto_client("dynamodb", local.endpoint.url), "crm-local")
    origin = Origin.user("u1", "outage")
    written = [
        ContactStore(table).create("acme", ContactCreate(email=f"lost{n}@example.com"), origin)
        for n in range(3)
    ]
    dlq = sqs.get_queue_url(QueueName=DLQ)["QueueUrl"]

    def records_in_dlq() -> int:
        """Stream records the DLQ's batch records cover (peeked: left visible)."""
        reply = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)
        infos = [json.loads(m["Body"])["DDBStreamBatchInfo"] for m in reply.get("Messages", [])]
        return sum(int(info["batchSize"]) for info in infos)

    wait_until(
        lambda: records_in_dlq() == 3,
        "the three records in the outbox publisher's DLQ",
        timeout=30,
        log=log,
    )

    # The fix: the bus is back. A queue watches it, then the operator re-drives the DLQ.
    local.client("events").create_event_bus(Name=BUS)
    inbox = watch_bus(local, BUS, "outbox-dlq-watch", {"source": ["crm.contacts"]})
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--state-dir", str(local.config.state_dir), "events", "replay", "--dlq", DLQ])
    assert code == 0, out.getvalue() + err.getvalue()

    seen = inbox.wait_for(lambda got: len(got) >= 3, what="the three events, published late")
    assert sorted(e["detail"]["data"]["contact"]["id"] for e in seen) == sorted(
        c.id for c in written
    )
    remaining = sqs.get_queue_attributes(
        QueueUrl=dlq,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert remaining == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }
