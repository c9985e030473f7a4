"""The dispatch's decisions (crm_core/campaigns/dispatch_plan.py), without moto."""

from __future__ import annotations

import json

import pytest

from crm_core.campaigns.audience import Position
from crm_core.campaigns.dispatch_plan import (
    LeaseHeld,
    NotOurs,
    checkpoint_time,
    chunks,
    message_batches,
    position,
    position_item,
    refusal,
    send_time,
    unique,
)
from crm_core.campaigns.recipients import GROUP_SIZE

SENDING = {
    "type": "campaign",
    "state": "sending",
    "dispatch_id": "d1",
    "dispatch_lease": "run-1",
    "dispatch_lease_until": 1_800_000_000_000,
}


def test_a_refused_write_says_whose_the_campaign_is_now() -> None:
    assert isinstance(refusal(None, "d1", "run-1"), NotOurs)
    assert str(refusal({**SENDING, "dispatch_id": "d2"}, "d1", "run-1")) == (
        "this send is not the campaign's current one"
    )
    assert str(refusal({**SENDING, "state": "paused"}, "d1", "run-1")) == "the campaign is paused"
    held = refusal(SENDING, "d1", "run-2")
    assert isinstance(held, LeaseHeld)  # retried by Lambda, unlike NotOurs
    assert "run-1" in str(held)
    assert type(refusal(SENDING, "d1", "run-1")) is RuntimeError  # nothing explains it


def test_every_run_takes_the_audience_as_it_was_when_the_send_started() -> None:
    started = {**SENDING, "sending_started_at": "2026-03-10T12:00:00.000Z"}
    assert send_time(started, lambda: 0.0) == 1_773_144_000.0
    assert send_time(SENDING, lambda: 42.0) == 42.0  # not recorded: now


def test_a_checkpoint_round_trips_and_a_retry_vouches_only_before_its_margin() -> None:
    saved = position_item(Position("tag:T#acme#TAG#vip", "cursor-1"), "2026-03-10T12:00:05.000Z")
    campaign = {**SENDING, "dispatch_position": saved}
    assert position(campaign) == Position("tag:T#acme#TAG#vip", "cursor-1")
    assert checkpoint_time(campaign, 5) == "2026-03-10T12:00:00.000Z"
    assert position(SENDING) is None
    assert checkpoint_time(SENDING, 5) is None  # no checkpoint: every queued one again


def test_the_walk_is_cut_into_chunks_each_contact_once() -> None:
    where = Position("all", None)
    placed = [({"id": i}, where) for i in ["a", "b", "a", "c", "b", "d"]]
    ids = [[c["id"] for c, _ in chunk] for chunk in chunks(unique(placed), 3)]
    assert ids == [["a", "b", "c"], ["d"]]


def test_queued_recipients_become_messages_of_a_group_each_ten_to_a_request() -> None:
    ids = [f"c{n:04d}" for n in range(GROUP_SIZE * 10 + 3)]  # 11 messages: 2 requests

    batches = message_batches("acme", "k1", "d1", ids, per_batch=10, max_bytes=256 * 1024)

    assert [len(b.entries) for b in batches] == [10, 1]
    assert [b.recipients for b in batches] == [GROUP_SIZE * 10, 3]
    first = batches[0].entries[0]
    assert first["MessageGroupId"] == "acme"  # fair queues: one group per tenant
    body = json.loads(first["MessageBody"])
    assert (body["campaign_id"], body["dispatch_id"]) == ("k1", "d1")
    assert body["contact_ids"] == ids[:GROUP_SIZE]
    sent = [
        i for b in batches for e in b.entries for i in json.loads(e["MessageBody"])["contact_ids"]
    ]
    assert sent == ids
    with pytest.raises(ValueError, match="exceeds SendMessageBatch"):
        message_batches("acme", "k1", "d1", ids, per_batch=10, max_bytes=1000)
