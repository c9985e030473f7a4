"""campaign_dispatcher: a send's audience written once as recipients and enqueued for the
sender, whatever crashes, repeats, pauses or overlaps.

Each test makes contacts (the contacts routes or store), a segment (the campaigns routes),
a campaign and its send (CampaignStore, as the campaigns function does), then hands the
dispatcher what would invoke it: the schedule's Input, or the outbox's event as a rule
delivers it. What it enqueued is read back from the send queue in moto.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from crm_core import keys
from crm_core.campaigns import audience, dispatch, recipients
from crm_core.campaigns.campaign_models import CampaignCreate, RecipientStatus
from crm_core.campaigns.campaign_store import CampaignStore
from crm_core.campaigns.dispatch import EnqueueFailed, OutOfTime
from crm_core.campaigns.dispatch_plan import LeaseHeld
from crm_core.contacts.store import ContactStore
from crm_core.dynamo import Item, key_attrs
from crm_core.events.envelope import Origin
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.records.contact import ContactCreate
from crm_core.table import Table
from tests.support.api import Api, LambdaContext, User
from tests.support.aws_calls import count_calls
from tests.support.events import delivered, redelivered
from tests.support.faults import Crashing, Meddling
from tests.support.lambda_pool import LambdaPool, lambda_pool

if TYPE_CHECKING:
    # Not imported when a worker process loads this module: conftest resets the endpoint.
    from tests.conftest import ConsumerFunction

TENANT, OTHER = "acme", "globex"
ADMIN = User(TENANT, ("admin",))
ORIGIN = Origin.user("user-1", "req-1")
# Not mail_setup's `mail.crm.test`: the Email type refuses special-use domains (.test).
SENDER_DOMAIN = "mail.example.com"
POSTAL = "1 Main Street, Springfield 12345"
CONTENT = {
    "from_address": f"acme.news@{SENDER_DOMAIN}",  # acme's namespace on the shared domain
    "from_name": "Acme News",
    "subject": "Hello {{ first_name | default('there') }}",
    "html": "<p>Hi {{ first_name }}</p><p>{{ attributes.plan }}</p>",
    "text": "Hi {{ first_name }}",
}


class Context(LambdaContext):
    """A Lambda context with the time left given (a fixed number, or a function of the
    number of times it was asked)."""

    def __init__(self, remaining_ms: int | Callable[[int], int] = 280_000) -> None:
        super().__init__()
        self.remaining = remaining_ms
        self.asked = 0

    def get_remaining_time_in_millis(self) -> int:
        self.asked += 1
        return self.remaining(self.asked) if callable(self.remaining) else self.remaining


class Scene:
    """The test table's contacts, segments and campaigns, the send queue, and the
    dispatcher they are delivered to."""

    def __init__(
        self, table: Table, function: ConsumerFunction, api: Api, campaigns_api: Api, queue_url: str
    ) -> None:
        self.table = table
        self.function = function
        self.api = api
        self.campaigns_api = campaigns_api
        self.queue_url = queue_url
        self.sqs = boto3.client("sqs")
        self.contacts = ContactStore(table)
        self.store = CampaignStore(table)

    # The world ------------------------------------------------------------------------
    def contact(self, tenant: str = TENANT, **fields: Any) -> str:
        """One contact through the contacts routes (subscribed unless told): its id."""
        body = {
            "email": f"{uuid.uuid4().hex[:12]}@example.com",
            "email_consent": "subscribed",
            **fields,
        }
        reply = self.api.call("POST", "/contacts", User(tenant, ("admin",)), body)
        assert reply.status == 201, reply.text
        return str(reply.json["id"])

    def many(self, n: int, tenant: str = TENANT, **fields: Any) -> list[str]:
        """`n` subscribed contacts, straight through the store (faster): their ids."""
        made = []
        for _ in range(n):
            body = ContactCreate(
                email=f"{uuid.uuid4().hex[:12]}@example.com",
                email_consent="subscribed",
                **fields,
            )
            made.append(self.contacts.create(tenant, body, ORIGIN).id)
        return made

    def segment(self, tenant: str = TENANT, **filter_: Any) -> str:
        reply = self.campaigns_api.call(
            "POST",
            "/segments",
            User(tenant, ("admin",)),
            {"name": f"s-{uuid.uuid4().hex[:6]}", "filter": filter_},
        )
        assert reply.status == 201, reply.text
        return str(reply.json["id"])

    def settings(self, tenant: str = TENANT, **fields: Any) -> None:
        item = {
            **keys.email_settings(tenant),
            "type": "email_settings",
            "tenant_id": tenant,
            "postal_address": POSTAL,
            "updated_at": "2026-11-22T10:00:00.000Z",
            "version": 1,
            **fields,
        }
        self.table.client.put_item(TableName=self.table.name, Item=_attrs(item))

    def campaign(self, segment_id: str, tenant: str = TENANT, **content: Any) -> str:
        body = CampaignCreate.model_validate(
            {"name": "Spring", "segment_id": segment_id, **CONTENT, **content}
        )
        return str(self.store.create(tenant, body, ORIGIN)["id"])

    def send_now(self, campaign_id: str, tenant: str = TENANT) -> dict[str, Any]:
        """Send the campaign now: the CampaignSendRequested a rule delivers."""
        self.store.send_now(tenant, campaign_id, None, ORIGIN)
        return self.event(campaign_id, "CampaignSendRequested", tenant)

    def schedule(self, campaign_id: str, tenant: str = TENANT) -> dict[str, Any]:
        """Schedule the campaign: the Input its schedule invokes the dispatcher with."""
        dispatch_id = new_ulid()
        self.store.schedule(
            tenant, campaign_id, "2030-01-01T09:00:00Z", "UTC", dispatch_id, None, ORIGIN
        )
        return {
            "kind": "campaign_due",
            "tenant_id": tenant,
            "campaign_id": campaign_id,
            "dispatch_id": dispatch_id,
        }

    def pause(self, campaign_id: str, tenant: str = TENANT) -> None:
        self.store.pause(tenant, campaign_id, "paused by a person", ORIGIN)

    def resume(self, campaign_id: str, tenant: str = TENANT) -> dict[str, Any]:
        self.store.resume(tenant, campaign_id, ORIGIN)
        return self.event(campaign_id, "CampaignResumed", tenant)

    # Invocations ------------------------------------------------------------------------
    def dispatch(self, event: dict[str, Any], context: LambdaContext | None = None) -> Any:
        return self.function.handler(event, context or Context())

    # What it did ------------------------------------------------------------------------
    def item(self, campaign_id: str, tenant: str = TENANT) -> Item:
        item = self.table.get(keys.campaign(tenant, campaign_id))
        assert item is not None
        return item

    def recipients(self, campaign_id: str, tenant: str = TENANT) -> dict[str, Item]:
        return {
            r["contact_id"]: r for r in self.partition(campaign_id, keys.RECIPIENT_PREFIX, tenant)
        }

    def partition(self, campaign_id: str, prefix: str, tenant: str = TENANT) -> list[Item]:
        listing = ListQuery("partition", keys.campaign_partition(tenant, campaign_id))
        found: list[Item] = []
        cursor = None
        while True:
            page = self.table.query(
                listing, 100, cursor, newest_first=False, sort_prefix=prefix, consistent=True
            )
            found += page.items
            if not page.next_cursor:
                return found
            cursor = page.next_cursor

    def outbox(self, campaign_id: str, detail_type: str, tenant: str = TENANT) -> list[Item]:
        items = self.partition(campaign_id, keys.OUTBOX_PREFIX, tenant)
        return [i for i in items if i["detail_type"] == detail_type]

    def event(self, campaign_id: str, detail_type: str, tenant: str = TENANT) -> dict[str, Any]:
        """The campaign's latest `detail_type` event, as a rule delivers it."""
        return delivered(self.outbox(campaign_id, detail_type, tenant)[-1])

    def received(self) -> list[dict[str, Any]]:
        """Every message waiting on the send queue, taken off it (SQS's own messages)."""
        messages: list[Any] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                return messages
            messages += got

    def enqueued(self) -> list[dict[str, Any]]:
        """The bodies of the messages waiting on the send queue (taken off it)."""
        return [json.loads(m["Body"]) for m in self.received()]


