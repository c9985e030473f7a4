"""DynamoDB stream event sources: Lambda's event source mapping for a table's stream.

Every function event of type `DynamoDB` gets a poller that reads each shard of the stream
through the DynamoDB Streams API (`describe_stream`, `get_shard_iterator`, `get_records`),
in order per shard, four times a second as Lambda does, and invokes the function
synchronously with Lambda's own event (`{"Records": [...]}`, records shaped as
`sam local generate-event dynamodb update` prints them).

What the mapping's properties do here, as in Lambda:
- `StartingPosition`: every poller starts at the end of the stream (LATEST) when the local
  cloud starts. Saved items are written back into the table before the pollers start, and
  they were delivered in the run that first wrote them, so they must not come again. For
  `TRIM_HORIZON` this is also what AWS does: the position only matters when the mapping is
  created, which locally is the first start, with an empty table (where both are the same).
- `FilterCriteria`: each record is matched, as the JSON Lambda would send, against the
  filter patterns (any one matching is enough) with moto's EventBridge pattern matcher
  (exact values, `prefix`, `suffix`, `anything-but`, `exists`, `numeric`,
  `equals-ignore-case`, `wildcard`, `$or`, nested keys). A record that matches no filter is
  dropped for good: it is never delivered and never retried. Attribute values of type N
  are strings in the record (`{"N": "42"}`), so `numeric` only matches the record's real
  numbers (`SizeBytes`, `ApproximateCreationDateTime`).
- `BatchSize` (default 100) and `MaximumBatchingWindowInSeconds` (default 0): a batch is
  sent when it is full or when the window has passed since its first record arrived.
- A function error (including a timeout) retries the same batch `MaximumRetryAttempts`
  times, 0.5, 1, then 2 s apart (`retry_delays`; Lambda's own pacing is not reproduced).
  The default, -1, means "until the record expires" (24 hours, the shard blocked all that
  time); locally it is capped at `LOCAL_RETRY_CAP` (5) retries, so that a failing consumer
  shows its whole path in seconds instead of blocking the shard for a day.
- `BisectBatchOnFunctionError`: a failed batch of more than one record is split in two and
  each half is delivered in turn (a split starts a new retry count for each half).
- `FunctionResponseTypes: [ReportBatchItemFailures]`: `{"batchItemFailures":
  [{"itemIdentifier": <SequenceNumber>}]}` retries from the lowest reported sequence
  number; an empty or null list is a success; an item without a valid sequence number of
  the batch fails the whole batch, as Lambda treats it.
- `MaximumRecordAgeInSeconds`: a batch whose oldest record is older is not invoked again.
- After the retries (or past the record age), the batch's invocation record (Lambda's,
  with `DDBStreamBatchInfo`) goes to `DestinationConfig.OnFailure.Destination` (an SQS
  queue or SNS topic), or is logged as discarded without one, and the shard moves on.
- `Enabled: false`: the source is not polled.

Not emulated: `ParallelizationFactor` (one batch at a time per shard), `TumblingWindowInSeconds`,
`StartingPositionTimestamp`, resharding (moto's stream has one shard for life), the stream's
24-hour retention (moto keeps every record), and the checkpoint across restarts (a batch
still being retried when `crm dev` stops is not delivered again).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.local.context import CloudContext
from infra.local.destinations import send
from infra.local.invocation import InvokeResult
from infra.stream_records import Record, lambda_record
from infra.topology import ACCOUNT_ID, REGION, FunctionSpec

DEFAULT_BATCH_SIZE = 100
POLL_INTERVAL_S = 0.25  # Lambda polls each shard four times a second
GET_RECORDS_LIMIT = 1000  # the DynamoDB Streams API's maximum
LOCAL_RETRY_CAP = 5  # what MaximumRetryAttempts -1 (until the record expires) becomes here
DEFAULT_RETRY_DELAYS = (0.5, 1.0, 2.0)
SHARD_REFRESH_S = 10.0

Invoke = Callable[[str, Any], InvokeResult]


class RecordFilter:
    """A mapping's FilterCriteria: a record passes if any filter pattern matches it."""

    def __init__(self, patterns: Sequence[str] = ()) -> None:
        from moto.events.models import EventPattern

        self.patterns = tuple(patterns)
        self._compiled = [EventPattern.load(pattern) for pattern in self.patterns]

    @classmethod
    def of(cls, criteria: Mapping[str, Any] | None) -> RecordFilter:
        patterns = []
        for entry in (criteria or {}).get("Filters") or []:
            pattern = entry.get("Pattern")
            patterns.append(pattern if isinstance(pattern, str) else json.dumps(pattern))
        return cls(patterns)

    def matches(self, record: Mapping[str, Any]) -> bool:
        event: Any = dict(record)  # moto types events as EventBridge's; any JSON object works
        return not self._compiled or any(p.matches_event(event) for p in self._compiled)


