"""The local AWS endpoint: a moto server in this process, with DynamoDB made atomic.

moto runs a transaction as check-then-write on a copy of the table, and a failed one
restores that copy over the whole table; two requests at once can then both pass a
condition the other breaks, or erase each other's writes. DynamoDB isolates every request,
so here each DynamoDB request holds one lock (docs/decisions.md, 16). Races between a
function's separate requests (read, then conditional write) stay as open as in AWS. A
cancelled transaction also leaves no record in the table's stream, as in DynamoDB (moto's
rollback left the stream's readers on a shard that no longer receives records).

moto's StartReplay also replays every archived event to every rule of the bus; EventBridge
replays only the events whose time is in [EventStartTime, EventEndTime), and only to the
rules in `Destination.FilterArns` when it names any. `ReplayWindow` makes moto do the same,
so `crm events replay --archive` behaves locally as it does against a deployed stage.
"""

from __future__ import annotations

import bisect
import functools
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.topology import ACCOUNT_ID, REGION

_READ_ACTIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "TransactGetItems",
        "DescribeTable",
        "ListTables",
        "DescribeTimeToLive",
        "DescribeContinuousBackups",
        "ListTagsOfResource",
    }
)


# Writes that name their items' keys: PartitionQueries moves just those items.
_KEYED_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)


class DynamoDbIsolation:
    """One DynamoDB request at a time, and a count of the requests that may have written."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writes = 0
        self._original: Callable[..., Any] | None = None
        self._original_transact: Callable[..., Any] | None = None

    def install(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.responses import DynamoHandler

        if self._original is not None:
            return
        original = DynamoHandler.call_action
        isolation = self

        def isolated(handler: Any) -> Any:
            with isolation.lock:
                target = handler.headers.get("X-Amz-Target", "") if handler.headers else ""
                if target.rsplit(".", 1)[-1] not in _READ_ACTIONS:
                    isolation.writes += 1
                return original(handler)

        self._original = original
        DynamoHandler.call_action = isolated  # type: ignore[method-assign]
        self._original_transact = DynamoDBBackend.transact_write_items
        DynamoDBBackend.transact_write_items = _keeping_the_stream(  # type: ignore[method-assign]
            one_backup_per_transaction(self._original_transact)
        )

    def table_lines(self, table_name: str) -> list[str]:
        """Every item of the table as one line of DynamoDB JSON each (what a Scan returns),
        read from moto in this process while holding the lock: one pass over the items.

        A paged Scan through the endpoint re-sorts and re-walks the whole table for each
        1 MB page; 30,000 items took 31 s that way, with every function's DynamoDB request
        waiting on the lock meanwhile. The lines are written under the lock too, since moto
        changes an item's values in place."""
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.utilities import DynamoJsonEncoder

        with self.lock:
            table = dynamodb_backends[ACCOUNT_ID][REGION].get_table(table_name)
            items: list[Any] = [
                item
                for partition in table.items.values()
                for item in (partition.values() if table.range_key_attr else [partition])
            ]
            return [
                json.dumps(item.to_json()["Attributes"], sort_keys=True, cls=DynamoJsonEncoder)
                for item in items
            ]

    def uninstall(self) -> None:
        from moto.dynamodb.responses import DynamoHandler

        if self._original is not None:
            DynamoHandler.call_action = self._original  # type: ignore[method-assign]
            self._original = None
        if self._original_transact is not None:
            from moto.dynamodb.models import DynamoDBBackend

            DynamoDBBackend.transact_write_items = self._original_transact  # type: ignore[method-assign]
            self._original_transact = None