def _attrs(item: dict[str, Any]) -> dict[str, Any]:
    from crm_core.dynamo import to_item

    return to_item(item)


def enqueued_ids(bodies: list[dict[str, Any]]) -> Counter[str]:
    return Counter(i for body in bodies for i in body["contact_ids"])


@pytest.fixture(scope="module")
def dispatcher_module(contacts_module: ModuleType) -> ConsumerFunction:
    from tests.conftest import load_consumer

    return load_consumer("campaign_dispatcher")


@pytest.fixture
def scene(
    table: Table,
    dispatcher_module: ConsumerFunction,
    api: Api,
    campaigns_api: Api,
    mail_setup: dict[str, str],
) -> Scene:
    made = Scene(table, dispatcher_module, api, campaigns_api, mail_setup["send_queue_url"])
    made.received()  # an earlier test's messages (PurgeQueue is allowed once a minute)
    return made


def assert_dispatched(scene: Scene, campaign_id: str, contact_ids: list[str]) -> None:
    """Every contact is a recipient once, queued, counted once; the dispatch is done."""
    found = scene.recipients(campaign_id)
    assert sorted(found) == sorted(contact_ids)
    assert {r["status"] for r in found.values()} == {"queued"}
    item = scene.item(campaign_id)
    assert item["count_audience"] == len(contact_ids)
    assert item["dispatch_done"] is True
    assert "dispatch_lease" not in item
    assert "dispatch_lease_until" not in item


