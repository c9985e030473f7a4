"""`crm events replay --dlq`: re-drive the messages of a dead-letter queue.

replay --dlq: each message of the queue is recognised by its shape and delivered again:
- Lambda's invocation record (an async OnFailure destination: `requestPayload`): the
  payload is invoked again, asynchronously, on `requestContext.functionArn`;
- an EventBridge target's dead letter (message attribute TARGET_ARN): the event is invoked
  asynchronously on that Lambda target, with the target's Input / InputPath /
  InputTransformer applied again if the rule still has it;
- a stream batch's on-failure record (`DDBStreamBatchInfo`): the batch's records are read
  again from the stream (from startSequenceNumber to endSequenceNumber), and its outbox
  inserts are put on the stage's bus, as outbox_publisher does.
A message is deleted only once its re-delivery was accepted; a message that failed, or
whose shape is unknown, is made visible again at the end and stays in the queue.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from infra.ops.signals import Stopped, sigterm_stops, uninterrupted
from infra.ops.stage import Stage, gone

DLQ_WAIT_S = 2  # a receive that waited this long and got nothing: the queue is drained
DLQ_VISIBILITY_S = 300  # while a message is being re-driven
STREAM_EMPTY_PAGES = 10  # consecutive empty GetRecords pages before giving up on a range


class _Kept(Exception):
    """The message is not one this command can re-drive: left in the queue."""


class RedriveFailed(Exception):
    pass


@dataclass
class Redrive:
    """What to do with one DLQ message: `what` for the output, `run` does it (or raises)."""

    what: str
    run: Callable[[], str]
    dry_run: Callable[[], str] = field(default=lambda: "")


@dataclass
class Tally:
    redriven: int = 0
    failed: int = 0
    kept: int = 0
    interrupted: bool = False


def queue_url(sqs: Any, name: str) -> str:
    """A queue's URL from its URL, name or ARN."""
    if name.startswith(("https://", "http://")):
        return name
    if name.startswith("arn:"):
        name = name.rsplit(":", 1)[-1]
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])


