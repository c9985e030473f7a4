"""The dispatch's decisions, without I/O: what a refused write on the campaign means, when
the send's audience is taken, where a retry resumes the audience's walk and which recipients
it must enqueue again, how the walk is cut into chunks, and how queued recipients become
SendMessageBatch entries. `Dispatcher` (dispatch.py) reads, asks these, and writes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from crm_core.campaigns.audience import Position
from crm_core.campaigns.campaign_models import CampaignState
from crm_core.campaigns.campaign_store import CAMPAIGN_ITEM
from crm_core.campaigns.recipients import GROUP_SIZE, SendBatch
from crm_core.clock import format_iso
from crm_core.dynamo import Item

_T = TypeVar("_T")


class LeaseHeld(RuntimeError):
    """Another run of this dispatch holds the lease: Lambda retries this one later."""


class NotOurs(Exception):
    """The campaign is not sending this dispatch (any more): nothing to do, no retry."""


def refusal(campaign: Item | None, dispatch_id: str, run_id: str) -> Exception:
    """What a failed condition on the campaign (read back as `campaign`) means for the run
    `run_id` of `dispatch_id`."""
    if campaign is None or campaign.get("type") != CAMPAIGN_ITEM:
        return NotOurs("no such campaign")
    if campaign.get("dispatch_id") != dispatch_id:
        return NotOurs("this send is not the campaign's current one")
    if campaign.get("state") != CampaignState.SENDING.value:
        return NotOurs(f"the campaign is {campaign.get('state')}")
    holder = campaign.get("dispatch_lease")
    if holder != run_id:
        return LeaseHeld(
            f"another run ({holder}) dispatches this send until "
            f"{campaign.get('dispatch_lease_until')} (ms)"
        )
    return RuntimeError("the campaign refused a change for no reason found")


def send_time(campaign: Item, clock: Callable[[], float]) -> float:
    """When the send started: the segment is taken as it was then, by every run."""
    started = campaign.get("sending_started_at")
    if not started:
        return clock()
    return datetime.fromisoformat(str(started).replace("Z", "+00:00")).timestamp()


def position_item(position: Position, now: str) -> dict[str, Any]:
    """The checkpoint as the campaign item keeps it."""
    item: dict[str, Any] = {"source": position.source, "at": now}
    if position.cursor is not None:
        item["cursor"] = position.cursor
    return item


def position(campaign: Item) -> Position | None:
    """Where the last run's checkpoint left the audience's walk (None: at its start)."""
    saved = campaign.get("dispatch_position")
    if not isinstance(saved, dict) or not saved.get("source"):
        return None
    return Position(str(saved["source"]), saved.get("cursor"))


def checkpoint_time(campaign: Item, margin_s: float) -> str | None:
    """Recipients written from this time on may not be enqueued yet (None: any of them);
    `margin_s` before the checkpoint, for the clocks of two hosts."""
    saved = campaign.get("dispatch_position")
    if not isinstance(saved, dict) or not saved.get("at"):
        return None
    at = datetime.fromisoformat(str(saved["at"]).replace("Z", "+00:00"))
    return format_iso(at - timedelta(seconds=margin_s))


def unique(placed: Iterable[tuple[Item, Position]]) -> Iterator[tuple[Item, Position]]:
    """Each contact once (a contact can be in the audience's walk twice: two tags, say)."""
    seen: set[str] = set()
    for contact, where in placed:
        if contact["id"] not in seen:
            seen.add(contact["id"])
            yield contact, where


def chunks(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    chunk: list[_T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(frozen=True)
class MessageBatch:
    """One SendMessageBatch request: its entries, and how many recipients they carry."""

    entries: list[dict[str, str]]
    recipients: int


def message_batches(
    tenant_id: str,
    campaign_id: str,
    dispatch_id: str,
    contact_ids: list[str],
    *,
    per_batch: int,
    max_bytes: int,
) -> list[MessageBatch]:
    """The SendMessageBatch requests that enqueue `contact_ids`: a message per GROUP_SIZE
    recipients, `per_batch` messages a request, at most `max_bytes` each (ValueError)."""
    groups = [contact_ids[i : i + GROUP_SIZE] for i in range(0, len(contact_ids), GROUP_SIZE)]
    batches = []
    for start in range(0, len(groups), per_batch):
        entries = [
            {
                "Id": str(n),
                # SQS fair queues: a tenant's backlog does not delay other tenants' sends.
                "MessageGroupId": tenant_id,
                "MessageBody": SendBatch(
                    tenant_id=tenant_id,
                    campaign_id=campaign_id,
                    dispatch_id=dispatch_id,
                    contact_ids=group,
                ).model_dump_json(),
            }
            for n, group in enumerate(groups[start : start + per_batch])
        ]
        total = sum(len(e["MessageBody"].encode()) for e in entries)
        if total > max_bytes:  # 10 x 50 ids is about 17 KB: never, unless ids grow
            raise ValueError(f"a batch of {total} bytes exceeds SendMessageBatch's 256 KB")
        batches.append(MessageBatch(entries, sum(map(len, groups[start : start + per_batch]))))
    return batches