# Send now, schedules ------------------------------------------------------------------------
def test_send_now_writes_each_member_once_and_enqueues_them_in_groups(scene: Scene) -> None:
    members = scene.many(120, tags=["news"])
    scene.many(3)  # not in the segment
    scene.many(2, OTHER, tags=["news"])  # another tenant's
    campaign_id = scene.campaign(scene.segment(tags={"any": ["news"]}))

    result = scene.dispatch(scene.send_now(campaign_id))

    assert result["result"] == "dispatched"
    assert (result["written"], result["enqueued"], result["messages"]) == (120, 120, 3)
    assert result["audience"] == 120
    assert result["finished"] is False
    assert_dispatched(scene, campaign_id, members)
    item = scene.item(campaign_id)
    assert item["state"] == "sending"
    one = scene.recipients(campaign_id)[members[0]]
    contact = scene.table.get(keys.contact(TENANT, members[0]))
    assert contact is not None
    assert one["email"] == contact["email"]
    assert one["dispatch_id"] == item["dispatch_id"]
    assert one["GSI3PK"] == keys.recipients_in_status(TENANT, campaign_id, "queued")
    bodies = scene.enqueued()
    assert sorted(len(b["contact_ids"]) for b in bodies) == [20, 50, 50]
    assert enqueued_ids(bodies) == Counter(members)  # each once
    for body in bodies:
        assert set(body) == {"tenant_id", "campaign_id", "dispatch_id", "contact_ids"}
        assert (body["tenant_id"], body["campaign_id"]) == (TENANT, campaign_id)
        assert body["dispatch_id"] == item["dispatch_id"]


def test_each_message_carries_its_tenant_as_message_group_for_fair_sending(
    scene: Scene,
) -> None:
    """SQS fair queues (standard queues, by MessageGroupId) serve a quiet tenant's messages
    before a backlog of one tenant's big campaign: each message names its tenant."""
    scene.many(60, tags=["news"])
    scene.many(2, OTHER, tags=["news"])
    scene.dispatch(scene.send_now(scene.campaign(scene.segment(tags={"any": ["news"]}))))
    other_campaign = scene.campaign(scene.segment(OTHER, tags={"any": ["news"]}), OTHER)
    scene.dispatch(scene.send_now(other_campaign, OTHER))

    received = scene.received()
    groups = Counter(m["Attributes"].get("MessageGroupId") for m in received)
    assert groups == {TENANT: 2, OTHER: 1}, groups
    for message in received:
        assert message["Attributes"]["MessageGroupId"] == json.loads(message["Body"])["tenant_id"]


def test_the_schedule_starts_the_campaign_and_a_second_firing_does_nothing(scene: Scene) -> None:
    members = scene.many(3)
    campaign_id = scene.campaign(scene.segment())
    due = scene.schedule(campaign_id)

    result = scene.dispatch(due)

    assert result["result"] == "dispatched"
    assert scene.item(campaign_id)["state"] == "sending"
    assert len(scene.outbox(campaign_id, "CampaignSendingStarted")) == 1
    assert_dispatched(scene, campaign_id, members)
    assert enqueued_ids(scene.enqueued()) == Counter(members)

    # The Scheduler delivers at least once: the same firing again changes nothing.
    again = scene.dispatch(due)
    assert again["result"] == "already_dispatched"
    assert scene.enqueued() == []
    assert len(scene.outbox(campaign_id, "CampaignSendingStarted")) == 1


def test_a_retried_firing_goes_on_with_its_dispatch(scene: Scene) -> None:
    """The first run started the campaign, then died before writing anyone."""
    members = scene.many(4)
    campaign_id = scene.campaign(scene.segment())
    due = scene.schedule(campaign_id)
    scene.store.start_scheduled(TENANT, campaign_id, due["dispatch_id"], ORIGIN)

    result = scene.dispatch(due)

    assert result["result"] == "dispatched"
    assert_dispatched(scene, campaign_id, members)
    assert len(scene.outbox(campaign_id, "CampaignSendingStarted")) == 1


def test_a_stale_or_cancelled_schedule_does_nothing_and_does_not_fail(scene: Scene) -> None:
    scene.many(2)
    segment_id = scene.segment()
    rescheduled = scene.campaign(segment_id)
    old = scene.schedule(rescheduled)
    scene.schedule(rescheduled)  # a new time: a new dispatch id
    cancelled = scene.campaign(segment_id)
    cancelled_due = scene.schedule(cancelled)
    scene.store.cancel(TENANT, cancelled, ORIGIN)
    sent_now = scene.campaign(segment_id)
    sent_now_due = scene.schedule(sent_now)
    scene.store.send_now(TENANT, sent_now, None, ORIGIN)  # the schedule's send is not it

    for due in (old, cancelled_due, sent_now_due):
        result = scene.dispatch(due)
        assert result["result"] == "ignored", result
        assert scene.recipients(due["campaign_id"]) == {}
    assert result["reason"] == "this send is not the campaign's current one"
    assert scene.item(rescheduled)["state"] == "scheduled"
    assert scene.item(cancelled)["state"] == "cancelled"
    gone = scene.dispatch({**old, "campaign_id": new_ulid()})
    assert gone["result"] == "ignored"
    assert scene.enqueued() == []


