"""Contacts of a stage, highest score first, optionally at least a score: exact at any moment.

A stage's contacts are spread over its ranks (GSI2 partitions of one half-life and one fit,
`state.py`). Within a rank the stored engagement orders contacts by score at every moment,
and "score >= y" is a key range (engagement >= y - fit, `decay.threshold_key`). A page is
one GetItem of the tenant's ranks and one Query per rank (each reads at most a page), merged
by the score at one moment, `at`, that the cursor carries: the pages of one listing agree
with each other even while time passes and scores decay.

The cursor holds, per rank, the sort key of the last contact shown (the next Query's upper
bound, inclusive, that contact skipped) or that the rank is done. It is bound to the list,
stage and minimum, and steers only the bounds of Queries inside the caller's own partitions.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm_core import keys, strict_json
from crm_core.dynamo import Item
from crm_core.errors import BadRequest
from crm_core.pagination import ListQuery
from crm_core.scores import decay
from crm_core.scores.state import parse_rank, ranks_in
from crm_core.table import Page, Table

LIST_NAME = "contacts-by-score"
# Above every GSI2 sort key (they start with N, O or P).
_TOP = "Z"
_POSITION = re.compile(r"^[NOP][0-9]{17}#[0-9A-HJKMNP-TV-Z]{26}$")
_RANK = re.compile(r"^[0-9.e+-]{1,24}:-?[0-9]{1,7}$")
# A listing over more ranks than this is refused rather than answered slowly.
MAX_RANKS = 200
_MAX_CURSOR_CHARS = 16_384
# The moments a cursor may carry (2001 to 2286): anything else was not made by us.
_EARLIEST, _LATEST = 1e9, 1e10
# Scores are shown to 2 decimals: one shown as 40.0 is at least 40.
_SHOWN = 0.005


@dataclass
class _Cursor:
    at: float
    positions: dict[str, str | None]  # rank -> upper bound (None: from the top)
    done: set[str]


def contacts_by_score(
    table: Table,
    tenant_id: str,
    stage: str,
    limit: int,
    cursor: str | None,
    min_score: float | None,
    clock: Callable[[], float],
) -> Page:
    if cursor is None:
        registry = table.get(keys.scoring_ranks(tenant_id)) or {}
        ranks = sorted(ranks_in(registry))
        if len(ranks) > MAX_RANKS:
            raise BadRequest(f"the model has made {len(ranks)} score ranks; at most {MAX_RANKS}")
        state = _Cursor(at=clock(), positions=dict.fromkeys(ranks), done=set())
    else:
        state = _decode(cursor, tenant_id, stage, min_score)
    candidates: list[tuple[float, str, Item]] = []
    complete: dict[str, bool] = {}
    for rank, position in state.positions.items():
        if rank in state.done:
            continue
        half_life, fit = parse_rank(rank)
        low = lowest_key(min_score, half_life, fit, state.at)
        if low is None:
            state.done.add(rank)
            continue
        listing = ListQuery(LIST_NAME, keys.contacts_by_stage(tenant_id, stage, rank), "GSI2")
        high = position or _TOP
        if high < low:
            state.done.add(rank)
            continue
        page = table.query(listing, limit + 1, None, sort_between=(low, high))
        items = [i for i in page.items if i.get("GSI2SK") != position]
        complete[rank] = page.next_cursor is None
        for item in items:
            candidates.append((_score_by_key(item, half_life, fit, state.at), rank, item))
    # Within a rank this is the index's order exactly (equal keys, equal scores; then the
    # key itself), so the next page's bound, the last key shown, never skips a contact.
    candidates.sort(key=lambda c: (c[0], c[2]["GSI2SK"]), reverse=True)
    shown = candidates[:limit]
    if min_score is not None:
        # The key range is exact to the 9th decimal of a logarithm; the score decides.
        shown = [c for c in shown if c[0] >= min_score - _SHOWN]
    taken: dict[str, str] = {}
    for _, rank, item in candidates[:limit]:
        taken[rank] = item["GSI2SK"]
    for rank, was_complete in complete.items():
        left = [c for c in candidates[limit:] if c[1] == rank]
        if was_complete and not left:
            state.done.add(rank)
        elif rank in taken:
            state.positions[rank] = taken[rank]
    more = any(rank not in state.done for rank in state.positions)
    next_cursor = _encode(state, tenant_id, stage, min_score) if more else None
    return Page(items=[c[2] for c in shown], next_cursor=next_cursor)


def _score_by_key(item: Item, half_life: float, fit: int, at: float) -> float:
    """The contact's score at `at` as its rank and sort key say (the key's engagement)."""
    engagement = decay.from_sort_key(item["GSI2SK"])
    if engagement.is_zero:
        return float(fit)
    return fit + decay.value_at(engagement, at, half_life)


def lowest_key(min_score: float | None, half_life: float, fit: int, at: float) -> str | None:
    """The lowest sort key of the rank that can reach `min_score` at `at` (None: none can)."""
    if min_score is None:
        return "A"  # below every key
    floor = min_score - _SHOWN
    if half_life == 0:  # no engagement: the score is the fit
        return "A" if fit >= floor else None
    # The engagement that reaches the floor with this fit, less a shade: the filter above
    # settles the last digits.
    points = floor - fit
    return decay.threshold_key(points - 1e-6 * max(1.0, abs(points)), at, half_life)


# The cursor --------------------------------------------------------------------------------
def _encode(state: _Cursor, tenant_id: str, stage: str, min_score: float | None) -> str:
    payload = {
        "l": LIST_NAME,
        "t": tenant_id,
        "s": stage,
        "m": min_score,
        "at": state.at,
        "r": {rank: state.positions[rank] for rank in state.positions if rank not in state.done},
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, tenant_id: str, stage: str, min_score: float | None) -> _Cursor:
    invalid = BadRequest("the cursor is not valid for this list")
    if not cursor or len(cursor) > _MAX_CURSOR_CHARS:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload: Any = strict_json.loads(raw.decode("utf-8"), "the cursor")
    except (binascii.Error, ValueError, UnicodeDecodeError):  # JsonRefused is a ValueError
        raise invalid from None
    if (
        not isinstance(payload, dict)
        or payload.get("l") != LIST_NAME
        or payload.get("t") != tenant_id
        or payload.get("s") != stage
        or payload.get("m") != min_score
        or not isinstance(payload.get("at"), int | float)
        or isinstance(payload.get("at"), bool)
        or not _EARLIEST <= payload["at"] <= _LATEST
        or not isinstance(payload.get("r"), dict)
        or len(payload["r"]) > MAX_RANKS
    ):
        raise invalid
    positions: dict[str, str | None] = {}
    for rank, position in payload["r"].items():
        if not isinstance(rank, str) or not _RANK.match(rank):
            raise invalid
        try:
            half_life, _ = parse_rank(rank)
        except ValueError:
            raise invalid from None
        if half_life != 0 and not decay.MIN_HALF_LIFE <= half_life <= decay.MAX_HALF_LIFE:
            raise invalid
        if position is not None and (
            not isinstance(position, str) or not _POSITION.match(position)
        ):
            raise invalid
        positions[rank] = position
    return _Cursor(at=float(payload["at"]), positions=positions, done=set())
