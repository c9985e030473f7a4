"""The consumer helper: typed events, bound logs, and one effect per event_id."""

from __future__ import annotations

import io
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from crm_core import keys
from crm_core.events import contacts as events
from crm_core.events.consumer import RECORD_TTL_SECONDS, EventConsumer, PoisonEvent
from crm_core.events.envelope import Origin
from infra.local.endpoint import DynamoDbIsolation
from tests.support.api import LambdaContext
from tests.support.checks import tenant_items
from tests.support.consumer_worker import EFFECT_KEY, build_consumer, deliver_concurrently
from tests.support.events import contact_created


def bus_event(
    detail: dict[str, Any], detail_type: str = "ContactCreated", **extra: Any
) -> dict[str, Any]:
    """An EventBridge event as a rule delivers it to a Lambda target."""
    return {
        "version": "0",
        "id": f"eb-{time.monotonic_ns()}",  # EventBridge's id differs on every re-send
        "detail-type": detail_type,
        "source": "crm.contacts",
        "account": "123456789012",
        "time": "2026-11-22T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
        **extra,
    }


def created(tenant: str = "acme") -> dict[str, Any]:
    return contact_created(tenant, Origin.user("user-1", "req-42"))


def handle(consumer: EventConsumer, event: dict[str, Any]) -> Any:
    return consumer.handle(event, LambdaContext())


def effects(table: Any) -> int:
    item = table.client.get_item(TableName=table.name, Key=EFFECT_KEY).get("Item")
    return int(item["effects"]["N"]) if item else 0


def test_a_handler_gets_the_typed_event(table: Any) -> None:
    consumer = EventConsumer("typed", table, _logger())
    seen: list[Any] = []
    consumer.on(events.ContactCreated)(seen.append)
    detail = created()

    handle(consumer, bus_event(detail))

    (event,) = seen
    assert isinstance(event, events.ContactCreated)
    assert event.data.contact.email == "ada@example.com"
    assert event.metadata.event_id == detail["metadata"]["event_id"]


def test_the_same_event_twice_has_one_effect(table: Any) -> None:
    consumer = build_consumer(table)
    detail = created()

    first = handle(consumer, bus_event(detail))
    second = handle(consumer, bus_event(detail))  # a retry, a re-drive, or a replay

    assert effects(table) == 1
    assert first == second == {"counted": detail["metadata"]["event_id"]}
    handle(consumer, bus_event(created()))  # another event is another effect
    assert effects(table) == 2


def test_idempotency_records_live_in_the_events_tenant_for_at_least_a_day(table: Any) -> None:
    handle(build_consumer(table), bus_event(created("globex")))

    (record,) = [
        i
        for i in tenant_items(table, "globex")
        if i["PK"]["S"] == keys.idempotency_partition("globex")
    ]
    assert record["status"]["S"] == "COMPLETED"
    assert int(record["ttl"]["N"]) - time.time() >= RECORD_TTL_SECONDS - 60
    assert RECORD_TTL_SECONDS >= 24 * 3600


def test_a_failed_run_leaves_no_record_so_the_retry_runs_again(table: Any) -> None:
    consumer = EventConsumer("flaky", table, _logger())
    calls: list[str] = []

    @consumer.on(events.ContactCreated)
    def fail_once(event: events.ContactCreated) -> None:
        calls.append(event.event_id)
        if len(calls) == 1:
            raise RuntimeError("downstream unavailable")

    detail = created()
    with pytest.raises(RuntimeError):
        handle(consumer, bus_event(detail))
    handle(consumer, bus_event(detail))
    handle(consumer, bus_event(detail))
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (bus_event(created(), "ContactMerged"), "does not consume"),
        ({**bus_event(created()), "source": "crm.other"}, "does not consume"),
        (bus_event({"metadata": {"event_id": "nope"}, "data": {}}), "does not match its model"),
        (bus_event({**created(), "data": {"contact": {"id": "x"}}}), "does not match its model"),
        ({"detail-type": "ContactCreated", "source": "crm.contacts"}, "does not match its model"),
    ],
)
def test_an_event_it_cannot_parse_is_poison(table: Any, event: dict[str, Any], reason: str) -> None:
    consumer = build_consumer(table)
    with pytest.raises(PoisonEvent, match=reason):
        handle(consumer, event)
    assert effects(table) == 0
    assert tenant_items(table, "acme") == []