class PartitionQueries:
    """A Query of the table reads its page's items only, as in DynamoDB.

    moto answers a Query of the table by sorting every item of the table, keeping the
    partition's, then comparing each with the key condition as moto's typed values: a
    timeline page took 0.2 to 0.4 s beside 10,000 other activities, where DynamoDB reads
    just the page. Here moto is handed, in key order, only the items its page can hold: those
    of the partition within the key condition, after the start key, up to one past the Limit
    (so it still sees whether more follow). moto then answers as before, filters and all.
    Requests are serialized by DynamoDbIsolation, so lending the table a narrower
    `all_items` for one call is safe.

    An index Query is handed the items whose index partition key is the Query's, found by a
    plain comparison of each item's attribute (sorting the whole table's items as typed
    values first, then comparing each, made a page of an index cost more with every item
    the table held; this is ~30 times cheaper, so the burst's polls no longer slow down
    what they wait for), and of those, as for the table, only the page's: moto sorts what it
    is handed as typed values, twice, which for an index partition of 10,000 items (a
    pipeline's deals, the board's Query per stage) took 0.4 s a Query, and the board's six
    side by side passed the functions' 5 s read timeout.

    The index partitions themselves are kept (TableIndexes): built by one pass over the
    table on the first index Query, then kept up to date by each keyed write, each
    partition sorted by its index's keys once and bisected to a page's start. Comparing every
    item on every index Query made a board beside 10,000 deals 8 times slower than beside
    10, and rebuilding after every write still 3 times; DynamoDB reads the page alone.
    """

    def __init__(self) -> None:
        self._original: Callable[..., Any] | None = None
        self._original_action: Callable[..., Any] | None = None
        self._original_writes: dict[str, Callable[..., Any]] = {}
        self._writes_lock = threading.Lock()
        self.writes = 0

    def install(self) -> None:
        from moto.dynamodb.models.table import Table as MotoTable
        from moto.dynamodb.responses import DynamoHandler

        if self._original is not None or getattr(MotoTable.query, "narrowed", False):
            return  # already narrowed (by the tests' moto in the same process, say)
        original = self._original = MotoTable.query
        original_action = self._original_action = DynamoHandler.call_action
        queries = self

        def counted(handler: Any) -> Any:
            target = handler.headers.get("X-Amz-Target", "") if handler.headers else ""
            if target.rsplit(".", 1)[-1] in _READ_ACTIONS | _KEYED_WRITES:
                return original_action(handler)  # keyed writes resync their items
            # Before and after: a map built while a write runs is not reused after it.
            queries.count_write()
            try:
                return original_action(handler)
            finally:
                queries.count_write()

        def query(table: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
            # moto's Table.query(hash_key, range_comparison, range_objs, limit,
            # exclusive_start_key, scan_index_forward, projection_expressions, index_name...)
            index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
            if index_name:
                conditions = kwargs.get("hash_key_conditions")
                page = _index_candidates(table, conditions, queries.writes)
                if page is not None and len(args) >= 5 and conditions:
                    sorted_keys = TableIndexes.of(table, queries.writes).sorted_partition(
                        table, index_name, conditions, page
                    )
                    if sorted_keys is not None:
                        page = _index_page(sorted_keys, kwargs, *args[:5], fallback=page)
            elif hash_key is None or not table.range_key_attr or len(args) < 5:
                return original(table, hash_key, *args, **kwargs)
            else:
                page = _page_candidates(table, hash_key, *args[:5])
            if page is None:
                return original(table, hash_key, *args, **kwargs)
            table.all_items = lambda: page
            try:
                return original(table, hash_key, *args, **kwargs)
            finally:
                table.__dict__.pop("all_items", None)

        query.narrowed = True  # type: ignore[attr-defined]
        MotoTable.query = query  # type: ignore[method-assign,assignment]
        DynamoHandler.call_action = counted  # type: ignore[method-assign]
        self._resync_keyed_writes()

    def _resync_keyed_writes(self) -> None:
        """After each keyed write of moto's backend (whether it wrote or failed, and after a
        cancelled transaction put its items back), the items it named are resynced."""
        from moto.dynamodb.models import DynamoDBBackend

        queries = self

        def resync(backend: Any, table_name: Any, attributes: Any) -> None:
            table = backend.tables.get(table_name)
            kept = table.__dict__.get(TableIndexes.ATTRIBUTE) if table is not None else None
            if kept is None or kept.writes != queries.writes or not isinstance(attributes, dict):
                return
            key = _wire_key(table, attributes)
            if key is None:
                queries.count_write()  # not an item this can place: build again
            else:
                kept.resync(table, key)

        def one_item(method: Callable[..., Any], argument: str) -> Callable[..., Any]:
            def write(backend: Any, *args: Any, **kwargs: Any) -> Any:
                table_name = args[0] if args else kwargs.get("table_name")
                attributes = args[1] if len(args) > 1 else kwargs.get(argument)
                try:
                    return method(backend, *args, **kwargs)
                finally:
                    resync(backend, table_name, attributes)

            return write

        def transaction(method: Callable[..., Any]) -> Callable[..., Any]:
            def transact_write_items(backend: Any, transact_items: Any) -> Any:
                try:
                    return method(backend, transact_items)
                finally:
                    for entry in transact_items:
                        for kind, op in entry.items():
                            if kind != "ConditionCheck" and isinstance(op, dict):
                                resync(backend, op.get("TableName"), op.get("Item", op.get("Key")))

            return transact_write_items

        wrapped = {
            "put_item": one_item(DynamoDBBackend.put_item, "item_attrs"),
            "update_item": one_item(DynamoDBBackend.update_item, "key"),
            "delete_item": one_item(DynamoDBBackend.delete_item, "key"),
            "transact_write_items": transaction(DynamoDBBackend.transact_write_items),
        }
        self._original_writes = {name: getattr(DynamoDBBackend, name) for name in wrapped}
        for name, method in wrapped.items():
            setattr(DynamoDBBackend, name, method)

    def count_write(self) -> None:
        with self._writes_lock:  # never lost between threads: the count only moves on
            self.writes += 1

    def uninstall(self) -> None:
        from moto.dynamodb.models.table import Table as MotoTable
        from moto.dynamodb.responses import DynamoHandler

        if self._original is not None:
            MotoTable.query = self._original  # type: ignore[method-assign]
            self._original = None
        if self._original_action is not None:
            DynamoHandler.call_action = self._original_action  # type: ignore[method-assign]
            self._original_action = None
        from moto.dynamodb.models import DynamoDBBackend

        for name, method in self._original_writes.items():
            setattr(DynamoDBBackend, name, method)
        self._original_writes = {}


def _index_candidates(
    table: Any, conditions: list[tuple[str, Any]] | None, writes: int
) -> list[Any] | None:
    """The table's items in the index partition the Query names (None: not a form this
    narrows). DynamoDB leaves an item without the key attributes out of an index; moto then
    checks the rest (range keys, filters) on these as it would on all."""
    if not conditions:
        return None
    if any(value.type not in ("S", "B") for _, value in conditions):
        return None  # a number's text differs for equal numbers (1, 1.0): moto compares
    (name, value), rest = conditions[0], conditions[1:]
    found = TableIndexes.of(table, writes).partition(table, name, (value.type, value.value))
    if not rest:
        return found
    return [
        item
        for item in found
        if all(
            (have := item.attrs.get(other)) is not None
            and have.type == wanted.type
            and have.value == wanted.value
            for other, wanted in rest
        )
    ]


ItemKey = tuple[Any, ...]
Value = tuple[str, Any]


class TableIndexes:
    """One table's items by the value of each index partition key queried so far (a string
    or binary value; an item without it is in no partition of that index), and the
    partitions sorted by their index's keys as Queries asked for them.

    Built on first use by one pass over the table; then each keyed write (PutItem,
    UpdateItem, DeleteItem, the parts of BatchWriteItem and TransactWriteItems) moves its
    item between partitions (`resync`), and drops the sorted forms of the partitions it
    left or entered. Any other write (a table created or deleted, PartiQL, a restore) moves
    `writes` on, and the whole is built again."""

    ATTRIBUTE = "_crm_table_indexes"

    def __init__(self, writes: int) -> None:
        self.writes = writes
        self.buckets: dict[str, dict[Value, dict[ItemKey, Any]]] = {}
        self.where: dict[str, dict[ItemKey, Value]] = {}
        self.sorted: dict[tuple[str, Value], dict[tuple[Any, ...], SortedPartition | None]] = {}

    @classmethod
    def of(cls, table: Any, writes: int) -> TableIndexes:
        kept = table.__dict__.get(cls.ATTRIBUTE)
        if kept is None or kept.writes != writes:
            kept = table.__dict__[cls.ATTRIBUTE] = cls(writes)
        return kept  # type: ignore[no-any-return]

    def partition(self, table: Any, name: str, value: Value) -> list[Any]:
        if name not in self.buckets:
            self._build(table, name)
        return list(self.buckets[name].get(value, {}).values())

    def _build(self, table: Any, name: str) -> None:
        buckets: dict[Value, dict[ItemKey, Any]] = {}
        where: dict[ItemKey, Value] = {}
        for partition in table.items.values():
            for item in partition.values() if table.range_key_attr else [partition]:
                have = item.attrs.get(name)
                if have is not None and have.type in ("S", "B"):
                    value, key = (have.type, have.value), _item_key(item)
                    buckets.setdefault(value, {})[key] = item
                    where[key] = value
        self.buckets[name], self.where[name] = buckets, where

    def resync(self, table: Any, key: ItemKey) -> None:
        """Put the item of `key` (or its absence) where it now belongs, after a write."""
        item = _item_at(table, key)
        for name, buckets in self.buckets.items():
            old = self.where[name].pop(key, None)
            if old is not None:
                buckets[old].pop(key, None)
                self.sorted.pop((name, old), None)
            have = item.attrs.get(name) if item is not None else None
            if have is not None and have.type in ("S", "B"):
                value = (have.type, have.value)
                buckets.setdefault(value, {})[key] = item
                self.where[name][key] = value
                self.sorted.pop((name, value), None)

    def sorted_partition(
        self, table: Any, index_name: str, conditions: list[tuple[str, Any]], items: list[Any]
    ) -> SortedPartition | None:
        """The index partition in its index's key order, sorted once until a write moves an
        item in or out of it (None: its keys are not all strings, or the index has no one
        sort key: moto sorts as it would)."""
        index = next((i for i in table.all_indexes() if i.name == index_name), None)
        ranges = (
            [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"] if index else []
        )
        if len(ranges) != 1 or table.range_key_attr is None:
            return None
        name, value = conditions[0]
        kept = self.sorted.setdefault((name, (value.type, value.value)), {})
        wanted = (index_name, *((n, v.type, v.value) for n, v in conditions[1:]))
        if wanted not in kept:
            kept[wanted] = _sorted(items, (ranges[0], table.hash_key_attr, table.range_key_attr))
        return kept[wanted]


def _item_key(item: Any) -> ItemKey:
    hash_key, range_key = item.hash_key, item.range_key
    if range_key is None:
        return (hash_key.type, hash_key.value)
    return (hash_key.type, hash_key.value, range_key.type, range_key.value)


def _item_at(table: Any, key: ItemKey) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType

    found = table.items.get(DynamoType({key[0]: key[1]}))
    if found is None or len(key) == 2:
        return found
    return found.get(DynamoType({key[2]: key[3]}))


def _wire_key(table: Any, attributes: dict[str, Any]) -> ItemKey | None:
    """The item key of a request's Item or Key (None: it lacks the table's keys)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        hash_key = DynamoType(attributes[table.hash_key_attr])
        if not table.range_key_attr:
            return (hash_key.type, hash_key.value)
        range_key = DynamoType(attributes[table.range_key_attr])
    except (KeyError, TypeError, AttributeError):
        return None
    return (hash_key.type, hash_key.value, range_key.type, range_key.value)


def _prefixed(values: list[str], prefix: str) -> tuple[int, int]:
    # The keys from the prefix on that start with it come first: bisect where they stop.
    low = bisect.bisect_left(values, prefix)
    return low, bisect.bisect_left(values, True, low, key=lambda v: not v.startswith(prefix))


# A key condition's range of a sorted list of sort keys: [low, high).
_RANGES: dict[str, Callable[..., tuple[int, int]]] = {
    "=": lambda v, x: (bisect.bisect_left(v, x), bisect.bisect_right(v, x)),
    "<": lambda v, x: (0, bisect.bisect_left(v, x)),
    "<=": lambda v, x: (0, bisect.bisect_right(v, x)),
    ">": lambda v, x: (bisect.bisect_right(v, x), len(v)),
    ">=": lambda v, x: (bisect.bisect_left(v, x), len(v)),
    "BETWEEN": lambda v, x, y: (bisect.bisect_left(v, x), bisect.bisect_right(v, y)),
    "BEGINS_WITH": _prefixed,
}


@dataclass
class SortedPartition:
    """An index partition's items in the index's key order: `keys[i]` is (index sort key,
    table partition key, table sort key) of `items[i]`, `values[i]` its index sort key."""

    names: tuple[str, str, str]
    keys: list[tuple[str, str, str]]
    values: list[str]
    items: list[Any]


def _sorted(items: list[Any], names: tuple[str, str, str]) -> SortedPartition | None:
    keyed: list[tuple[tuple[str, str, str], Any]] = []
    for item in items:
        values = [item.attrs.get(name) for name in names]
        if values[0] is None:
            continue  # without the index's sort key: not in the index
        if any(v is None or v.type != "S" for v in values):
            return None
        keyed.append(((values[0].value, values[1].value, values[2].value), item))
    keyed.sort(key=lambda pair: pair[0])
    return SortedPartition(
        names, [k for k, _ in keyed], [k[0] for k, _ in keyed], [i for _, i in keyed]
    )


def _index_page(
    partition: SortedPartition,
    kwargs: dict[str, Any],
    comparison: str | None,
    bounds: list[Any],
    limit: int | None,
    start_key: dict[str, Any] | None,
    forward: bool,
    *,
    fallback: list[Any],
) -> list[Any]:
    """Of a sorted index partition, the items a Query page can hold, in the order the page
    reads them: found by bisecting to the key condition's range and the start key, then
    taking the page and one more (to tell whether more follow). `fallback` (the whole
    partition) when the Query is not a form this narrows."""
    if (
        len(kwargs.get("range_key_conditions") or ()) > 1
        or any(b.type != "S" for b in bounds)
        or (comparison and comparison.upper() not in _RANGES)
    ):
        return fallback
    values = partition.values
    if comparison:
        low, high = _RANGES[comparison.upper()](values, *(b.value for b in bounds))
    else:
        low, high = 0, len(values)
    if start_key:
        start = tuple((start_key.get(name) or {}).get("S") for name in partition.names)
        if None in start:
            return fallback
        if forward:
            low = max(low, bisect.bisect_right(partition.keys, start))
        else:
            high = min(high, bisect.bisect_left(partition.keys, start))
    if high <= low:
        return []
    if forward:
        stop = high if limit is None else min(high, low + limit + 1)
        return partition.items[low:stop]
    first = low if limit is None else max(low, high - limit - 1)
    return partition.items[first:high][::-1]


def _page_candidates(
    table: Any,
    hash_key: Any,
    comparison: str | None,
    bounds: list[Any],
    limit: int | None,
    start_key: dict[str, Any] | None,
    forward: bool,
) -> list[Any]:
    """The items of one partition a Query page can hold, in key order (moto's items)."""
    from moto.dynamodb.comparisons import COMPARISON_FUNCS

    items = list(table.items.get(hash_key, {}).values())
    funcs: dict[str, Callable[..., bool]] = COMPARISON_FUNCS  # type: ignore[assignment]
    test = funcs.get(comparison) if comparison else None
    start = ((start_key or {}).get(table.range_key_attr) or {}).get("S")
    if (
        (comparison and test is None)
        or (start_key and start is None)
        or any(i.range_key is None or i.range_key.type != "S" for i in items)
        or any(b.type != "S" for b in bounds)
    ):
        return items  # not a form this narrows: moto reads the partition as it would
    items.sort(key=lambda i: i.range_key.value, reverse=not forward)
    values = [b.value for b in bounds]
    page = []
    for item in items:
        key = item.range_key.value
        if start is not None and (key <= start if forward else key >= start):
            continue
        if test is not None and not test(key, *values):
            continue
        page.append(item)
        if limit is not None and len(page) > limit:
            break
    return page


class ReplayWindow:
    """Archive replays within their time window and rule filter, as in EventBridge."""

    def __init__(self) -> None:
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        from moto.events import models

        if self._original is not None:
            return
        self._original = models.Replay.replay_events

        def replay_events(replay: Any, archive: Any) -> None:
            start, end = float(replay.event_start_time), float(replay.event_end_time)
            bus_name = replay.destination["Arn"].split("/")[-1]
            bus = models.events_backends[replay.account_id][replay.region].describe_event_bus(
                bus_name
            )
            only = set(replay.destination.get("FilterArns") or [])
            for event in list(archive.events):
                if not start <= _epoch(event.get("time")) < end:
                    continue
                for rule in list(bus.rules.values()):
                    if only and rule.arn not in only:
                        continue
                    replayed = {**event, "id": str(uuid.uuid4()), "replay-name": replay.name}
                    rule.send_to_targets(replayed, transform_input=False)  # type: ignore[arg-type]
            replay.state = models.ReplayState.COMPLETED
            replay.end_time = time.time()

        models.Replay.replay_events = replay_events  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        from moto.events import models

        if self._original is not None:
            models.Replay.replay_events = self._original  # type: ignore[method-assign]
            self._original = None


def _epoch(value: Any) -> float:
    """An archived event's time (moto keeps epoch seconds; ISO 8601 is accepted too)."""
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("nan")  # outside every window


def _keeping_the_stream(transact: Callable[..., Any]) -> Callable[..., Any]:
    """moto's TransactWriteItems, with a cancelled transaction leaving the stream untouched.

    moto applies a transaction's writes one by one (each adding its stream record) and, when
    one fails, puts back a deep copy of the table taken before: with a copy of its stream
    shard. The shard that readers' iterators hold then keeps the records of writes that were
    undone, and never sees another. Here the live shard is kept, without those records, on
    the table put back: as in DynamoDB, a cancelled transaction is not in the stream at all.
    """

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> Any:
        shards = {}
        for item in transact_items:
            name = next(iter(item.values())).get("TableName")
            table = backend.tables.get(name)
            if table is not None and table.stream_shard is not None:
                shards[name] = (table.stream_shard, len(table.stream_shard.items))
        try:
            return transact(backend, transact_items)
        except Exception:
            for name, (shard, count) in shards.items():
                del shard.items[count:]
                restored = backend.tables.get(name)
                if restored is not None:
                    shard.table = restored
                    restored.stream_shard = shard
            raise

    return transact_write_items


def one_backup_per_transaction(transact: Callable[..., Any]) -> Callable[..., Any]:
    """moto's TransactWriteItems, backing up only the items the transaction names.

    moto deep-copies each table a transaction touches (once per *item* of the transaction),
    to put the copy back if one write fails: the cost of every transaction grew with the
    table (about 0.5 s on a table of 6,000 items), under the lock every DynamoDB request
    waits for. Here moto's "copy" is the live table itself, and the previous version of each
    item the transaction names is kept instead: when moto rolls back, those items are put
    back, without stream records (`_keeping_the_stream` trims the ones the writes added).
    Requests are serialized (DynamoDbIsolation, or one test thread), so swapping the module's
    `copy` for the call is safe.
    """
    import copy

    import moto.dynamodb.models as moto_dynamodb
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table as MotoTable

    class LiveTable:
        """moto's backup of a table is the table: the undo log below restores it."""

        def deepcopy(self, value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, MotoTable) else copy.deepcopy(value, memo)

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

    def previous_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[Any]:
        kept = []
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = backend.tables.get(op.get("TableName"))
            attributes = op.get("Item") if "Item" in op else op.get("Key")
            if table is None or not isinstance(attributes, dict):
                continue
            try:
                hash_key = DynamoType(attributes[table.hash_key_attr])
                range_key = (
                    DynamoType(attributes[table.range_key_attr]) if table.range_key_attr else None
                )
                item = table.get_item(hash_key, range_key)
            except Exception:  # noqa: S112 - a malformed key: moto refuses it, writing nothing
                continue
            kept.append((table, hash_key, range_key, copy.deepcopy(item)))
        return kept

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> Any:
        kept = previous_items(backend, transact_items)
        moto_dynamodb.copy = LiveTable()  # type: ignore[assignment,attr-defined]
        try:
            return transact(backend, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(kept):
                if range_key is None:
                    if item is None:
                        table.items.pop(hash_key, None)
                    else:
                        table.items[hash_key] = item
                elif item is None:
                    table.items.get(hash_key, {}).pop(range_key, None)
                else:
                    table.items[hash_key][range_key] = item
                indexes = table.__dict__.get(TableIndexes.ATTRIBUTE)
                if indexes is not None:  # PartitionQueries' partitions: the item put back
                    key: ItemKey = (hash_key.type, hash_key.value)
                    if range_key is not None:
                        key = (*key, range_key.type, range_key.value)
                    indexes.resync(table, key)
            raise
        finally:
            moto_dynamodb.copy = copy  # type: ignore[attr-defined]

    return transact_write_items


@contextmanager
def quick_transactions() -> Iterator[None]:
    """The local endpoint's transactions for in-process moto (the tests' `mock_aws`): one
    backup per transaction, and a cancelled transaction absent from the stream."""
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    DynamoDBBackend.transact_write_items = _keeping_the_stream(  # type: ignore[method-assign]
        one_backup_per_transaction(original)
    )
    try:
        yield
    finally:
        DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]


@contextmanager
def isolated_dynamodb() -> Iterator[DynamoDbIsolation]:
    isolation = DynamoDbIsolation()
    isolation.install()
    try:
        yield isolation
    finally:
        isolation.uninstall()


class QuickAttributeValues:
    """moto serializes a response by its botocore shape, and a DynamoDB AttributeValue is a
    structure of ten members (S, N, B, M, L...): for each value moto looked up all ten, each
    through its alias providers, though a value holds exactly one. A Query page of eleven
    deals took 17 ms to serialize, more than the Query. Here an AttributeValue serializes
    only the member it holds, through moto's own member serializer (binary is still base64,
    maps and lists still recurse), so the answer is the same."""

    def __init__(self) -> None:
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        from moto.core.serialize import BaseJSONSerializer

        if self._original is not None:
            return
        original = self._original = BaseJSONSerializer._serialize_type_structure

        def serialize(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
            if shape.name != "AttributeValue" or not isinstance(value, dict) or len(value) != 1:
                return original(self, serialized, value, shape, key)
            ((member, inner),) = value.items()
            member_shape = shape.members.get(member)
            if member_shape is None or inner is None:
                return original(self, serialized, value, shape, key)
            member_shape.parent = shape
            wrapper = self.MAP_TYPE() if key else serialized
            self._serialize(wrapper, inner, member_shape, member)
            if key:
                self._default_serialize(serialized, wrapper, shape, key)
            return None

        BaseJSONSerializer._serialize_type_structure = serialize  # type: ignore[method-assign]

    def uninstall(self) -> None:
        from moto.core.serialize import BaseJSONSerializer

        if self._original is not None:
            BaseJSONSerializer._serialize_type_structure = self._original  # type: ignore[method-assign]
            self._original = None


class ServiceFolders:
    """moto's server lists and stats its ~170 service folders on every request, to see
    whether the Host names a service: the largest CPU cost of a busy local cloud once
    transactions stopped copying tables. The folders do not change while it runs: list them
    once."""

    def __init__(self) -> None:
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        import moto.backends

        if self._original is not None:
            return
        self._original = moto.backends.list_of_moto_modules
        folders = tuple(self._original())
        moto.backends.list_of_moto_modules = lambda: folders

    def uninstall(self) -> None:
        import moto.backends

        if self._original is not None:
            moto.backends.list_of_moto_modules = self._original
            self._original = None


class JsonPathCache:
    """moto's EventBridge builds each event it hands a target from a template, parsing eight
    JSONPath expressions per event and target, and each parse builds a yacc parser: the
    largest cost of a busy bus. The expressions are few and their parse is pure, so each is
    parsed once."""

    def __init__(self) -> None:
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        import jsonpath_ng.ext

        if self._original is not None:
            return
        # setattr: the package does not list `parse` among its exports.
        self._original = getattr(jsonpath_ng.ext, "parse")  # noqa: B009
        setattr(jsonpath_ng.ext, "parse", functools.lru_cache(maxsize=256)(self._original))  # noqa: B010

    def uninstall(self) -> None:
        import jsonpath_ng.ext

        if self._original is not None:
            setattr(jsonpath_ng.ext, "parse", self._original)  # noqa: B010
            self._original = None


class LocalEndpoint:
    """moto's server on host:port, serving every AWS service the CRM uses."""

    def __init__(self, host: str = "127.0.0.1", port: int = 4566) -> None:
        self.host = host
        self.port = port
        self.isolation = DynamoDbIsolation()
        self.partition_queries = PartitionQueries()
        self.replay_window = ReplayWindow()
        self.service_folders = ServiceFolders()
        self.json_paths = JsonPathCache()
        self.attribute_values = QuickAttributeValues()
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        # One line per AWS call on the console would drown the functions' own logs.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        check_free(self.host, self.port)  # moto's server thread would die and start() hang
        self.isolation.install()
        self.partition_queries.install()
        self.replay_window.install()
        self.service_folders.install()
        self.json_paths.install()
        self.attribute_values.install()
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        self.host, self.port = self._server.get_host_and_port()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        # In the reverse order of start(): some wrap the same methods of moto.
        self.attribute_values.uninstall()
        self.json_paths.uninstall()
        self.service_folders.uninstall()
        self.replay_window.uninstall()
        self.partition_queries.uninstall()
        self.isolation.uninstall()


class PortInUseError(OSError):
    pass


def check_free(host: str, port: int) -> None:
    if port == 0:
        return
    reserve(host, port).close()


def reserve(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` (a free port for 0), not listening yet: the port is
    known, and kept, before the server that will listen on it exists."""
    bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        bound.bind((host, port))
    except OSError:
        bound.close()
        raise PortInUseError(
            f"port {port} on {host} is in use (another `crm dev`?): stop it, or choose "
            "other ports with --aws-port and --api-port"
        ) from None
    return bound
