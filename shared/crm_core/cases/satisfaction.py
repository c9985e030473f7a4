"""Customer satisfaction: the score (1..5) a customer gives a solved case, once.

A rating is one transaction in the case's partition: the rating item (`keys.case_rating`,
created with `attribute_not_exists(PK)`, so a case is rated once whatever races), the case
with its `satisfaction` on the version read, its listing copy (the same case), and the
`CaseRated` outbox event. The case's `updated_at` stays the agents' last change: a rating
does not move a case in the lists, as an SLA alarm's record does not (case_store.py).

Only a case that was solved may be rated: `solved` or `closed` now, or solved once before
(`solved_at`, or reopened since). The satisfaction link (csat_tokens.py) is mailed when a
case is solved, so anything else is a link that should not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crm_core import keys
from crm_core.cases.case_store import CASE_ITEM, indexed_case, listing_copy, to_case
from crm_core.clock import now_iso
from crm_core.errors import ConcurrentChange, Conflict, NotFound
from crm_core.events import cases as events
from crm_core.events.envelope import Origin
from crm_core.events.outbox import outbox_put
from crm_core.records.case import Case, Satisfaction
from crm_core.table import Table, TransactionCancelled, read_modify_write

RATING_ITEM = "case_rating"
RATED_STATUSES = ("solved", "closed")
PRODUCER = "csat"
_RATING_PART = 0  # the rating's Put is the transaction's first part


class AlreadyRated(Conflict):
    """The case has its rating: the first one stays (`satisfaction`)."""

    def __init__(self, case: Case, satisfaction: Satisfaction) -> None:
        super().__init__(
            f"this case was rated before ({satisfaction.score} of 5); a case is rated once"
        )
        self.case = case
        self.satisfaction = satisfaction


class NotRatable(Conflict):
    """The case was never solved: there is nothing to rate yet."""


def may_be_rated(case: Mapping[str, Any]) -> bool:
    return (
        case.get("status") in RATED_STATUSES
        or bool(case.get("solved_at"))
        or int(case.get("reopened") or 0) > 0
    )


class Ratings:
    """The satisfaction of a tenant's cases: read for the link's page, recorded once."""

    def __init__(self, table: Table, clock: Callable[[], str] = now_iso) -> None:
        self.table = table
        self.op = table.op
        self.clock = clock

    def case(self, tenant_id: str, case_id: str, consistent: bool = False) -> Case:
        """The case (its subject and any satisfaction), or NotFound."""
        item = self.table.get(keys.case(tenant_id, case_id), consistent=consistent)
        if item is None or item.get("type") != CASE_ITEM:
            raise NotFound("no such case")
        return to_case(item)

    def rate(
        self,
        tenant_id: str,
        case_id: str,
        score: int,
        comment: str | None,
        origin: Origin | None = None,
    ) -> Case:
        """Record the customer's rating of a solved case; the case as it now is.

        NotFound: no such case (or deleted). NotRatable: never solved. AlreadyRated: the
        first rating stays, whatever this one says."""
        origin = origin or Origin.system(PRODUCER)

        def attempt() -> Case:
            old = self.table.get(keys.case(tenant_id, case_id), consistent=True)
            if old is None or old.get("type") != CASE_ITEM:
                raise NotFound("no such case")
            if old.get("satisfaction"):
                satisfied = Satisfaction.model_validate(old["satisfaction"])
                raise AlreadyRated(to_case(old), satisfied)
            if not may_be_rated(old):
                raise NotRatable("this case is not solved yet: it can be rated once it is")
            at = max(self.clock(), old["updated_at"])
            satisfaction = {"score": score, "rated_at": at}
            if comment is not None:
                satisfaction["comment"] = comment
            new = {**old, "satisfaction": satisfaction, "version": old["version"] + 1}
            case = to_case(new)
            rating = {
                **keys.case_rating(tenant_id, case_id),
                "type": RATING_ITEM,
                "tenant_id": tenant_id,
                "case_id": case_id,
                **satisfaction,
            }
            data = events.CaseRatedData(
                case_id=case_id,
                contact_id=old.get("contact_id"),
                assignee_id=old.get("assignee_id"),
                score=score,
                comment=comment,
                rated_at=at,
            )
            event = events.CaseRated.create(tenant_id, origin, data, at)
            writes = [
                self.op.put(rating, "attribute_not_exists(PK)"),
                self.op.update_changed(
                    indexed_case(old), indexed_case(new), "version = :v", v=old["version"]
                ),
                self.op.put(listing_copy(new)),
                outbox_put(self.op, keys.case(tenant_id, case_id), event),
            ]
            try:
                self.table.transact(writes)
            except TransactionCancelled as cancelled:
                first = cancelled.items[_RATING_PART]
                if cancelled.failed(_RATING_PART) and first is not None:
                    raise AlreadyRated(to_case(old), _satisfaction_of(first)) from None
                # The case changed meanwhile (or a rating is being written): read again.
                raise ConcurrentChange("the case changed meanwhile") from None
            return case

        return read_modify_write(attempt, "case")


def _satisfaction_of(rating: Mapping[str, Any]) -> Satisfaction:
    return Satisfaction.model_validate(
        {k: rating.get(k) for k in ("score", "comment", "rated_at") if rating.get(k) is not None}
    )