def test_the_schedule_input_is_checked(scene: Scene) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        scene.dispatch({"kind": "campaign_due", "tenant_id": TENANT, "campaign_id": "x"})


def test_an_event_delivered_again_is_handled_once(scene: Scene) -> None:
    members = scene.many(3)
    campaign_id = scene.campaign(scene.segment())
    event = scene.send_now(campaign_id)
    first = scene.dispatch(event)
    scene.enqueued()

    assert scene.dispatch(redelivered(event)) == first  # the consumer's record
    assert scene.enqueued() == []
    assert_dispatched(scene, campaign_id, members)


def test_an_empty_audience_fails_the_campaign(scene: Scene) -> None:
    scene.many(2)
    campaign_id = scene.campaign(scene.segment(tags={"any": ["nobody"]}))

    result = scene.dispatch(scene.send_now(campaign_id))

    assert result["result"] == "failed"
    item = scene.item(campaign_id)
    assert item["state"] == "failed"
    assert item["state_reason"] == "the segment had no contacts when the send started"
    assert item["dispatch_done"] is True
    (failed,) = scene.outbox(campaign_id, "CampaignFailed")
    assert json.loads(failed["detail"])["data"]["reason"] == item["state_reason"]
    assert scene.enqueued() == []


def test_a_deleted_segment_fails_the_campaign(scene: Scene) -> None:
    scene.many(2)
    segment_id = scene.segment()
    campaign_id = scene.campaign(segment_id)
    event = scene.send_now(campaign_id)
    reply = scene.campaigns_api.call("DELETE", f"/segments/{segment_id}", ADMIN)
    assert reply.status == 204, reply.text

    result = scene.dispatch(event)

    assert (result["result"], result["reason"]) == ("failed", dispatch.SEGMENT_GONE)
    item = scene.item(campaign_id)
    assert (item["state"], item["state_reason"]) == ("failed", dispatch.SEGMENT_GONE)
    assert "dispatch_lease" not in item
    assert scene.recipients(campaign_id) == {}


def test_every_member_is_a_recipient_whatever_their_consent(scene: Scene) -> None:
    """The snapshot is the segment; consent, suppression and addresses are the sender's
    to check when it sends (a contact may subscribe in between)."""
    ids = [
        scene.contact(email_consent="unknown"),
        scene.contact(email_consent="unsubscribed"),
        scene.contact(email=None, phone="+14155550100"),
        scene.contact(),
    ]
    campaign_id = scene.campaign(scene.segment())

    scene.dispatch(scene.send_now(campaign_id))

    found = scene.recipients(campaign_id)
    assert sorted(found) == sorted(ids)
    assert "email" not in found[ids[2]]
    assert enqueued_ids(scene.enqueued()) == Counter(ids)


