"""How one deal counts in its pipeline's board and forecast, and the changes a deal's move
makes to them: pure functions, written by the deal store in the deal's own transaction.

The forecast keeps, per pipeline and month of close date, cells keyed
`<owner>|<stage>|<currency>`, each a count and an exact sum (never rounded): an open deal
counts in its own currency (converted when read, at the rates of the moment read); a closed
one in the base currency at the rate of its closing. Probabilities and forecast categories
are not in the cells: they come from the pipeline as it stood at the moment read, so
re-weighting a stage re-weights the forecast from then on and never rewrites the past.
docs/decisions.md, 80.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crm_core.currencies import exact, to_base

OWNERLESS = "-"
Cells = dict[str, dict[str, Any]]
# A month's cells are stored as one compressed binary attribute: a month holds a cell per
# owner, stage and currency with deals closing then, and as a map (about 60 bytes a cell)
# 400 KB would hold some 6,000; compressed (owner ids repeat) about four times that, and one
# binary attribute costs DynamoDB (and the local endpoint) far less to read than a map of
# maps. A month past MAX_CELLS_BYTES refuses the change, clearly, rather than fail on write.
CELLS_ATTRIBUTE = "cells_z"
MAX_CELLS_BYTES = 350 * 1024


class MonthFull(ValueError):
    """The month's cells would not fit in one item."""


def encode_cells(cells: Cells) -> bytes:
    plain = {k: [int(v["n"]), str(v["a"])] for k, v in sorted(cells.items())}
    packed = zlib.compress(json.dumps(plain, separators=(",", ":")).encode(), 6)
    if len(packed) > MAX_CELLS_BYTES:
        raise MonthFull(f"{len(cells)} owner, stage and currency combinations in one month")
    return packed


def decode_cells(item: Mapping[str, Any] | None) -> Cells:
    """The cells of a stored month (or snapshot); none for a month without one."""
    if not item or CELLS_ATTRIBUTE not in item:
        return {}
    plain = json.loads(zlib.decompress(item[CELLS_ATTRIBUTE]))
    return {k: {"n": n, "a": Decimal(a)} for k, (n, a) in plain.items()}


def month_of(close_date: str) -> str:
    return close_date[:7]


def cell_key(owner_id: str | None, stage_id: str, currency: str) -> str:
    return f"{owner_id or OWNERLESS}|{stage_id}|{currency}"


def split_cell(key: str) -> tuple[str | None, str, str]:
    owner, stage, currency = key.split("|")
    return (None if owner == OWNERLESS else owner), stage, currency


def closing_amount(deal: Mapping[str, Any]) -> Decimal:
    """A closed deal's amount in the base currency of its closing, exact."""
    closing = deal["closing"]
    rate = Decimal(closing["rate"])
    return to_base(
        Decimal(deal["amount"]), deal["currency"], closing["base"], {deal["currency"]: rate}
    )


@dataclass(frozen=True)
class Standing:
    """Where one deal counts, and for how much."""

    month: str
    cell: str
    amount: Decimal
    # The board: per stage and deal currency; closed deals also in the base of closing.
    board: tuple[tuple[str, Decimal], ...]


def standing(deal: Mapping[str, Any]) -> Standing:
    stage, currency, amount = deal["stage_id"], deal["currency"], Decimal(deal["amount"])
    board: list[tuple[str, Decimal]] = [
        (f"n|{stage}|{currency}", Decimal(1)),
        (f"a|{stage}|{currency}", amount),
    ]
    if deal["status"] == "open":
        cell = cell_key(deal.get("owner_id"), stage, currency)
        counted = amount
    else:
        base = deal["closing"]["base"]
        counted = closing_amount(deal)
        cell = cell_key(deal.get("owner_id"), stage, base)
        board.append((f"b|{stage}|{base}", counted))
    return Standing(month_of(deal["close_date"]), cell, counted, tuple(board))


@dataclass(frozen=True)
class Moves:
    """What one change of a deal does to its pipeline's forecast months and board."""

    months: dict[str, dict[str, tuple[int, Decimal]]]
    board: dict[str, Decimal]

    @property
    def touches_board(self) -> bool:
        return any(v != 0 for v in self.board.values())


def moves(old: Standing | None, new: Standing | None) -> Moves:
    with exact():
        return _moves(old, new)


def _moves(old: Standing | None, new: Standing | None) -> Moves:
    months: dict[str, dict[str, tuple[int, Decimal]]] = {}
    board: dict[str, Decimal] = {}
    for standing_, sign in ((old, -1), (new, 1)):
        if standing_ is None:
            continue
        cells = months.setdefault(standing_.month, {})
        count, amount = cells.get(standing_.cell, (0, Decimal(0)))
        cells[standing_.cell] = (count + sign, amount + sign * standing_.amount)
        for name, value in standing_.board:
            board[name] = board.get(name, Decimal(0)) + sign * value
    # A change that leaves a month as it was (a rename) need not touch it.
    months = {m: cells for m, cells in months.items() if any(n or a for n, a in cells.values())}
    return Moves(months, {k: v for k, v in board.items() if v != 0})


def apply(
    cells: Mapping[str, Mapping[str, Any]], deltas: Mapping[str, tuple[int, Decimal]]
) -> Cells:
    """`cells` after `deltas`; a cell that falls to nothing is dropped."""
    with exact():
        return _apply(cells, deltas)


def _apply(
    cells: Mapping[str, Mapping[str, Any]], deltas: Mapping[str, tuple[int, Decimal]]
) -> Cells:
    result: Cells = {k: dict(v) for k, v in cells.items()}
    for key, (count, amount) in deltas.items():
        old = result.get(key, {"n": 0, "a": Decimal(0)})
        n, a = int(old["n"]) + count, Decimal(old["a"]) + amount
        if n == 0 and a == 0:
            result.pop(key, None)
        else:
            result[key] = {"n": n, "a": a}
    return result