@dataclass(frozen=True)
class StreamSource:
    """One `DynamoDB` event of one function: an event source mapping."""

    function: FunctionSpec
    event_id: str
    stream_arn: str
    starting_position: str = "LATEST"
    batch_size: int = DEFAULT_BATCH_SIZE
    batching_window_s: float = 0.0
    record_filter: RecordFilter = field(default_factory=RecordFilter)
    max_retries: int = LOCAL_RETRY_CAP
    bisect: bool = False
    max_record_age_s: int = -1
    report_item_failures: bool = False
    on_failure: str | None = None
    enabled: bool = True

    @property
    def name(self) -> str:
        return f"{self.function.logical_id}.{self.event_id}"

    @classmethod
    def of(cls, function: FunctionSpec, event_id: str, props: Mapping[str, Any]) -> StreamSource:
        retries = int(props.get("MaximumRetryAttempts", -1))
        destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        return cls(
            function=function,
            event_id=event_id,
            stream_arn=str(props["Stream"]),
            starting_position=str(props.get("StartingPosition", "LATEST")),
            batch_size=int(props.get("BatchSize", DEFAULT_BATCH_SIZE)),
            batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            record_filter=RecordFilter.of(props.get("FilterCriteria")),
            max_retries=LOCAL_RETRY_CAP if retries < 0 else retries,
            bisect=_true(props.get("BisectBatchOnFunctionError", False)),
            max_record_age_s=int(props.get("MaximumRecordAgeInSeconds", -1)),
            report_item_failures="ReportBatchItemFailures"
            in (props.get("FunctionResponseTypes") or []),
            on_failure=str(destination) if destination else None,
            enabled=_true(props.get("Enabled", True)),
        )


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def stream_sources(functions: Sequence[FunctionSpec]) -> list[StreamSource]:
    """Every DynamoDB event source the functions declare, in template order."""
    return [
        StreamSource.of(function, event_id, event.get("Properties") or {})
        for function in functions
        for event_id, event in function.events.items()
        if event.get("Type") == "DynamoDB"
    ]