# Crashes and reruns -------------------------------------------------------------------------
def _patched_client(
    monkeypatch: pytest.MonkeyPatch, function: ConsumerFunction, client: Any
) -> None:
    monkeypatch.setattr(function.context.table, "client", client)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two messages per SendMessageBatch, so that a few hundred recipients take several."""
    monkeypatch.setattr(dispatch, "RECIPIENTS_PER_BATCH", 2 * recipients.GROUP_SIZE)


def test_a_crash_at_any_transaction_then_a_rerun_writes_and_counts_each_recipient_once(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, small_batches: None
) -> None:
    members = scene.many(260)  # chunks of 99, 99 and 62: three transactions
    segment_id = scene.segment()
    real = scene.function.context.table.client
    for crash_after in range(3):
        campaign_id = scene.campaign(segment_id)
        event = scene.send_now(campaign_id)
        _patched_client(monkeypatch, scene.function, Crashing(real, crash_after))
        with pytest.raises(TimeoutError):
            scene.dispatch(event)
        _patched_client(monkeypatch, scene.function, real)
        written = len(scene.recipients(campaign_id))
        assert written == 99 * crash_after
        assert scene.item(campaign_id)["count_audience"] == written
        before = enqueued_ids(scene.enqueued())
        assert set(before) <= set(scene.recipients(campaign_id))

        result = scene.dispatch(redelivered(event))

        assert result["result"] == "dispatched"
        assert result["written"] == 260 - written  # only the missing ones
        assert_dispatched(scene, campaign_id, members)
        after = enqueued_ids(scene.enqueued())
        assert set(after) == set(members)  # every queued recipient again, once
        assert max(after.values()) == 1


class FailingQueue:
    """An SQS client whose process dies after `after` SendMessageBatch calls."""

    def __init__(self, client: Any, after: int) -> None:
        self._client = client
        self._left = after

    def send_message_batch(self, **params: Any) -> Any:
        if self._left == 0:
            raise TimeoutError("Task timed out")
        self._left -= 1
        return self._client.send_message_batch(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_crash_between_enqueues_then_a_rerun_enqueues_every_queued_recipient(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, small_batches: None
) -> None:
    # Enqueued 100 after chunk 2, 100 after chunk 3, and 60 at the end.
    members = scene.many(260)
    segment_id = scene.segment()
    dispatcher = scene.function.context.dispatcher
    real = dispatcher.sqs
    for crash_after, unwritten in ((0, 62), (1, 0), (2, 0)):
        campaign_id = scene.campaign(segment_id)
        event = scene.send_now(campaign_id)
        monkeypatch.setattr(dispatcher, "sqs", FailingQueue(real, crash_after))
        with pytest.raises(TimeoutError):
            scene.dispatch(event)
        monkeypatch.setattr(dispatcher, "sqs", real)
        assert sum(enqueued_ids(scene.enqueued()).values()) == 100 * crash_after

        result = scene.dispatch(redelivered(event))

        assert result["written"] == unwritten
        assert_dispatched(scene, campaign_id, members)
        assert enqueued_ids(scene.enqueued()) == Counter(members)


def test_a_rerun_enqueues_recipients_who_left_the_segment_since(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = scene.many(150, tags=["news"])
    campaign_id = scene.campaign(scene.segment(tags={"any": ["news"]}))
    event = scene.send_now(campaign_id)
    real = scene.function.context.table.client
    _patched_client(monkeypatch, scene.function, Crashing(real, 1))
    with pytest.raises(TimeoutError):
        scene.dispatch(event)  # the first 99 written, none enqueued
    _patched_client(monkeypatch, scene.function, real)
    written = sorted(scene.recipients(campaign_id))
    assert len(written) == 99
    assert scene.enqueued() == []
    leaver = written[0]
    contact = scene.table.get(keys.contact(TENANT, leaver))
    assert contact is not None
    scene.contacts.update(TENANT, leaver, {"tags": []}, None, ORIGIN)

    result = scene.dispatch(redelivered(event))

    assert result["written"] == 150 - 99
    assert enqueued_ids(scene.enqueued()) == Counter(members)  # the leaver too
    assert scene.item(campaign_id)["count_audience"] == 150


def test_a_lease_held_by_a_live_run_makes_the_delivery_retry(scene: Scene) -> None:
    scene.many(3)
    campaign_id = scene.campaign(scene.segment())
    event = scene.send_now(campaign_id)
    until = int(time.time() * 1000) + 60_000
    _set_lease(scene, campaign_id, "another-run", until)

    with pytest.raises(LeaseHeld):
        scene.dispatch(event)
    assert scene.recipients(campaign_id) == {}
    assert scene.item(campaign_id)["dispatch_lease"] == "another-run"  # not ours to release

    # That run was killed: its lease expires with its invocation; the retry goes on.
    _set_lease(scene, campaign_id, "another-run", int(time.time() * 1000) - 1)
    result = scene.dispatch(redelivered(event))
    assert result["result"] == "dispatched"
    assert len(scene.recipients(campaign_id)) == 3


def test_the_retry_of_a_killed_run_owns_its_lease(scene: Scene) -> None:
    """Lambda keeps the request id across the retries of an asynchronous invocation."""
    scene.many(3)
    campaign_id = scene.campaign(scene.segment())
    due = scene.schedule(campaign_id)
    retry = Context()
    scene.store.start_scheduled(TENANT, campaign_id, due["dispatch_id"], ORIGIN)
    _set_lease(scene, campaign_id, retry.aws_request_id, int(time.time() * 1000) + 250_000)

    result = scene.dispatch(due, retry)

    assert result["result"] == "dispatched"
    assert "dispatch_lease" not in scene.item(campaign_id)


def _set_lease(scene: Scene, campaign_id: str, owner: str, until: int) -> None:
    scene.table.client.update_item(
        TableName=scene.table.name,
        Key=key_attrs(keys.campaign(TENANT, campaign_id)),
        UpdateExpression="SET dispatch_lease = :o, dispatch_lease_until = :u",
        ExpressionAttributeValues={":o": {"S": owner}, ":u": {"N": str(until)}},
    )


def test_a_run_short_of_time_stops_and_the_retry_goes_on(scene: Scene) -> None:
    members = scene.many(200)
    campaign_id = scene.campaign(scene.segment())
    event = scene.send_now(campaign_id)

    with pytest.raises(OutOfTime):
        scene.dispatch(event, Context(25_000))
    assert scene.recipients(campaign_id) == {}
    assert "dispatch_lease" not in scene.item(campaign_id)

    # Enough time until the first chunk is written, then too little.
    def remaining(_: int) -> int:
        return 1000 if scene.recipients(campaign_id) else 280_000

    with pytest.raises(OutOfTime):
        scene.dispatch(redelivered(event), Context(remaining))
    assert len(scene.recipients(campaign_id)) == 99
    item = scene.item(campaign_id)
    assert "dispatch_lease" not in item
    assert not item.get("dispatch_done")

    result = scene.dispatch(redelivered(event))
    assert result["written"] == 101
    assert_dispatched(scene, campaign_id, members)
    assert set(enqueued_ids(scene.enqueued())) == set(members)


@pytest.fixture
def small_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 15 contacts, chunks of 10, a checkpoint every 2 chunks: a few dozen
    contacts take several of each."""
    monkeypatch.setattr(audience, "PAGE", 15)
    monkeypatch.setattr(dispatch, "CHUNK", 10)
    monkeypatch.setattr(dispatch, "CHECKPOINT_CHUNKS", 2)
    monkeypatch.setattr(dispatch, "CHECKPOINT_MARGIN_S", 0)  # one process, one clock