def test_logs_carry_the_correlation_id_tenant_and_event(table: Any) -> None:
    from aws_lambda_powertools import Logger

    stream = io.StringIO()
    consumer = build_consumer(
        table, logger=Logger(service="logged-consumer", level="INFO", stream=stream)
    )
    detail = created()
    handle(consumer, bus_event(detail))

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    (processed,) = [line for line in lines if line["message"] == "event processed"]
    assert processed["correlation_id"] == "req-42"
    assert processed["tenant_id"] == "acme"
    assert processed["event_id"] == detail["metadata"]["event_id"]
    assert processed["detail_type"] == "ContactCreated"


def test_concurrent_deliveries_of_one_event_have_one_effect(table: Any) -> None:
    """Four environments get the same event at once (EventBridge delivers at least once):
    one runs it; the others are refused while it runs, and later retries get its result."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    isolation = DynamoDbIsolation()
    isolation.install()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    detail = created()
    context = multiprocessing.get_context("spawn")
    try:
        with context.Manager() as manager, ProcessPoolExecutor(4, mp_context=context) as pool:
            barrier = manager.Barrier(4)
            futures = [
                pool.submit(
                    deliver_concurrently, endpoint, table.name, bus_event(detail), barrier, 1.0
                )
                for _ in range(4)
            ]
            outcomes = sorted(f.result(timeout=120) for f in futures)
    finally:
        isolation.uninstall()
        server.stop()

    event_id = detail["metadata"]["event_id"]
    assert outcomes.count(f"done {event_id}") >= 1
    assert effects(table) == 1, outcomes
    # Lambda retries the refused deliveries: they find the first run's result.
    assert handle(build_consumer(table), bus_event(detail)) == {"counted": event_id}
    assert effects(table) == 1


def _logger() -> Any:
    from aws_lambda_powertools import Logger

    return Logger(service="test")


# Outside sources (SES events, a Scheduler's payload) ---------------------------------------
class _Due:
    """An outside payload's model, as the dispatcher's schedule payload."""

    def __init__(self, campaign_id: str) -> None:
        self.campaign_id = campaign_id

    @classmethod
    def parse(cls, event: Any) -> _Due:
        from pydantic import BaseModel

        class Payload(BaseModel):
            kind: str
            campaign_id: str

        return cls(Payload.model_validate(event).campaign_id)


def _outside_consumer(table: Any, stream: io.StringIO, seen: list[Any]) -> EventConsumer:
    from aws_lambda_powertools import Logger

    consumer = EventConsumer(
        "outside", table, Logger(service=f"outside-{time.monotonic_ns()}", stream=stream)
    )
    consumer.on(events.ContactCreated)(lambda event: seen.append(("domain", event.event_id)))

    @consumer.on_outside("schedule", lambda e: e.get("kind") == "due", _Due.parse)
    def due(payload: _Due) -> str:
        seen.append(("due", payload.campaign_id))
        return payload.campaign_id

    return consumer


def test_an_outside_payload_goes_to_its_handler_with_no_idempotency_record(table: Any) -> None:
    seen: list[Any] = []
    consumer = _outside_consumer(table, io.StringIO(), seen)
    assert handle(consumer, {"kind": "due", "campaign_id": "c1"}) == "c1"
    assert handle(consumer, {"kind": "due", "campaign_id": "c1"}) == "c1"
    detail = created()
    handle(consumer, bus_event(detail))
    assert seen == [("due", "c1"), ("due", "c1"), ("domain", detail["metadata"]["event_id"])]
    assert tenant_items(table, "acme") != []  # the domain event's record only
    assert all("c1" not in json.dumps(item) for item in tenant_items(table, "acme"))


def test_an_outside_payload_its_parser_refuses_is_logged_once_as_poison(table: Any) -> None:
    from pydantic import ValidationError

    stream, seen = io.StringIO(), []
    consumer = _outside_consumer(table, stream, seen)
    with pytest.raises(ValidationError):
        handle(consumer, {"kind": "due", "campaign": "c1", "secret": "do-not-log"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    poison = [line for line in lines if line["message"] == "poison event"]
    assert len(poison) == 1, lines
    assert poison[0]["reason"] == "1 error(s): campaign_id: Field required"
    assert "do-not-log" not in stream.getvalue()
    assert seen == []


def test_a_handler_that_keeps_no_record_runs_at_every_delivery(table: Any) -> None:
    """`once=False`: the handler's own writes are idempotent (the report aggregator's), so
    no idempotency record is kept and each delivery reaches it."""
    consumer = EventConsumer("unrecorded", table, _logger())
    seen: list[str] = []
    consumer.on(events.ContactCreated, once=False)(lambda e: seen.append(e.metadata.event_id))
    detail = created()
    handle(consumer, bus_event(detail))
    handle(consumer, bus_event(detail))
    assert seen == [detail["metadata"]["event_id"]] * 2
    assert tenant_items(table, "acme") == []
