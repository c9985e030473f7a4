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

from crm_core.contacts.models import ContactCreate
from crm_core.contacts.store import ContactStore
from crm_core.events.envelope import Origin
from crm_core.table import Table
from infra import eventbridge, streams
from infra.aws import boto_client
from infra.cli import main
from infra.dev import LocalCloud, LocalConfig
from tests.delivery.support import Log, wait_until
from tests.services.conftest import Inbox

BUS = "crm-local-bus"
DLQ = "crm-local-outbox-publisher-dlq"
WHOLE_EVENT = {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"}


def fast_streams(ctx: Any) -> streams.StreamService:
    """The stream service with the template's 10 retries 50 ms apart, not seconds."""
    return streams.StreamService(ctx, streams.stream_sources(ctx.functions), retry_delays=(0.05,))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Log]]:
    log = Log()
    state = tmp_path_factory.mktemp("outbox-dlq")
    config = LocalConfig(state_dir_override=state, aws_port=0, api_port=0, fresh=True, log=log)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("infra.dev.service_builders", lambda: [fast_streams, eventbridge.build])
        local = LocalCloud(config)
        local.start()
    try:
        yield local, log
    finally:
        local.stop()


def test_a_batch_past_its_retries_is_published_from_the_dlq_after_the_fix(
    cloud: tuple[LocalCloud, Log],
) -> None:
    local, log = cloud
    events, sqs = local.client("events"), local.client("sqs")
    for rule in events.list_rules(EventBusName=BUS)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=BUS)["Targets"]
        if targets:
            ids = [t["Id"] for t in targets]
            events.remove_targets(Rule=rule["Name"], EventBusName=BUS, Ids=ids)
        events.delete_rule(Name=rule["Name"], EventBusName=BUS)
    events.delete_event_bus(Name=BUS)  # the outage

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
    events.create_event_bus(Name=BUS)
    url = sqs.create_queue(QueueName="outbox-dlq-watch")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(
        Name="watch", EventBusName=BUS, EventPattern=json.dumps({"source": ["crm.contacts"]})
    )
    events.put_targets(
        Rule="watch",
        EventBusName=BUS,
        Targets=[{"Id": "w", "Arn": arn["QueueArn"], "InputTransformer": WHOLE_EVENT}],
    )
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--state-dir", str(local.config.state_dir), "events", "replay", "--dlq", DLQ])
    assert code == 0, out.getvalue() + err.getvalue()

    inbox = Inbox(sqs, url)
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
