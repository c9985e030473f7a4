"""A case's statuses and the moves a help desk allows between them (pure).

    new ──> open <──> pending (waiting on the customer)
     │       ^ │ <──> on_hold (waiting on a third party)
     │       │ v
     └────> solved ──> closed (final)

Any unsolved status may go to any other unsolved one, and to solved; a solved case reopens
(to open, pending or on hold: an agent's choice, or a customer's reply) or closes; a closed
case never changes again (a customer writing to it opens a follow-up case). No case goes
back to `new`: it means nobody has worked it yet.
"""

from __future__ import annotations

from typing import Literal

Status = Literal["new", "open", "pending", "on_hold", "solved", "closed"]
STATUSES: tuple[Status, ...] = ("new", "open", "pending", "on_hold", "solved", "closed")
UNSOLVED: frozenset[str] = frozenset({"new", "open", "pending", "on_hold"})
# While waiting on someone else, SLA time stops (PRODUCT.md, "Support cases").
PAUSED: frozenset[str] = frozenset({"pending", "on_hold"})
CLOSED_FOR_GOOD = "closed"


def allowed(old: str, new: str) -> bool:
    """Whether a case may move from `old` to `new` (staying put is not a move)."""
    if old in (new, CLOSED_FOR_GOOD) or new == "new":
        return False
    if old in UNSOLVED:
        return new != CLOSED_FOR_GOOD
    return old == "solved"  # reopen to any unsolved status, or close


def after_customer_reply(status: str) -> str:
    """The status a customer's message leaves: an answer to a waiting, held or solved case
    puts it back in the agents' hands; a new case stays new. (Closed: a follow-up case.)"""
    return status if status in ("new", "open", CLOSED_FOR_GOOD) else "open"


def after_agent_reply(status: str, requested: str | None) -> str:
    """The status an agent's public reply leaves: the one the agent chose with it, else a
    new case is now open (someone has worked it) and any other stays as it is."""
    if requested is not None:
        return requested
    return "open" if status == "new" else status


def moves_of(old: str) -> list[str]:
    """The statuses a case in `old` may move to (for the problem a refused move answers)."""
    return [s for s in STATUSES if allowed(old, s)]
