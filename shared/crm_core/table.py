"""The single table: reads, paged Queries and transactions, within DynamoDB's real limits.

moto accepts more than DynamoDB does, so the limits are enforced here, in our own code.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from crm_core.dynamo import Item, from_item, key_attrs, to_attr, to_item
from crm_core.errors import BadRequest, ConcurrentChange, TooManyRequests
from crm_core.keys import INDEX_KEYS
from crm_core.pagination import ListQuery

MAX_TRANSACTION_ITEMS = 100
MAX_BATCH_GET_KEYS = 100
MAX_BATCH_WRITE_ITEMS = 25
MAX_ITEM_BYTES = 400 * 1024
_CONFLICT_ATTEMPTS = 4
_THROTTLING = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}


class TransactionCancelled(Exception):
    """A transaction was refused; `reasons[i]` is the cancellation code of operation i."""

    def __init__(self, reasons: list[str], items: list[Item | None]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons
        self.items = items

    def failed(self, index: int) -> bool:
        return self.reasons[index] == "ConditionalCheckFailed"


@dataclass(frozen=True)
class Filter:
    """A FilterExpression for `Table.query`, and how many items one page may read for it."""

    expression: str
    names: Mapping[str, str]
    values: Mapping[str, Any]
    read_limit: int = 200


def _within(sort_key: str, prefix: str | None, between: tuple[str, str] | None) -> bool:
    if prefix and not sort_key.startswith(prefix):
        return False
    return not between or between[0] <= sort_key <= between[1]


@dataclass(frozen=True)
class Page:
    items: list[Item]
    next_cursor: str | None


class Op:
    """Builders for TransactWriteItems entries."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def put(
        self, item: Mapping[str, Any], condition: str | None = None, **values: Any
    ) -> dict[str, Any]:
        serialized = to_item(item)
        size = _approx_item_bytes(serialized)
        if size > MAX_ITEM_BYTES:
            raise ValueError(f"item of {size} bytes exceeds DynamoDB's 400 KB limit")
        body: dict[str, Any] = {"TableName": self.table_name, "Item": serialized}
        _add_condition(body, condition, values)
        body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Put": body}

    @staticmethod
    def item_bytes(item: Mapping[str, Any]) -> int:
        """About how many bytes DynamoDB counts for `item` (generously)."""
        return _approx_item_bytes(to_item(item))

    def delete(
        self, key: Mapping[str, str], condition: str | None = None, **values: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"TableName": self.table_name, "Key": key_attrs(key)}
        _add_condition(body, condition, values)
        return {"Delete": body}

    def update(
        self,
        key: Mapping[str, str],
        expression: str,
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        **values: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": key_attrs(key),
            "UpdateExpression": expression,
        }
        if names:
            body["ExpressionAttributeNames"] = dict(names)
        _add_condition(body, condition, values)
        return {"Update": body}

    def update_changed(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        condition: str | None = None,
        **values: Any,
    ) -> dict[str, Any]:
        """An Update that writes only what differs between `old` and `new` (same key): the
        attributes other writers maintain on the item (an activity's counts on its
        contact, say) are left as they are, where a Put of `new` would erase their changes."""
        key = {"PK": new["PK"], "SK": new["SK"]}
        changed = [k for k, v in new.items() if k not in key and v is not None and old.get(k) != v]
        removed = [
            k for k, v in old.items() if k not in key and new.get(k) is None and v is not None
        ]
        names = {f"#a{i}": name for i, name in enumerate(changed + removed)}
        sets = [f"#a{i} = :a{i}" for i in range(len(changed))]
        removes = [f"#a{len(changed) + i}" for i in range(len(removed))]
        expression = " ".join(
            part
            for part in (
                "SET " + ", ".join(sets) if sets else "",
                "REMOVE " + ", ".join(removes) if removes else "",
            )
            if part
        )
        if not expression:
            raise ValueError("update_changed: nothing differs")
        new_values = {f"a{i}": new[name] for i, name in enumerate(changed)}
        return self.update(key, expression, condition, names, **new_values, **values)

    def check(self, key: Mapping[str, str], condition: str, **values: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"TableName": self.table_name, "Key": key_attrs(key)}
        _add_condition(body, condition, values)
        return {"ConditionCheck": body}


def _add_condition(body: dict[str, Any], condition: str | None, values: Mapping[str, Any]) -> None:
    if values:
        body["ExpressionAttributeValues"] = {f":{k}": to_attr(v) for k, v in values.items()}
    if condition:
        body["ConditionExpression"] = condition


