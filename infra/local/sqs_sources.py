"""SQS event sources: Lambda's queue pollers, from the template's `SQS` function events.

For each `SQS` event (Properties `Queue` (ARN), `BatchSize` (default 10),
`MaximumBatchingWindowInSeconds`, `FunctionResponseTypes`, `Enabled`,
`ScalingConfig.MaximumConcurrency`), pollers do what Lambda's do:
- receive up to `BatchSize` messages: 10 per ReceiveMessage (SQS's limit), more receives
  while the batching window is open (a BatchSize above 10 needs a window of 1 s or more,
  as in AWS), and no more once the batch nears Lambda's 6 MB payload;
- invoke the function synchronously with Lambda's SQS event (`Records`: messageId,
  receiptHandle, body, attributes, messageAttributes, md5OfBody, eventSource `aws:sqs`,
  eventSourceARN, awsRegion);
- then settle the batch: success deletes every message; with `ReportBatchItemFailures`,
  a `{"batchItemFailures": [{"itemIdentifier": id}]}` response deletes every message but
  those, which reappear after the queue's visibility timeout; a function error or timeout
  deletes none; a malformed response (not an object, an item without a string
  `itemIdentifier`, or an id not in the batch) fails the whole batch, as Lambda does.
Messages left on the queue are received again by the same pollers; the queue's
RedrivePolicy moves one to its dead-letter queue once it has been received
`maxReceiveCount` times. moto's SQS does that itself on receive, as SQS does, so the
pollers need not (tests/delivery proves it).

Concurrency: `MaximumConcurrency` pollers (each one batch at a time), or DEFAULT_POLLERS,
at most MAX_POLLERS on this machine. Lambda scales its pollers with the queue's backlog
instead. An event source with `Enabled: false` has no poller (messages stay queued).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.local.context import CloudContext, Service
from infra.local.invocation import InvokeResult
from infra.topology import REGION, FunctionSpec

DEFAULT_BATCH_SIZE = 10
RECEIVE_LIMIT = 10  # messages per ReceiveMessage
LONG_POLL_S = 1
DEFAULT_POLLERS = 2
MAX_POLLERS = 5
# Stop gathering while ten more of the largest messages (256 KiB) still fit in 6 MB.
GATHER_LIMIT_BYTES = 6_291_456 - RECEIVE_LIMIT * 262_144
_SYSTEM_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
)


@dataclass(frozen=True)
class SqsSource:
    """One `SQS` event of one function."""

    function: str  # logical id
    event_name: str
    queue_arn: str
    batch_size: int = DEFAULT_BATCH_SIZE
    window_s: float = 0.0
    report_failures: bool = False
    enabled: bool = True
    max_concurrency: int | None = None

    @property
    def queue_name(self) -> str:
        return self.queue_arn.rsplit(":", 1)[-1]

    @property
    def label(self) -> str:
        return f"{self.function}.Events.{self.event_name}"

    @property
    def pollers(self) -> int:
        return max(1, min(self.max_concurrency or DEFAULT_POLLERS, MAX_POLLERS))


def sqs_sources(functions: Iterable[FunctionSpec]) -> list[SqsSource]:
    sources = []
    for spec in functions:
        for event_name, event in spec.events.items():
            if event.get("Type") != "SQS":
                continue
            props = event.get("Properties") or {}
            scaling = props.get("ScalingConfig") or {}
            sources.append(
                SqsSource(
                    function=spec.logical_id,
                    event_name=event_name,
                    queue_arn=str(props["Queue"]),
                    batch_size=int(props.get("BatchSize", DEFAULT_BATCH_SIZE)),
                    window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                    report_failures="ReportBatchItemFailures"
                    in (props.get("FunctionResponseTypes") or []),
                    enabled=props.get("Enabled", True) not in (False, "false", "False"),
                    max_concurrency=(
                        int(scaling["MaximumConcurrency"])
                        if "MaximumConcurrency" in scaling
                        else None
                    ),
                )
            )
    return sources


# The event ---------------------------------------------------------------------------------
def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, from a ReceiveMessage message."""
    attributes = message.get("Attributes") or {}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {k: attributes[k] for k in _SYSTEM_ATTRIBUTES if k in attributes},
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update({"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": REGION})
    return record


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = _b64(value["BinaryValue"])
    converted["stringListValues"] = list(value.get("StringListValues") or [])
    converted["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues") or []]
    converted["dataType"] = value.get("DataType", "String")
    return converted


def _b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else str(value).encode()
    return base64.b64encode(raw).decode()


def failed_ids(payload: Any, batch_ids: set[str]) -> set[str] | None:
    """The ids a ReportBatchItemFailures response fails; None: the whole batch failed."""
    if payload is None:
        return set()
    if not isinstance(payload, dict):
        return None
    items = payload.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        return None
    failed = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            return None
        failed.add(identifier)
    return failed


