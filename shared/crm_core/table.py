"""The single table: reads, paged Queries and transactions, within DynamoDB's real limits.

moto accepts more than DynamoDB does, so the limits are enforced here, in our own code.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from crm_core.dynamo import Item, from_item, key_attrs, to_attr, to_item
from crm_core.errors import BadRequest, ConcurrentChange, TooManyRequests
from crm_core.pagination import ListQuery

MAX_TRANSACTION_ITEMS = 100
MAX_BATCH_GET_KEYS = 100
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

    def delete(
        self, key: Mapping[str, str], condition: str | None = None, **values: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"TableName": self.table_name, "Key": key_attrs(key)}
        _add_condition(body, condition, values)
        return {"Delete": body}

    def update(
        self, key: Mapping[str, str], expression: str, condition: str | None = None, **values: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": key_attrs(key),
            "UpdateExpression": expression,
        }
        _add_condition(body, condition, values)
        return {"Update": body}

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

    def get(self, key: Mapping[str, str], consistent: bool = True) -> Item | None:
        response = self._call(
            "get_item", TableName=self.name, Key=key_attrs(key), ConsistentRead=consistent
        )
        raw: dict[str, Any] | None = response.get("Item")
        return from_item(raw) if raw else None

    def batch_get(self, keys: Sequence[Mapping[str, str]], consistent: bool = False) -> list[Item]:
        """Items for the keys, in the order of the keys; missing ones are left out."""
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
                    item = from_item(raw)
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
    ) -> Page:
        pk_name, sk_name = listing.key_names[0], listing.key_names[1]
        condition = "#pk = :pk"
        names = {"#pk": pk_name}
        values: dict[str, Any] = {":pk": {"S": listing.partition}}
        if sort_prefix:
            condition += " AND begins_with(#sk, :prefix)"
            names["#sk"] = sk_name
            values[":prefix"] = {"S": sort_prefix}
        params: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "Limit": limit,
            "ScanIndexForward": not newest_first,
        }
        if listing.index:
            params["IndexName"] = listing.index
        start = listing.decode(cursor)
        if start and sort_prefix and not start[sk_name]["S"].startswith(sort_prefix):
            # DynamoDB refuses a start key outside the key condition with a ValidationException
            # (a 500); a cursor of another prefix, or a forged one, is the client's 400.
            raise BadRequest("the cursor is not valid for this list")
        if start:
            params["ExclusiveStartKey"] = start
        response = self._call("query", **params)
        items = [from_item(raw) for raw in response.get("Items", [])]
        return Page(items=items, next_cursor=listing.encode(response.get("LastEvaluatedKey")))

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
