"""From outbox items to the bus: PutEvents entries, sent within EventBridge's limits.

Used by outbox_publisher for each stream batch, and by `crm events replay --dlq` to publish
again the records of a batch the publisher gave up on. An entry that fails is sent again
(with backoff) `attempts` times; what still fails is returned, never dropped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from crm_core.dynamo import from_item
from crm_core.events.outbox import MAX_EVENT_BYTES, OUTBOX_EVENT, entry_bytes

MAX_ENTRIES_PER_REQUEST = 10  # PutEvents
MAX_REQUEST_BYTES = 256 * 1024  # PutEvents: the total of a request's entries
DEFAULT_ATTEMPTS = 4
# Per-entry error codes and API errors worth another try; anything else is our bug.
_TRANSIENT_CALL_ERRORS = {"ThrottlingException", "InternalException", "ServiceUnavailable"}


@dataclass(frozen=True)
class Outgoing:
    """One event to publish: `key` names where it came from (a stream sequence number)."""

    key: str
    entry: dict[str, Any]
    size: int


@dataclass(frozen=True)
class Failure:
    outgoing: Outgoing
    code: str
    message: str


def is_outbox_insert(record: Mapping[str, Any]) -> bool:
    image = record.get("dynamodb", {}).get("NewImage") or {}
    return record.get("eventName") == "INSERT" and image.get("type", {}).get("S") == OUTBOX_EVENT


def outgoing_from_record(record: Mapping[str, Any], bus_name: str) -> Outgoing:
    """The PutEvents entry of a stream record of a new outbox item."""
    item = from_item(record["dynamodb"]["NewImage"])
    return outgoing_from_item(item, bus_name, key=record["dynamodb"]["SequenceNumber"])


def outgoing_from_item(item: Mapping[str, Any], bus_name: str, key: str) -> Outgoing:
    entry: dict[str, Any] = {
        "Source": item["source"],
        "DetailType": item["detail_type"],
        "Detail": item["detail"],
        "EventBusName": bus_name,
        "Time": datetime.fromisoformat(item["occurred_at"].replace("Z", "+00:00")).astimezone(UTC),
    }
    if item.get("trace_header"):
        entry["TraceHeader"] = item["trace_header"]
    size = entry_bytes(entry["Source"], entry["DetailType"], entry["Detail"])
    return Outgoing(key=key, entry=entry, size=size)


def requests(outgoing: Sequence[Outgoing]) -> Iterator[list[Outgoing]]:
    """The entries in order, in requests of at most 10 entries and 256 KB."""
    chunk: list[Outgoing] = []
    total = 0
    for one in outgoing:
        if chunk and (
            len(chunk) == MAX_ENTRIES_PER_REQUEST or total + one.size > MAX_REQUEST_BYTES
        ):
            yield chunk
            chunk, total = [], 0
        chunk.append(one)
        total += one.size
    if chunk:
        yield chunk


def publish(
    client: Any, outgoing: Sequence[Outgoing], attempts: int = DEFAULT_ATTEMPTS
) -> list[Failure]:
    """Put every entry on the bus; return those that still failed after `attempts` tries,
    in their original order. An entry over 256 KB is never sent (it cannot succeed)."""
    failures: dict[str, Failure] = {}
    pending: list[Outgoing] = []
    for one in outgoing:
        if one.size > MAX_EVENT_BYTES:
            failures[one.key] = Failure(one, "EntryTooLarge", f"{one.size} bytes")
        else:
            pending.append(one)
    for attempt in range(1, attempts + 1):
        retry: list[Outgoing] = []
        for chunk in requests(pending):
            for one, code, message in _put(client, chunk):
                failures[one.key] = Failure(one, code, message)
                retry.append(one)
            for one in chunk:
                if one not in retry:
                    failures.pop(one.key, None)
        pending = retry
        if not pending:
            break
        if attempt < attempts:
            _backoff(attempt)
    order = {one.key: i for i, one in enumerate(outgoing)}
    return sorted(failures.values(), key=lambda f: order[f.outgoing.key])


def _put(client: Any, chunk: list[Outgoing]) -> list[tuple[Outgoing, str, str]]:
    """One PutEvents; the entries that failed, with EventBridge's error code."""
    try:
        response = client.put_events(Entries=[one.entry for one in chunk])
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code not in _TRANSIENT_CALL_ERRORS:
            raise
        return [(one, code, str(exc)) for one in chunk]
    if not response.get("FailedEntryCount"):
        return []
    return [
        (one, result.get("ErrorCode", "Unknown"), result.get("ErrorMessage", ""))
        for one, result in zip(chunk, response["Entries"], strict=True)
        if result.get("ErrorCode")
    ]


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not security
