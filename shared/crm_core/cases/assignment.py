"""Which member of a queue gets a new case (pure). The queue's item keeps a cursor and
each member's count of unsolved cases; the case's transaction moves the cursor under a
condition on the queue's assignment count, so two cases created at once never both see
the same cursor: one of them reads the queue again (case_store.py).

- round robin: the members in turn, from the cursor;
- least open: the member with the fewest unsolved cases; ties go to the first in turn from
  the cursor, so equal members share the work instead of the first one taking all;
- manual: nobody (an agent assigns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def choose(
    policy: str, members: Sequence[str], cursor: int, open_cases: Mapping[str, int]
) -> tuple[str | None, int]:
    """The member to assign and the cursor after it (`cursor` unchanged for nobody)."""
    if policy == "manual" or not members:
        return None, cursor
    count = len(members)
    in_turn = [(cursor + step) % count for step in range(count)]
    if policy == "round_robin":
        chosen = in_turn[0]
    else:
        chosen = min(in_turn, key=lambda i: (open_cases.get(members[i], 0), in_turn.index(i)))
    return members[chosen], chosen + 1
