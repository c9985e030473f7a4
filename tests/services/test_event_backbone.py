"""The event backbone of template.yaml on the local cloud: a change, its outbox item, the
table's stream, outbox_publisher, and the stage's bus; and an event that cannot be
published at first is published later, never lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crm_core.contacts.store import ContactStore
from crm_core.events.envelope import Origin
from crm_core.records.contact import ContactCreate
from crm_core.table import Table
from infra.aws import boto_client
from infra.local import eventbridge, streams
from infra.local.dev import LocalCloud
from tests.delivery.support import Log, wait_until
from tests.services.conftest import Inbox, take_down_bus, template_cloud, watch_bus

BUS = "crm-local-bus"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Log]]:
    log = Log()
    state = tmp_path_factory.mktemp("backbone")
    with template_cloud(state, [streams.build, eventbridge.build], log) as local:
        yield local, log


def watch(cloud: LocalCloud, name: str) -> Inbox:
    return watch_bus(cloud, BUS, name, {"source": ["crm.contacts"]})


def store(cloud: LocalCloud) -> ContactStore:
    return ContactStore(Table(boto_client("dynamodb", cloud.endpoint.url), "crm-local"))


def outbox_event_ids(cloud: LocalCloud, contact_id: str) -> list[str]:
    items = cloud.client("dynamodb").query(
        TableName="crm-local",
        KeyConditionExpression="PK = :pk AND begins_with(SK, :outbox)",
        ExpressionAttributeValues={
            ":pk": {"S": f"T#acme#C#{contact_id}"},
            ":outbox": {"S": "OUTBOX#"},
        },
    )["Items"]
    return [i["event_id"]["S"] for i in items]


def test_a_change_reaches_the_bus_through_the_outbox(cloud: tuple[LocalCloud, Log]) -> None:
    local, _log = cloud
    inbox = watch(local, "backbone-watch-1")

    contact = store(local).create(
        "acme", ContactCreate(email="ada@example.com"), Origin.user("u1", "r1")
    )

    (event,) = inbox.wait_for(lambda seen: len(seen) >= 1, what="ContactCreated on the bus")
    assert event["source"] == "crm.contacts"
    assert event["detail-type"] == "ContactCreated"
    assert event["detail"]["data"]["contact"]["id"] == contact.id
    assert [event["detail"]["metadata"]["event_id"]] == outbox_event_ids(local, contact.id)


def test_an_event_the_bus_refuses_is_published_once_it_accepts(
    cloud: tuple[LocalCloud, Log],
) -> None:
    """With the bus gone, outbox_publisher fails and the stream keeps the batch; once the
    bus is back, the retry publishes it. The write itself never waited for the bus."""
    local, log = cloud
    take_down_bus(local, BUS)

    contact = store(local).create(
        "acme", ContactCreate(email="bob@example.com"), Origin.user("u1", "r2")
    )
    wait_until(
        lambda: any(
            "OutboxPublisherFunction.Outbox: attempt 1 failed" in line for line in log.lines
        ),
        "outbox_publisher to fail on the missing bus",
        log=log,
    )

    local.client("events").create_event_bus(Name=BUS)
    inbox = watch(local, "backbone-watch-2")
    (event,) = inbox.wait_for(lambda seen: len(seen) >= 1, timeout=30, what="the retried event")
    assert event["detail"]["data"]["contact"]["id"] == contact.id
    assert [event["detail"]["metadata"]["event_id"]] == outbox_event_ids(local, contact.id)