def _approx_item_bytes(item: Mapping[str, Any]) -> int:
    # Attribute names plus a generous measure of values: close enough to refuse early.
    return len(str(item).encode()) + sum(len(k) for k in item)


class Table:
    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self.op = Op(name)

    def get(
        self, key: Mapping[str, str], consistent: bool = True, exact: bool = False
    ) -> Item | None:
        """One item; `exact` reads fractional numbers as Decimals (dynamo.from_attr)."""
        response = self._call(
            "get_item", TableName=self.name, Key=key_attrs(key), ConsistentRead=consistent
        )
        raw: dict[str, Any] | None = response.get("Item")
        return from_item(raw, exact) if raw else None

    def batch_get(
        self,
        keys: Sequence[Mapping[str, str]],
        consistent: bool = False,
        exact: bool | Callable[[Mapping[str, str]], bool] = False,
    ) -> list[Item]:
        """Items for the keys, in the order of the keys; missing ones are left out. `exact`
        reads fractional numbers as Decimals (`get`): in every item, or in the items whose
        keys it accepts (sums of money beside an item whose numbers are floats)."""
        found: dict[tuple[str, str], Item] = {}
        for start in range(0, len(keys), MAX_BATCH_GET_KEYS):
            pending: list[Any] = [key_attrs(k) for k in keys[start : start + MAX_BATCH_GET_KEYS]]
            attempt = 0
            while pending:
                response = self._call(
                    "batch_get_item",
                    RequestItems={self.name: {"Keys": pending, "ConsistentRead": consistent}},
                )
                for raw in response.get("Responses", {}).get(self.name, []):
                    key = {"PK": raw["PK"]["S"], "SK": raw["SK"]["S"]}
                    item = from_item(raw, exact(key) if callable(exact) else exact)
                    found[(item["PK"], item["SK"])] = item
                pending = response.get("UnprocessedKeys", {}).get(self.name, {}).get("Keys", [])
                attempt += 1
                if pending:
                    backoff(attempt)
        return [found[(k["PK"], k["SK"])] for k in keys if (k["PK"], k["SK"]) in found]

    def query(
        self,
        listing: ListQuery,
        limit: int,
        cursor: str | None,
        *,
        newest_first: bool = True,
        sort_prefix: str | None = None,
        sort_between: tuple[str, str] | None = None,
        where: Filter | None = None,
        consistent: bool = False,
        exact: bool = False,
    ) -> Page:
        """One page of `listing`: one Query, whatever the partition holds.

        `sort_between` bounds the sort key (both ends included); `where` filters items
        after the key condition, reading at most `where.read_limit` of them, so a page may
        hold fewer than `limit` items and still have a next cursor. `consistent` reads the
        table strongly consistently (an index cannot be).
        """
        pk_name, sk_name = listing.key_names[0], listing.key_names[1]
        condition = "#pk = :pk"
        names = {"#pk": pk_name}
        values: dict[str, Any] = {":pk": {"S": listing.partition}}
        if sort_prefix:
            condition += " AND begins_with(#sk, :prefix)"
            names["#sk"] = sk_name
            values[":prefix"] = {"S": sort_prefix}
        if sort_between:
            condition += " AND #sk BETWEEN :low AND :high"
            names["#sk"] = sk_name
            values[":low"], values[":high"] = {"S": sort_between[0]}, {"S": sort_between[1]}
        params: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "Limit": limit,
            "ScanIndexForward": not newest_first,
        }
        if where is not None:
            params["FilterExpression"] = where.expression
            names.update(where.names)
            values.update({f":{k}": to_attr(v) for k, v in where.values.items()})
            params["Limit"] = max(limit, where.read_limit)
        if listing.index:
            params["IndexName"] = listing.index
        elif consistent:
            params["ConsistentRead"] = True
        start = listing.decode(cursor)
        if start and not _within(start[sk_name]["S"], sort_prefix, sort_between):
            # DynamoDB refuses a start key outside the key condition with a ValidationException
            # (a 500); a cursor of another prefix or range, or a forged one, is the client's 400.
            raise BadRequest("the cursor is not valid for this list")
        if start:
            params["ExclusiveStartKey"] = start
        response = self._call("query", **params)
        items = [from_item(raw, exact) for raw in response.get("Items", [])]
        last_key = response.get("LastEvaluatedKey")
        if len(items) > limit:
            # The filter let more through than a page holds: the page ends at its last item.
            items = items[:limit]
            last_key = {name: {"S": items[-1][name]} for name in listing.key_names}
        return Page(items=items, next_cursor=listing.encode(last_key))

    def query_all(
        self, index: str | None, partition: str, *, sort_below: str, consistent: bool = False
    ) -> Iterator[Item]:
        """Every item of a partition whose sort key is below `sort_below`, page after page.
        For jobs that must see them all (the overdue check), never for request paths."""
        pk_name, sk_name = INDEX_KEYS[index]
        params: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "#pk = :pk AND #sk < :below",
            "ExpressionAttributeNames": {"#pk": pk_name, "#sk": sk_name},
            "ExpressionAttributeValues": {":pk": {"S": partition}, ":below": {"S": sort_below}},
        }
        if index:
            params["IndexName"] = index
        else:
            params["ConsistentRead"] = consistent
        while True:
            response = self._call("query", **params)
            yield from (from_item(raw) for raw in response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                return
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def batch_delete(self, item_keys: Sequence[Mapping[str, str]]) -> None:
        """Delete items, 25 per BatchWriteItem, retrying what DynamoDB leaves unprocessed."""
        for start in range(0, len(item_keys), MAX_BATCH_WRITE_ITEMS):
            pending: list[Any] = [
                {"DeleteRequest": {"Key": key_attrs(k)}}
                for k in item_keys[start : start + MAX_BATCH_WRITE_ITEMS]
            ]
            attempt = 0
            while pending:
                response = self._call("batch_write_item", RequestItems={self.name: pending})
                pending = response.get("UnprocessedItems", {}).get(self.name, [])
                attempt += 1
                if pending:
                    backoff(attempt)

    def update(self, operation: dict[str, Any]) -> None:
        """One Update built by `op.update`, on its own (outside a transaction)."""
        self._call("update_item", **operation["Update"])

    def add(self, key: Mapping[str, str], attribute: str, amount: int, **set_too: Any) -> int:
        """Add `amount` to a counter (creating the item), set the attributes in `set_too`, and
        return the counter's new value: one UpdateItem."""
        names = {"#n": attribute, **{f"#a{i}": name for i, name in enumerate(set_too)}}
        values = {
            ":n": to_attr(amount),
            **{f":a{i}": to_attr(v) for i, v in enumerate(set_too.values())},
        }
        sets = ", ".join(f"#a{i} = :a{i}" for i in range(len(set_too)))
        response = self._call(
            "update_item",
            TableName=self.name,
            Key=key_attrs(key),
            UpdateExpression="ADD #n :n" + (f" SET {sets}" if sets else ""),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_NEW",
        )
        return int(from_item(response["Attributes"])[attribute])

    def transact(self, operations: Sequence[dict[str, Any]]) -> None:
        if not operations:
            return
        if len(operations) > MAX_TRANSACTION_ITEMS:
            raise ValueError(f"{len(operations)} operations exceed a transaction's 100")
        for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
            try:
                self._call("transact_write_items", TransactItems=list(operations))
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                raw_reasons: list[dict[str, Any]] = exc.response.get("CancellationReasons") or []  # type: ignore[assignment]
                reasons = [r.get("Code", "None") for r in raw_reasons]
                items = [from_item(r["Item"]) if r.get("Item") else None for r in raw_reasons]
                # A conflict with a concurrent transaction says nothing about our conditions:
                # try again. Anything else is an answer.
                if "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons:
                    if attempt < _CONFLICT_ATTEMPTS:
                        backoff(attempt)
                        continue
                    raise TooManyRequests("the record is busy; try again") from exc
                raise TransactionCancelled(reasons, items) from exc

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = getattr(self.client, operation)(**params)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _THROTTLING:
                raise TooManyRequests("the CRM is busy; try again shortly") from exc
            raise
        return result


# N writers racing on one record may each need up to N attempts: enough for a busy
# record, with backoff, well within an API request's time.
_OPTIMISTIC_ATTEMPTS = 8
T = TypeVar("T")


def read_modify_write(attempt_once: Callable[[], T], what: str) -> T:
    """Run a versioned read-modify-write (`attempt_once` reads, then writes on `version`)
    again on fresh data whenever a concurrent write wins.

    A stale If-Match still ends as a 412: the fresh read finds another version. Without
    If-Match the client set no precondition, so only a record that keeps changing is a 429.
    """
    for attempt in range(1, _OPTIMISTIC_ATTEMPTS + 1):
        try:
            return attempt_once()
        except ConcurrentChange:
            if attempt == _OPTIMISTIC_ATTEMPTS:
                raise TooManyRequests(f"the {what} is changing fast; try again") from None
            backoff(attempt)
    raise AssertionError("unreachable")


def backoff(attempt: int) -> None:
    """Sleep a random while, longer with each attempt, so that retries of racing writers
    spread out instead of colliding again."""
    time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter, not security