def test_a_run_out_of_time_is_retried_from_its_checkpoint(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, small_walk: None
) -> None:
    members = scene.many(100)  # 7 pages of 15, 10 chunks of 10
    campaign_id = scene.campaign(scene.segment())
    event = scene.send_now(campaign_id)

    def remaining(_: int) -> int:  # time runs low once 5 chunks are written
        return 1000 if len(scene.recipients(campaign_id)) >= 50 else 280_000

    with pytest.raises(OutOfTime):
        scene.dispatch(event, Context(remaining))
    assert len(scene.recipients(campaign_id)) == 50
    checkpoint = scene.item(campaign_id)["dispatch_position"]
    # Written at chunk 5, after the flush of chunks 3 and 4: contact 41 is on page 3.
    assert checkpoint["source"].startswith("GSI1:")
    assert checkpoint["cursor"]
    first = enqueued_ids(scene.enqueued())
    assert len(first) == 40  # chunk 5 was never enqueued
    assert max(first.values()) == 1

    real = scene.function.context.table.client
    with count_calls(real) as calls:
        result = scene.dispatch(redelivered(event))

    assert result["written"] == 50
    assert_dispatched(scene, campaign_id, members)
    second = enqueued_ids(scene.enqueued())
    assert set(first) | set(second) == set(members)
    # The rerun read from page 3 (contacts 31 on): only 10 of the first run's are again.
    assert len(set(first) & set(second)) == 10
    assert calls.by_operation["Query"] <= 5 + 1  # pages 3 to 7, and the sweep's one page


def test_a_contact_changed_during_the_dispatch_is_not_missed(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, small_walk: None
) -> None:
    """Oldest change first: an edit moves a contact to the end of the walk, not behind it."""
    members = scene.many(45)
    campaign_id = scene.campaign(scene.segment())
    event = scene.send_now(campaign_id)
    table = scene.function.context.dispatcher.audience.table
    real_query = table.query
    pages: list[int] = []

    def query(*args: Any, **kwargs: Any) -> Any:
        page = real_query(*args, **kwargs)
        pages.append(len(page.items))
        if len(pages) == 1:  # someone edits a contact not read yet
            scene.contacts.update(TENANT, members[20], {"first_name": "Edited"}, None, ORIGIN)
        return page

    monkeypatch.setattr(table, "query", query)
    result = scene.dispatch(event)

    assert result["result"] == "dispatched"
    assert_dispatched(scene, campaign_id, members)  # newest first, it was missed
    assert len(pages) == 3