class DlqReplay:
    """Re-drives the messages of one dead-letter queue (see the module's docstring)."""

    def __init__(self, stage: Stage, out: TextIO | None = None) -> None:
        self.stage = stage
        self.out = out or sys.stdout
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.stage.client(service)
        return self._clients[service]

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def run(self, name: str, *, max_messages: int | None = None, dry_run: bool = False) -> Tally:
        sqs = self.client("sqs")
        url = queue_url(sqs, name)
        tally = Tally()
        seen: set[str] = set()
        held: dict[str, dict[str, Any]] = {}  # received, not deleted: visible again at the end
        try:
            with sigterm_stops():
                while max_messages is None or len(seen) < max_messages:
                    wanted = 10 if max_messages is None else min(10, max_messages - len(seen))
                    messages = (
                        sqs.receive_message(
                            QueueUrl=url,
                            MaxNumberOfMessages=wanted,
                            WaitTimeSeconds=DLQ_WAIT_S,
                            VisibilityTimeout=DLQ_VISIBILITY_S,
                            MessageAttributeNames=["All"],
                        ).get("Messages")
                        or []
                    )
                    held.update((m["MessageId"], m) for m in messages)
                    fresh = [m for m in messages if m["MessageId"] not in seen]
                    if not fresh:
                        break  # drained, or only messages this run already handled
                    for message in fresh:
                        seen.add(message["MessageId"])
                        if self._one(sqs, url, message, tally, dry_run):
                            del held[message["MessageId"]]
        except (KeyboardInterrupt, Stopped):
            tally.interrupted = True
        finally:
            with uninterrupted():
                self._release(sqs, url, list(held.values()))
        return tally

    def _one(self, sqs: Any, url: str, message: dict[str, Any], tally: Tally, dry: bool) -> bool:
        """Handle one message; True if it was deleted."""
        message_id = message["MessageId"]
        try:
            redrive = self.redrive_of(message)
        except _Kept as kept:
            tally.kept += 1
            self.say(f"kept       {message_id}  {kept}")
            return False
        try:
            note = redrive.dry_run() if dry else redrive.run()
        except Exception as error:
            tally.failed += 1
            self.say(f"failed     {message_id}  {redrive.what}: {_text(error)}")
            return False
        if dry:
            tally.redriven += 1
            self.say(f"would      {message_id}  {redrive.what}" + (f": {note}" if note else ""))
            return False
        try:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        except Exception as error:
            tally.failed += 1
            self.say(f"failed     {message_id}  {redrive.what}: {note}, but not deleted: {error}")
            return False
        tally.redriven += 1
        self.say(f"re-driven  {message_id}  {redrive.what}: {note}")
        return True

    def _release(self, sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
        """Make kept and failed messages visible again now, not in DLQ_VISIBILITY_S."""
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            try:
                sqs.change_message_visibility_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                        for n, m in enumerate(chunk)
                    ],
                )
            except Exception as error:
                self.say(f"note: {len(chunk)} message(s) stay invisible for a while: {error}")

    # Recognising a message ------------------------------------------------------------
    def redrive_of(self, message: Mapping[str, Any]) -> Redrive:
        try:
            body = json.loads(message["Body"])
        except ValueError:
            raise _Kept("the body is not JSON: not a message this command knows") from None
        attributes = {
            k: v.get("StringValue", "") for k, v in (message.get("MessageAttributes") or {}).items()
        }
        if attributes.get("TARGET_ARN"):
            return self._rule_target(body, attributes)
        if isinstance(body, dict) and "DDBStreamBatchInfo" in body:
            return self._stream_batch(body["DDBStreamBatchInfo"])
        if isinstance(body, dict) and "requestPayload" in body:
            function = str((body.get("requestContext") or {}).get("functionArn") or "")
            if not function:
                raise _Kept("an invocation record without requestContext.functionArn")
            payload = body["requestPayload"]
            return Redrive(
                what=f"invocation record -> {_function_name(function)} (async)",
                run=lambda: self._invoke(function, payload),
            )
        raise _Kept(
            "not an invocation record, a rule target's dead letter or a stream batch "
            "(a function's own DeadLetterQueue does not say which function failed)"
        )

    def _rule_target(self, event: Any, attributes: Mapping[str, str]) -> Redrive:
        target = attributes["TARGET_ARN"]
        rule = attributes.get("RULE_ARN", "")
        if not target.startswith("arn:aws:lambda:"):
            raise _Kept(f"the dead letter of target {target}, which is not a Lambda function")

        def run() -> str:
            payload = self._target_input(rule, target, event)
            return self._invoke(target, payload)

        return Redrive(
            what=f"dead letter of rule {rule.rsplit('/', 1)[-1] or '?'} -> "
            f"{_function_name(target)} (async)",
            run=run,
        )

    def _target_input(self, rule_arn: str, target_arn: str, event: Any) -> Any:
        """What the target receives: its Input, InputPath or InputTransformer applied."""
        from infra.event_input import TargetInput

        if not rule_arn or not isinstance(event, dict):
            return event
        parts = rule_arn.split(":", 5)[-1].split("/")[1:]  # rule/[bus/]name
        bus, rule = (parts[0], parts[1]) if len(parts) == 2 else ("default", parts[-1])
        try:
            paginator = self.client("events").get_paginator("list_targets_by_rule")
            pages = paginator.paginate(Rule=rule, EventBusName=bus)
            targets = [t for page in pages for t in page["Targets"]]
        except Exception as error:
            if gone(error):
                return event  # the rule is gone: the event as it was
            raise
        for found in targets:
            if found.get("Arn") == target_arn:
                return TargetInput.of(found).payload(event, rule, rule_arn)
        return event

    def _invoke(self, function: str, payload: Any) -> str:
        answer = self.client("lambda").invoke(
            FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode()
        )
        status = answer.get("StatusCode")
        if status != 202:
            raise RedriveFailed(f"Invoke answered {status}")
        return f"accepted, request {answer.get('ResponseMetadata', {}).get('RequestId', '?')}"

    def _stream_batch(self, info: Mapping[str, Any]) -> Redrive:
        try:
            stream_arn = str(info["streamArn"])
            shard = str(info["shardId"])
            first, last = str(info["startSequenceNumber"]), str(info["endSequenceNumber"])
        except KeyError as missing:
            raise _Kept(f"a stream batch record without {missing}") from None
        size = info.get("batchSize")

        def outgoing() -> list[Any]:
            from crm_core.events.forwarding import is_outbox_insert, outgoing_from_record

            streams = self.client("dynamodbstreams")
            records = read_stream_range(streams, stream_arn, shard, first, last)
            bus = self.stage.output("EventBusName")
            return [outgoing_from_record(r, bus) for r in records if is_outbox_insert(r)]

        def note(events: int) -> str:
            counted = "" if size in (None, events) else f" (the record says {size})"
            return f"{events} event(s){counted}"

        def run() -> str:
            from crm_core.events.forwarding import publish

            events = outgoing()
            failures = publish(self.client("events"), events)
            if failures:
                first_failure = failures[0]
                raise RedriveFailed(
                    f"{len(failures)} of {len(events)} event(s) not published "
                    f"({first_failure.code}: {first_failure.message})"
                )
            return f"published {note(len(events))}"

        return Redrive(
            what=f"stream batch {first}..{last} -> {self.stage.output('EventBusName')}",
            run=run,
            dry_run=lambda: f"would publish {note(len(outgoing()))}",
        )


def read_stream_range(
    streams: Any, stream_arn: str, shard_id: str, first: str, last: str
) -> list[dict[str, Any]]:
    """The records first..last of a shard (inclusive), in Lambda's shape."""
    from infra.stream_records import lambda_record

    start, end = int(first), int(last)
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn,
        ShardId=shard_id,
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=first,
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    empty = 0
    while iterator and empty < STREAM_EMPTY_PAGES:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        iterator = page.get("NextShardIterator")
        raw_records = page.get("Records") or []
        empty = 0 if raw_records else empty + 1
        for raw in raw_records:
            number = int(raw["dynamodb"]["SequenceNumber"])
            if number < start:
                continue
            if number > end:
                return records
            records.append(lambda_record(raw, stream_arn))
            if number == end:
                return records
    raise RedriveFailed(
        f"the stream has no record {last} (past its 24-hour retention?): "
        f"read {len(records)} record(s) from {first}"
    )


def _function_name(arn: str) -> str:
    parts = arn.split(":")
    return ":".join(parts[6:]) if len(parts) > 6 and parts[5] == "function" else arn


def _text(error: Exception) -> str:
    return str(error) or type(error).__name__
