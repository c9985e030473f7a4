"""PutEvents requests within EventBridge's limits: 10 entries and 256 KB each."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crm_core.events.forwarding import (
    MAX_ENTRIES_PER_REQUEST,
    MAX_REQUEST_BYTES,
    Outgoing,
    publish,
    requests,
)
from crm_core.events.outbox import MAX_EVENT_BYTES


def outgoing(n: int, size: int) -> Outgoing:
    return Outgoing(key=str(n), entry={"DetailType": "X", "n": n}, size=size)


@given(st.lists(st.integers(min_value=20, max_value=MAX_EVENT_BYTES), max_size=60))
def test_requests_keep_order_and_limits(sizes: list[int]) -> None:
    items = [outgoing(n, size) for n, size in enumerate(sizes)]
    chunks = list(requests(items))
    assert [o for chunk in chunks for o in chunk] == items
    for chunk in chunks:
        assert 1 <= len(chunk) <= MAX_ENTRIES_PER_REQUEST
        assert sum(o.size for o in chunk) <= MAX_REQUEST_BYTES or len(chunk) == 1
    # Greedy: a chunk closes only when the next entry would break a limit.
    for chunk, following in pairwise(chunks):
        assert (
            len(chunk) == MAX_ENTRIES_PER_REQUEST
            or sum(o.size for o in chunk) + following[0].size > MAX_REQUEST_BYTES
        )


def test_large_events_go_a_few_per_request() -> None:
    chunks = list(requests([outgoing(n, 100 * 1024) for n in range(5)]))
    assert [len(c) for c in chunks] == [2, 2, 1]


class Recording:
    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}


def test_an_entry_over_256_kb_is_never_sent_and_is_reported() -> None:
    client = Recording()
    failures = publish(client, [outgoing(0, 10), outgoing(1, MAX_EVENT_BYTES + 1), outgoing(2, 10)])
    assert [(f.outgoing.key, f.code) for f in failures] == [("1", "EntryTooLarge")]
    assert [[e["n"] for e in call] for call in client.calls] == [[0, 2]]