# The pollers -------------------------------------------------------------------------------
class SqsPoller:
    """Lambda's pollers for one event source."""

    def __init__(
        self,
        source: SqsSource,
        sqs: Any,
        queue_url: str,
        invoke: Callable[[str, Any], InvokeResult],
        log: Callable[[str], None],
    ) -> None:
        self.source = source
        self.sqs = sqs
        self.queue_url = queue_url
        self.invoke = invoke
        self.log = log
        self.stopped = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, name=f"sqs-{source.label}-{n}", daemon=True)
            for n in range(source.pollers)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, timeout: float) -> None:
        self.stopped.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.poll_once()
            except Exception as error:
                if not self.stopped.is_set():
                    self.log(f"[sqs] {self.source.label}: {error!r}")
                    self.stopped.wait(1.0)

    def _receive(self, count: int, wait_s: int) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(count, RECEIVE_LIMIT)),
            WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(answer.get("Messages") or [])

    def gather(self) -> list[dict[str, Any]]:
        """A batch: what one long poll brings, then more while the window is open."""
        batch = self._receive(self.source.batch_size, LONG_POLL_S)
        if not batch or self.source.window_s <= 0:
            return batch
        closes = time.monotonic() + self.source.window_s
        size = sum(len(m.get("Body", "")) for m in batch)
        while len(batch) < self.source.batch_size and size < GATHER_LIMIT_BYTES:
            left = closes - time.monotonic()
            if left <= 0 or self.stopped.is_set():
                break
            more = self._receive(self.source.batch_size - len(batch), 0)
            if not more:
                self.stopped.wait(min(0.05, left))
                continue
            batch += more
            size += sum(len(m.get("Body", "")) for m in more)
        return batch

    def poll_once(self) -> int:
        """Receive one batch, invoke, settle. The number of messages handled."""
        batch = self.gather()
        if not batch:
            return 0
        records = [sqs_record(m, self.source.queue_arn) for m in batch]
        result = self.invoke(self.source.function, {"Records": records})
        keep = self.settle(batch, result)
        if keep:
            self.log(
                f"[sqs] {self.source.label}: {len(keep)} of {len(batch)} message(s) "
                "left on the queue for another try"
            )
        return len(batch)

    def settle(self, batch: list[dict[str, Any]], result: InvokeResult) -> set[str]:
        """Delete what succeeded; the ids of the messages left on the queue."""
        ids = {m["MessageId"] for m in batch}
        if not result.ok:
            error = result.error or {}
            self.log(
                f"[sqs] {self.source.label}: function failed "
                f"({error.get('errorType')}: {str(error.get('errorMessage', ''))[:200]})"
            )
            return ids
        failed: set[str] = set()
        if self.source.report_failures:
            reported = failed_ids(result.payload, ids)
            if reported is None:
                self.log(
                    f"[sqs] {self.source.label}: invalid batchItemFailures response "
                    f"{json.dumps(result.payload)[:200]}: the whole batch failed"
                )
                return ids
            failed = reported
        done = [m for m in batch if m["MessageId"] not in failed]
        for start in range(0, len(done), RECEIVE_LIMIT):
            chunk = done[start : start + RECEIVE_LIMIT]
            answer = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)
                ],
            )
            for failure in answer.get("Failed") or []:
                self.log(f"[sqs] {self.source.label}: delete failed: {failure}")
        return failed


class SqsEventSources:
    """Every SQS event source of the stage."""

    def __init__(self, pollers: list[SqsPoller], timeout_s: float) -> None:
        self.pollers = pollers
        self.timeout_s = timeout_s

    def start(self) -> None:
        for poller in self.pollers:
            poller.start()

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stopped.set()
        for poller in self.pollers:
            poller.stop(self.timeout_s)


def build(ctx: CloudContext) -> Service | None:
    sources = sqs_sources(ctx.functions)
    if not sources:
        return None
    timeouts = {spec.logical_id: spec.timeout_s for spec in ctx.functions}
    pollers = []
    for source in sources:
        if not source.enabled:
            ctx.log(f"[sqs] {source.label}: Enabled is false: {source.queue_name} not polled")
            continue
        sqs = ctx.client("sqs")
        try:
            url = sqs.get_queue_url(QueueName=source.queue_name)["QueueUrl"]
            visibility = int(
                sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])[
                    "Attributes"
                ]["VisibilityTimeout"]
            )
        except Exception as error:
            ctx.log(f"[sqs] {source.label}: queue {source.queue_arn} not polled: {error}")
            continue
        if visibility < timeouts.get(source.function, 0):
            ctx.log(
                f"[sqs] {source.label}: the queue's visibility timeout ({visibility} s) is "
                f"less than the function's timeout ({timeouts[source.function]} s): "
                "AWS refuses this event source mapping"
            )
        if source.batch_size > RECEIVE_LIMIT and source.window_s < 1:
            ctx.log(
                f"[sqs] {source.label}: BatchSize above 10 needs "
                "MaximumBatchingWindowInSeconds of 1 or more in AWS"
            )
        pollers.append(SqsPoller(source, sqs, url, ctx.invoke, ctx.log))
    # A poller finishes its batch before it stops: the longest function timeout, and a poll.
    longest = max(timeouts.values(), default=3)
    return SqsEventSources(pollers, longest + LONG_POLL_S + 1.0)