# Pause, resume ------------------------------------------------------------------------------
def test_a_pause_during_the_dispatch_stops_it_and_the_resume_finishes_it(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = scene.many(120)
    campaign_id = scene.campaign(scene.segment())
    event = scene.send_now(campaign_id)
    real = scene.function.context.table.client
    _patched_client(monkeypatch, scene.function, Meddling(real, lambda: scene.pause(campaign_id)))

    result = scene.dispatch(event)

    assert (result["result"], result["reason"]) == ("stopped", "the campaign is paused")
    assert scene.recipients(campaign_id) == {}
    assert "dispatch_lease" not in scene.item(campaign_id)
    _patched_client(monkeypatch, scene.function, real)

    resumed = scene.dispatch(scene.resume(campaign_id))

    assert resumed["result"] == "dispatched"
    assert_dispatched(scene, campaign_id, members)
    assert enqueued_ids(scene.enqueued()) == Counter(members)


def test_a_resume_after_a_checkpoint_enqueues_every_recipient_still_queued(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, small_walk: None
) -> None:
    """The sender drops a paused campaign's messages: the resume must enqueue again the
    recipients before the checkpoint too, not only those after it."""
    members = scene.many(70)
    campaign_id = scene.campaign(scene.segment())
    event = scene.send_now(campaign_id)
    real = scene.function.context.table.client
    transactions = 0

    class PausingBeforeChunk6:
        def transact_write_items(self, **params: Any) -> Any:
            nonlocal transactions
            transactions += 1
            if transactions == 6:
                scene.pause(campaign_id)
            return real.transact_write_items(**params)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    _patched_client(monkeypatch, scene.function, PausingBeforeChunk6())
    result = scene.dispatch(event)
    _patched_client(monkeypatch, scene.function, real)
    assert result["result"] == "stopped"
    assert len(scene.recipients(campaign_id)) == 50
    assert scene.item(campaign_id)["dispatch_position"]["cursor"]
    assert len(enqueued_ids(scene.enqueued())) == 40  # then dropped by the sender

    resumed = scene.dispatch(scene.resume(campaign_id))

    assert resumed["result"] == "dispatched"
    assert_dispatched(scene, campaign_id, members)
    assert set(enqueued_ids(scene.enqueued())) == set(members)


def test_a_resume_enqueues_only_the_recipients_still_queued(scene: Scene) -> None:
    members = scene.many(8)
    campaign_id = scene.campaign(scene.segment())
    scene.dispatch(scene.send_now(campaign_id))
    scene.enqueued()
    handled = {members[0]: "sent", members[1]: "skipped", members[2]: "failed"}
    for contact_id, status in handled.items():
        _set_status(scene, campaign_id, contact_id, RecipientStatus(status))
    scene.pause(campaign_id)

    result = scene.dispatch(scene.resume(campaign_id))

    assert result["result"] == "requeued"
    assert result["written"] == 0
    assert enqueued_ids(scene.enqueued()) == Counter(members[3:])
    assert scene.item(campaign_id)["count_audience"] == 8


def test_a_resume_of_a_campaign_whose_recipients_were_all_handled_finishes_it(
    scene: Scene,
) -> None:
    members = scene.many(2)
    campaign_id = scene.campaign(scene.segment())
    scene.dispatch(scene.send_now(campaign_id))
    scene.enqueued()
    scene.pause(campaign_id)
    for contact_id in members:  # as the sender would have, just before the pause
        scene.table.transact(
            recipients.mark(
                scene.table.op,
                TENANT,
                campaign_id,
                contact_id,
                RecipientStatus.SKIPPED,
                condition="#status = :q AND attribute_not_exists(#at)",
                values={"q": "queued"},
                sets={"skip_reason": "consent"},
                count="skipped",
            )
        )

    result = scene.dispatch(scene.resume(campaign_id))

    assert (result["result"], result["finished"]) == ("requeued", True)
    assert scene.item(campaign_id)["state"] == "sent"
    assert len(scene.outbox(campaign_id, "CampaignSent")) == 1
    assert scene.enqueued() == []


def test_a_send_whose_every_recipient_is_handled_at_dispatch_finishes_there(
    scene: Scene,
) -> None:
    """A rerun after the sender skipped everyone (the first run died before its end)."""
    members = scene.many(2)
    campaign_id = scene.campaign(scene.segment())
    event = scene.send_now(campaign_id)
    scene.dispatch(event)
    scene.enqueued()
    for contact_id in members:
        _set_status(scene, campaign_id, contact_id, RecipientStatus.SKIPPED)
    scene.table.client.update_item(
        TableName=scene.table.name,
        Key=key_attrs(keys.campaign(TENANT, campaign_id)),
        UpdateExpression="SET count_skipped = :n REMOVE dispatch_done",
        ExpressionAttributeValues={":n": {"N": "2"}},
    )
    _forget_deliveries(scene)

    result = scene.dispatch(redelivered(event))

    assert (result["result"], result["finished"]) == ("dispatched", True)
    assert scene.item(campaign_id)["state"] == "sent"
    assert scene.enqueued() == []


def _forget_deliveries(scene: Scene, tenant: str = TENANT) -> None:
    """Delete the consumer's idempotency records (as their TTL does)."""
    partition = keys.idempotency_partition(tenant)
    for item in scene.table.query_all(None, partition, sort_below="\U0010ffff"):
        key = key_attrs({"PK": item["PK"], "SK": item["SK"]})
        scene.table.client.delete_item(TableName=scene.table.name, Key=key)


def _set_status(scene: Scene, campaign_id: str, contact_id: str, status: RecipientStatus) -> None:
    fields = recipients.status_keys(TENANT, campaign_id, contact_id, status)
    scene.table.client.update_item(
        TableName=scene.table.name,
        Key=key_attrs(keys.recipient(TENANT, campaign_id, contact_id)),
        UpdateExpression="SET " + ", ".join(f"#{n} = :{n}" for n in fields),
        ExpressionAttributeNames={f"#{n}": n for n in fields},
        ExpressionAttributeValues={f":{n}": _attrs({n: v})[n] for n, v in fields.items()},
    )


# The send queue -----------------------------------------------------------------------------
class RefusingQueue:
    """An SQS client that refuses some entries of each SendMessageBatch, as SQS may."""

    def __init__(self, client: Any, refusals: int, sender_fault: bool = False) -> None:
        self._client = client
        self.refusals = refusals
        self.sender_fault = sender_fault
        self.calls: list[list[dict[str, Any]]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803
        self.calls.append(Entries)
        if self.refusals == 0:
            return self._client.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)
        self.refusals -= 1
        refused, accepted = Entries[:1], Entries[1:]
        response = (
            self._client.send_message_batch(QueueUrl=QueueUrl, Entries=accepted)
            if accepted
            else {"Successful": []}
        )
        response["Failed"] = [
            {
                "Id": e["Id"],
                "SenderFault": self.sender_fault,
                "Code": "InternalError",
                "Message": "try again",
            }
            for e in refused
        ]
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_entries_sqs_refuses_are_sent_again(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    members = scene.many(120)
    campaign_id = scene.campaign(scene.segment())
    queue = RefusingQueue(scene.sqs, refusals=2)
    monkeypatch.setattr(scene.function.context.dispatcher, "sqs", queue)

    scene.dispatch(scene.send_now(campaign_id))

    assert [len(c) for c in queue.calls] == [3, 1, 1]
    assert enqueued_ids(scene.enqueued()) == Counter(members)


def test_entries_sqs_keeps_refusing_fail_the_run(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene.many(3)
    campaign_id = scene.campaign(scene.segment())
    event = scene.send_now(campaign_id)
    for queue in (RefusingQueue(scene.sqs, refusals=99), RefusingQueue(scene.sqs, 1, True)):
        monkeypatch.setattr(scene.function.context.dispatcher, "sqs", queue)
        with pytest.raises(EnqueueFailed):
            scene.dispatch(redelivered(event))
    assert len(queue.calls) == 1  # the sender's fault: not sent again
    item = scene.item(campaign_id)
    assert "dispatch_lease" not in item
    assert not item.get("dispatch_done")


def test_a_large_audience_within_the_limits_and_its_calls(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = scene.many(600)
    campaign_id = scene.campaign(scene.segment())
    event = scene.send_now(campaign_id)
    queue = RefusingQueue(scene.sqs, refusals=0)
    monkeypatch.setattr(scene.function.context.dispatcher, "sqs", queue)
    transactions: list[int] = []
    real = scene.function.context.table.client

    class Recording:
        def transact_write_items(self, **params: Any) -> Any:
            transactions.append(len(params["TransactItems"]))
            return real.transact_write_items(**params)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    monkeypatch.setattr(scene.function.context.table, "client", Recording())

    with count_calls(real, scene.sqs) as calls:
        result = scene.dispatch(event)

    assert result["written"] == result["enqueued"] == 600
    assert_dispatched(scene, campaign_id, members)
    assert max(transactions) <= 100
    assert all(len(entries) <= 10 for entries in queue.calls)
    assert all(len({e["Id"] for e in entries}) == len(entries) for entries in queue.calls)
    bodies = scene.enqueued()
    assert all(len(b["contact_ids"]) <= recipients.GROUP_SIZE for b in bodies)
    assert enqueued_ids(bodies) == Counter(members)
    # 495 recipients (five chunks) at the checkpoint, then 105: 50 + 50 + 5.
    assert [len(c) for c in queue.calls] == [10, 3]
    by_operation = calls.by_operation
    print(f"dispatch of 600 recipients: {dict(by_operation)}; {calls.count / 600:.4f}/recipient")
    assert by_operation["TransactWriteItems"] == 7  # chunks of 99
    assert by_operation["BatchGetItem"] == 7
    assert by_operation["SendMessageBatch"] == 2
    assert calls.count / 600 < 0.05


# Concurrency: one process per Lambda environment (docs/decisions.md, 17) ----------------------
@pytest.fixture(scope="module")
def pool(dispatcher_module: ConsumerFunction) -> Iterator[LambdaPool]:
    with lambda_pool("campaign_dispatcher") as running:
        yield running


def _dispatch_in_worker(event: dict[str, Any], barrier: Any) -> str:
    """In a worker: one invocation of its warm dispatcher."""
    from crm_core.campaigns.dispatch_plan import LeaseHeld as Held
    from crm_core.events.consumer import EventInProgress
    from tests.support import lambda_pool as environment

    barrier.wait(60)
    try:
        return json.dumps(environment._handler(event, Context()))
    except Held:
        return '"lease held"'
    except EventInProgress:
        return '"in progress"'


def test_deliveries_at_once_snapshot_once(scene: Scene, pool: LambdaPool) -> None:
    members = scene.many(150)
    campaign_id = scene.campaign(scene.segment())
    due = scene.schedule(campaign_id)
    barrier = pool.manager.Barrier(4)

    futures = [pool.executor.submit(_dispatch_in_worker, due, barrier) for _ in range(4)]
    outcomes = [json.loads(f.result(timeout=120)) for f in futures]

    dispatched = [o for o in outcomes if isinstance(o, dict) and o["result"] == "dispatched"]
    assert len(dispatched) >= 1, outcomes
    assert sum(o["written"] for o in dispatched) == 150
    assert_dispatched(scene, campaign_id, members)
    assert len(scene.outbox(campaign_id, "CampaignSendingStarted")) == 1
    assert set(enqueued_ids(scene.enqueued())) == set(members)
