"""ULIDs: 26 Crockford base32 characters whose order is the order of their creation time."""

from __future__ import annotations

import re
import time

from hypothesis import given
from hypothesis import strategies as st

from crm_core.ids import ULID_PATTERN, is_ulid, new_ulid

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MAX_MS = 2**48 - 1
millis = st.integers(0, MAX_MS)


def time_of(ulid: str) -> int:
    value = 0
    for char in ulid[:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


@given(millis)
def test_pattern_and_time(ms: int) -> None:
    ulid = new_ulid(ms)
    assert re.fullmatch(ULID_PATTERN, ulid)
    assert is_ulid(ulid)
    assert time_of(ulid) == ms


@given(millis, millis)
def test_sortable_by_time(a: int, b: int) -> None:
    if a < b:
        assert new_ulid(a) < new_ulid(b)


def test_now_and_random() -> None:
    before = int(time.time() * 1000)
    made = [new_ulid() for _ in range(200)]
    after = int(time.time() * 1000)
    assert all(before <= time_of(u) <= after for u in made)
    assert len(set(made)) == len(made)


@given(st.text(max_size=40))
def test_is_ulid_only_for_the_exact_form(text: str) -> None:
    assert is_ulid(text) == bool(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", text))


def test_rejects_near_misses() -> None:
    good = new_ulid(1_700_000_000_000)
    for bad in (
        good.lower(),
        good[:-1],
        good + "0",
        good[:-1] + "I",
        good[:-1] + "L",
        good[:-1] + "O",
        good[:-1] + "U",
        f" {good[1:]}",
        "",
    ):
        assert not is_ulid(bad), bad
