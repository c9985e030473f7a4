"""What one record adds to the reports, and what changes when the record does (pure).

A record (an activity, a deal, a case...) contributes counters to buckets: a bucket is a
report, a granularity, a period and the values of the report's dimensions (owner, type,
stage...). The aggregator keeps, per record, the contribution it applied last; an event
carrying the record's new state gives its new contribution, and the aggregates move by the
difference (`diff`): a moved deal leaves one bucket and enters another, a deleted record
takes back all it added. Applying differences of whole states makes the result independent
of how often and in which order the events came, as long as the last state applied is the
record's latest (aggregates.py checks that).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Number = int | Decimal


@dataclass(frozen=True, order=True)
class Bucket:
    report: str
    granularity: str
    period: str
    dims: tuple[tuple[str, str], ...]  # (name, value), in the report's order

    def dim_values(self) -> dict[str, str]:
        return dict(self.dims)


Contribution = dict[Bucket, dict[str, Number]]


def contribution(entries: Iterable[tuple[Bucket, Mapping[str, Number]]]) -> Contribution:
    """A contribution of (bucket, counters) pairs, counters of one bucket summed."""
    made: Contribution = {}
    for bucket, counters in entries:
        held = made.setdefault(bucket, {})
        for name, value in counters.items():
            held[name] = held.get(name, 0) + value
    return made


def diff(old: Contribution, new: Contribution) -> Contribution:
    """Per bucket, the counters to ADD to go from `old` to `new`; zeros are left out."""
    moved: Contribution = {}
    for bucket in sorted(set(old) | set(new)):
        before, after = old.get(bucket, {}), new.get(bucket, {})
        deltas = {
            name: after.get(name, 0) - before.get(name, 0)
            for name in sorted(set(before) | set(after))
        }
        deltas = {name: delta for name, delta in deltas.items() if delta != 0}
        if deltas:
            moved[bucket] = deltas
    return moved


def to_stored(made: Contribution) -> list[dict[str, Any]]:
    """The contribution as the record's source item keeps it."""
    return [
        {
            "r": bucket.report,
            "g": bucket.granularity,
            "p": bucket.period,
            "d": [list(pair) for pair in bucket.dims],
            "c": dict(counters),
        }
        for bucket, counters in sorted(made.items())
    ]


def from_stored(stored: Iterable[Mapping[str, Any]]) -> Contribution:
    return {
        Bucket(
            str(entry["r"]),
            str(entry["g"]),
            str(entry["p"]),
            tuple((str(name), str(value)) for name, value in entry["d"]),
        ): {str(name): _number(value) for name, value in entry["c"].items()}
        for entry in stored
    }


def _number(value: Any) -> Number:
    if isinstance(value, int):
        return value
    as_decimal = Decimal(str(value))
    return int(as_decimal) if as_decimal == as_decimal.to_integral_value() else as_decimal