# Records ---------------------------------------------------------------------------------
def _sequence(record: Mapping[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def _arrival(record: Mapping[str, Any]) -> str:
    created = record["dynamodb"].get("ApproximateCreationDateTime", 0)
    return datetime.fromtimestamp(float(created), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def failure_record(
    source: StreamSource,
    shard_id: str,
    batch: Sequence[Record],
    condition: str,
    attempts: int,
    result: InvokeResult | None,
) -> dict[str, Any]:
    """Lambda's invocation record for a stream batch it gave up on."""
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if result is not None and not result.ok:
        response["functionError"] = "Unhandled"
    return {
        "requestContext": {
            "requestId": (result.request_id if result is not None else "") or str(uuid.uuid4()),
            "functionArn": source.function.arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": _sequence(batch[0]),
            "endSequenceNumber": _sequence(batch[-1]),
            "approximateArrivalOfFirstRecord": _arrival(batch[0]),
            "approximateArrivalOfLastRecord": _arrival(batch[-1]),
            "batchSize": len(batch),
            "streamArn": source.stream_arn,
        },
    }


# One batch -------------------------------------------------------------------------------
class BatchDelivery:
    """Delivers one batch of one shard until every record succeeded or was given up on."""

    def __init__(
        self,
        source: StreamSource,
        invoke: Invoke,
        give_up: Callable[[dict[str, Any]], None],
        *,
        wait: Callable[[float], bool] | None = None,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        log: Callable[[str], None] = print,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self._invoke = invoke
        self._give_up = give_up
        self._wait = wait or threading.Event().wait  # waits; True: stop now
        self._delays = tuple(retry_delays) or (0.0,)
        self._log = log
        self._now = now

    def deliver(self, shard_id: str, records: Sequence[Record]) -> bool:
        """False if told to stop before the batch was settled."""
        pending: deque[list[Record]] = deque([list(records)])
        while pending:
            batch = pending.popleft()
            attempts = 0
            result: InvokeResult | None = None
            while True:
                if self._too_old(batch):
                    self._fail(shard_id, batch, "RecordAgeExceeded", attempts, result)
                    break
                attempts += 1
                result = self._invoke(self.source.function.logical_id, {"Records": batch})
                failed_from = self._failed_from(result, batch)
                if failed_from is None:
                    break
                if result.ok:  # a partial failure: the records before it succeeded
                    batch = batch[failed_from:]
                elif self.source.bisect and len(batch) > 1:
                    half = len(batch) // 2
                    pending.extendleft([batch[half:], batch[:half]])
                    self._log(
                        f"[streams] {self.source.name}: batch of {len(batch)} failed; "
                        f"split into {half} + {len(batch) - half}"
                    )
                    break
                if attempts > self.source.max_retries:
                    self._fail(shard_id, batch, "RetryAttemptsExhausted", attempts, result)
                    break
                error = (result.error or {}).get("errorType", "partial batch failure")
                self._log(
                    f"[streams] {self.source.name}: attempt {attempts} failed ({error}); retrying"
                )
                if self._wait(self._delays[min(attempts - 1, len(self._delays) - 1)]):
                    return False
        return True

    def _too_old(self, batch: Sequence[Record]) -> bool:
        limit = self.source.max_record_age_s
        if limit < 0:
            return False
        created = batch[0]["dynamodb"].get("ApproximateCreationDateTime")
        return created is not None and self._now() - float(created) > limit

    def _failed_from(self, result: InvokeResult, batch: Sequence[Record]) -> int | None:
        """None: the batch succeeded; else the index of the first record to retry from."""
        if not result.ok:
            return 0
        if not self.source.report_item_failures or not isinstance(result.payload, dict):
            return None
        failures = result.payload.get("batchItemFailures")
        if not failures:
            return None
        if not isinstance(failures, list):
            return 0
        sequences = [_sequence(record) for record in batch]
        indexes = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not isinstance(identifier, str) or identifier not in sequences:
                return 0  # Lambda fails the whole batch on an invalid item identifier
            indexes.append(sequences.index(identifier))
        return min(indexes)

    def _fail(
        self,
        shard_id: str,
        batch: Sequence[Record],
        condition: str,
        attempts: int,
        result: InvokeResult | None,
    ) -> None:
        record = failure_record(self.source, shard_id, batch, condition, attempts, result)
        first, last = _sequence(batch[0]), _sequence(batch[-1])
        if self.source.on_failure is None:
            self._log(
                f"[streams] {self.source.name}: {condition}; records {first}..{last} discarded "
                "(no on-failure destination)"
            )
            return
        try:
            self._give_up(record)
        except Exception as error:  # the shard moves on all the same, as Lambda's does
            self._log(
                f"[streams] {self.source.name}: {condition}; records {first}..{last} discarded: "
                f"sending them to {self.source.on_failure} failed: {error!r}"
            )
            return
        self._log(
            f"[streams] {self.source.name}: {condition}; records {first}..{last} "
            f"sent to {self.source.on_failure}"
        )


# Polling ---------------------------------------------------------------------------------
@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    buffer: list[Record]
    first_buffered: float = 0.0


class StreamPoller:
    """Reads every shard of one source's stream and delivers its batches, on one thread."""

    def __init__(
        self,
        source: StreamSource,
        ctx: CloudContext,
        stop: threading.Event,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self.source = source
        self._ctx = ctx
        self._stop = stop
        self._poll_interval_s = poll_interval_s
        self._streams = ctx.client("dynamodbstreams")
        self._shards: dict[str, _Shard] = {}
        self._refreshed = 0.0
        self._delivery = BatchDelivery(
            source,
            ctx.invoke,
            self._send_failure,
            wait=stop.wait,
            retry_delays=retry_delays,
            log=ctx.log,
        )
        self.thread = threading.Thread(target=self._run, name=f"stream-{source.name}", daemon=True)

    def position(self) -> None:
        """Put every shard at the stream's end (LATEST): records written from now on count."""
        self._refresh_shards(initial=True)

    def _refresh_shards(self, initial: bool = False) -> None:
        described = self._streams.describe_stream(StreamArn=self.source.stream_arn)
        for shard in described["StreamDescription"].get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id in self._shards:
                continue
            # A shard that appears later is new: all of it is unread.
            kind = "LATEST" if initial else "TRIM_HORIZON"
            iterator = self._streams.get_shard_iterator(
                StreamArn=self.source.stream_arn, ShardId=shard_id, ShardIteratorType=kind
            )["ShardIterator"]
            self._shards[shard_id] = _Shard(shard_id, iterator, [])
        self._refreshed = time.monotonic()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                if time.monotonic() - self._refreshed > SHARD_REFRESH_S:
                    self._refresh_shards()
                for shard in list(self._shards.values()):
                    if not self._poll(shard):
                        return
                failures = 0
            except Exception as error:  # the endpoint stopping, a deleted table...
                failures += 1
                if failures == 1:
                    self._ctx.log(f"[streams] {self.source.name}: polling failed: {error!r}")
                if self._stop.wait(min(5.0, self._poll_interval_s * 2**failures)):
                    return
                continue
            if self._stop.wait(self._poll_interval_s):
                return

    def _poll(self, shard: _Shard) -> bool:
        """Read what is new, then deliver the batches that are due; False: stop now."""
        if shard.iterator is not None and len(shard.buffer) < self.source.batch_size:
            page = self._streams.get_records(ShardIterator=shard.iterator, Limit=GET_RECORDS_LIMIT)
            _forget_iterator(shard.iterator)
            shard.iterator = page.get("NextShardIterator")
            for raw in page.get("Records", []):
                record = lambda_record(raw, self.source.stream_arn)
                if not self.source.record_filter.matches(record):
                    continue  # filtered out: never delivered, never retried
                if not shard.buffer:
                    shard.first_buffered = time.monotonic()
                shard.buffer.append(record)
        while shard.buffer:
            full = len(shard.buffer) >= self.source.batch_size
            waited = time.monotonic() - shard.first_buffered >= self.source.batching_window_s
            if not (full or waited):
                return True
            batch = shard.buffer[: self.source.batch_size]
            if not self._delivery.deliver(shard.shard_id, batch):
                return False
            del shard.buffer[: len(batch)]
            shard.first_buffered = time.monotonic()
        return True

    def _send_failure(self, record: dict[str, Any]) -> None:
        assert self.source.on_failure is not None
        send(self._ctx.client, self.source.on_failure, json.dumps(record))


def _forget_iterator(iterator: str) -> None:
    """Drop a used shard iterator from moto, which otherwise keeps every one it handed out
    (a poller asks for a new one four times a second, for as long as `crm dev` runs).
    The endpoint runs in this process, so the emulator can reach moto's backend directly."""
    try:
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        dynamodbstreams_backends[ACCOUNT_ID][REGION].shard_iterators.pop(iterator, None)
    except Exception:  # noqa: S110 - only memory is at stake
        pass


class StreamService:
    """Every DynamoDB stream event source of the template, each on its own thread."""

    def __init__(
        self,
        ctx: CloudContext,
        sources: Sequence[StreamSource],
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self._ctx = ctx
        self.sources = list(sources)
        self._stop = threading.Event()
        self.pollers = [
            StreamPoller(
                source,
                ctx,
                self._stop,
                retry_delays=retry_delays,
                poll_interval_s=poll_interval_s,
            )
            for source in self.sources
            if source.enabled
        ]

    def start(self) -> None:
        started = []
        for poller in self.pollers:
            try:
                poller.position()  # before start() returns: later writes are delivered
            except Exception as error:
                self._ctx.log(f"[streams] {poller.source.name}: cannot read its stream: {error}")
                continue
            started.append(poller)
        self.pollers = started
        for poller in self.pollers:
            poller.thread.start()
        names = ", ".join(p.source.name for p in self.pollers) or "none enabled"
        self._ctx.log(f"[streams] polling DynamoDB streams for {names}")

    def stop(self) -> None:
        self._stop.set()
        for poller in self.pollers:
            if poller.thread.is_alive():
                poller.thread.join(timeout=5)


def build(ctx: CloudContext) -> StreamService | None:
    sources = stream_sources(ctx.functions)
    return StreamService(ctx, sources) if sources else None
