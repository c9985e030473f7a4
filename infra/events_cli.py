"""`crm events`: watch a stage's bus, and deliver again what failed (docs/operations.md).

crm events tail [--source S ...] [--detail-type T ...] [--json] [--count N] [--timeout S]
crm events replay --dlq NAME [--max N] [--dry-run]
crm events replay --archive --from T --to T [--rule NAME ...]

Every command takes `--stage S`. Without it (or with `--stage local`), the running local
cloud: `.crm/local.json` gives the endpoint, the API URL (Lambda's Invoke API is served
there, infra/lambda_api.py) and the template's Outputs as the stage resolves them. With
`--stage dev|staging|prod`, the deployed stack `crm-<stage>`: its CloudFormation Outputs,
and clients of the default boto3 session (AWS_PROFILE, AWS_REGION...). Either way the
calls are the same boto3 calls.

tail: a temporary SQS queue (its policy lets only this rule send) and a temporary rule on
the bus, `crm-<stage>-tail-<random>`, whose target asks for the whole event
(`<aws.events.event.json>`); each event is printed as it arrives. The rule, its target and
the queue are deleted when the tail ends: --count or --timeout reached, Ctrl-C, SIGTERM,
an error, or a closed pipe.

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

replay --archive: StartReplay of the stage's archive onto its bus for [from, to),
optionally only to the named rules, then DescribeReplay until the replay ends.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

TAIL_PATTERN: dict[str, Any] = {"source": [{"prefix": "crm."}]}
# The whole event, as delivered; moto also needs it to keep `account` and quotes intact.
FULL_EVENT = {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"}
MOTO_ONLY_FIELDS = ("ingestion-time",)
TAIL_RETENTION_S = 3600  # a tail queue left behind by a killed process empties itself
LONG_POLL_S = 20
DLQ_WAIT_S = 2  # a receive that waited this long and got nothing: the queue is drained
DLQ_VISIBILITY_S = 300  # while a message is being re-driven
STREAM_EMPTY_PAGES = 10  # consecutive empty GetRecords pages before giving up on a range
REPLAY_POLL_S = 2.0
REPLAY_DONE = ("COMPLETED", "FAILED", "CANCELLED")
_NOT_FOUND = {
    "ResourceNotFoundException",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
}


class EventsError(Exception):
    """Something the operator must fix first (a missing stack output, a bad time...)."""


class _Stopped(BaseException):
    """SIGTERM: stop as Ctrl-C does (a BaseException, as KeyboardInterrupt is, so that the
    HTTP client does not wrap it into one of its errors)."""


# The stage ---------------------------------------------------------------------------------
@dataclass
class Stage:
    """Where the commands act: the stack's Outputs and clients for its account."""

    name: str
    outputs: Mapping[str, str]
    client: Callable[[str], Any]  # boto3 client for a service

    def output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            where = "the local cloud's template" if self.name == "local" else f"crm-{self.name}"
            raise EventsError(f"{where} has no output {key}: is the event backbone deployed?")
        return value


def local_stage(state_dir: Path) -> Stage:
    """The running local cloud, from the local.json that `crm dev` writes."""
    from infra.aws import boto_client
    from infra.dev import Running

    running = Running.load(state_dir / "local.json")
    if not running.outputs:
        raise EventsError("the running local cloud does not list its outputs: restart `crm dev`")

    def client(service: str) -> Any:
        # Lambda's Invoke API is served by the local cloud's gateway, not by moto.
        url = running.api_url if service == "lambda" else running.endpoint_url
        return boto_client(service, url)

    return Stage("local", running.outputs, client)


def deployed_stage(stage: str) -> Stage:
    """The stack `crm-<stage>` with the default boto3 session's credentials."""
    import boto3

    session = boto3.session.Session()
    stacks = session.client("cloudformation").describe_stacks(StackName=f"crm-{stage}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks["Stacks"][0].get("Outputs", [])}

    def client(service: str) -> Any:
        return session.client(service)  # type: ignore[call-overload]

    return Stage(stage, outputs, client)


def stage_of(args: argparse.Namespace) -> Stage:
    if args.stage and args.stage != "local":
        return deployed_stage(args.stage)
    state_dir = Path(args.state_dir) if args.state_dir else Path(args.root) / ".crm"
    return local_stage(state_dir)


# Signals -----------------------------------------------------------------------------------
@contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM raises _Stopped (in the main thread; elsewhere signals are not ours)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done (cleaning up must not be cut short)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# tail --------------------------------------------------------------------------------------
def tail_pattern(sources: Sequence[str], detail_types: Sequence[str]) -> dict[str, Any]:
    """The temporary rule's pattern: every crm.* event, or the sources and types asked for."""
    pattern: dict[str, Any] = {"source": list(sources)} if sources else dict(TAIL_PATTERN)
    if detail_types:
        pattern["detail-type"] = list(detail_types)
    return pattern


def queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """Lets EventBridge send to the queue for this rule only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventsTail",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


class Tail:
    """A temporary rule on a bus and the queue it fills; `close` removes both."""

    def __init__(self, stage: Stage, bus: str, pattern: Mapping[str, Any]) -> None:
        self.bus = bus
        self.pattern = dict(pattern)
        self.name = f"crm-{stage.name}-tail-{secrets.token_hex(4)}"
        self._events = stage.client("events")
        self._sqs = stage.client("sqs")
        self._rule = self._queue = self._target = False  # may exist: to remove on close
        self.queue_url: str | None = None

    def open(self) -> None:
        # Each flag is raised before its call: interrupted mid-call, the thing may exist.
        self._rule = True
        rule_arn = self._events.put_rule(
            Name=self.name,
            EventBusName=self.bus,
            EventPattern=json.dumps(self.pattern),
            State="ENABLED",
            Description="crm events tail: temporary, deleted when the tail stops",
        )["RuleArn"]
        self._queue = True
        self.queue_url = self._sqs.create_queue(
            QueueName=self.name,
            Attributes={"MessageRetentionPeriod": str(TAIL_RETENTION_S)},
            tags={"crm:purpose": "events-tail"},
        )["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self._sqs.set_queue_attributes(
            QueueUrl=self.queue_url,
            Attributes={"Policy": json.dumps(queue_policy(queue_arn, rule_arn))},
        )
        self._target = True
        answer = self._events.put_targets(
            Rule=self.name,
            EventBusName=self.bus,
            Targets=[{"Id": "tail", "Arn": queue_arn, "InputTransformer": FULL_EVENT}],
        )
        if answer.get("FailedEntryCount"):
            raise EventsError(f"the tail's target was refused: {answer.get('FailedEntries')}")

    def receive(self, wait_s: int) -> list[dict[str, Any]]:
        """The events that arrived (waiting up to `wait_s`), oldest first; taken off the queue."""
        assert self.queue_url is not None
        messages = (
            self._sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s
            ).get("Messages")
            or []
        )
        events = []
        for message in messages:
            try:
                event = json.loads(message["Body"])
            except ValueError:
                event = {"unparsed": message["Body"]}
            for key in MOTO_ONLY_FIELDS:
                event.pop(key, None)
            events.append(event)
        if messages:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(messages)
                ],
            )
        return sorted(events, key=lambda e: str(e.get("time", "")))

    def close(self) -> list[str]:
        """Remove the target, the rule and the queue; what could not be removed."""
        left: list[str] = []
        if self._target:
            try:
                self._events.remove_targets(Rule=self.name, EventBusName=self.bus, Ids=["tail"])
                self._target = False
            except Exception as error:
                if not _gone(error):
                    left.append(f"target of rule {self.name}: {error}")
        if self._rule:
            try:
                self._events.delete_rule(Name=self.name, EventBusName=self.bus)
                self._rule = False
            except Exception as error:
                if not _gone(error):
                    left.append(f"rule {self.name} on {self.bus}: {error}")
        if self._queue:
            try:
                url = self.queue_url or self._sqs.get_queue_url(QueueName=self.name)["QueueUrl"]
                self._sqs.delete_queue(QueueUrl=url)
                self._queue = False
            except Exception as error:
                if not _gone(error):
                    left.append(f"queue {self.name}: {error}")
        return left


def _gone(error: Exception) -> bool:
    """The error says the thing does not exist (so there is nothing to remove)."""
    code = str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
    return code in _NOT_FOUND


def event_line(event: Mapping[str, Any]) -> str:
    """`time source detail-type tenant event_id detail` (tenant and id from the envelope)."""
    detail = event.get("detail")
    metadata = detail.get("metadata") if isinstance(detail, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    parts = [
        str(event.get("time", "-")),
        str(event.get("source", "-")),
        str(event.get("detail-type", "-")),
        str(metadata.get("tenant_id") or "-"),
        str(metadata.get("event_id") or "-"),
    ]
    if event.get("replay-name"):
        parts.append(f"[replay {event['replay-name']}]")
    parts.append(json.dumps(detail, separators=(",", ":"), ensure_ascii=False))
    return " ".join(parts)


def tail(
    stage: Stage,
    pattern: Mapping[str, Any],
    *,
    as_json: bool = False,
    count: int | None = None,
    timeout_s: float | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the bus's events until stopped; 1 if `count` was not reached in `timeout_s`."""
    out = out or sys.stdout
    err = err or sys.stderr
    bus = stage.output("EventBusName")
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    seen = 0
    watch = Tail(stage, bus, pattern)
    left_behind: list[str] = []
    with _sigterm_stops():
        try:
            watch.open()
            print(
                f"tailing {bus} for {json.dumps(pattern)} (rule and queue {watch.name}); "
                "Ctrl-C stops",
                file=err,
                flush=True,
            )
            while count is None or seen < count:
                wait = LONG_POLL_S
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    wait = max(0, min(LONG_POLL_S, int(left + 0.999)))
                for event in watch.receive(wait):
                    if count is not None and seen >= count:
                        break
                    text = json.dumps(event, ensure_ascii=False) if as_json else event_line(event)
                    out.write(text + "\n")
                    out.flush()
                    seen += 1
        except (KeyboardInterrupt, _Stopped):
            pass
        except BrokenPipeError:
            _quiet_stdout()
        finally:
            with _uninterrupted():
                left_behind = watch.close()
            for what in left_behind:
                print(f"crm events tail: not removed, delete it by hand: {what}", file=err)
    if left_behind:
        return 1
    return 1 if count is not None and seen < count else 0


def _quiet_stdout() -> None:
    """After a closed pipe (`crm events tail | head`), let the interpreter exit quietly."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# replay --dlq ------------------------------------------------------------------------------
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
            with _sigterm_stops():
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
        except (KeyboardInterrupt, _Stopped):
            tally.interrupted = True
        finally:
            with _uninterrupted():
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
        if dry:
            try:
                note = redrive.dry_run()
            except Exception as error:
                tally.failed += 1
                self.say(f"failed     {message_id}  {redrive.what}: {_text(error)}")
                return False
            tally.redriven += 1
            self.say(f"would      {message_id}  {redrive.what}" + (f": {note}" if note else ""))
            return False
        try:
            note = redrive.run()
        except Exception as error:
            tally.failed += 1
            self.say(f"failed     {message_id}  {redrive.what}: {_text(error)}")
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
        from infra.eventbridge import TargetInput

        if not rule_arn or not isinstance(event, dict):
            return event
        parts = rule_arn.split(":", 5)[-1].split("/")[1:]  # rule/[bus/]name
        bus, rule = (parts[0], parts[1]) if len(parts) == 2 else ("default", parts[-1])
        try:
            paginator = self.client("events").get_paginator("list_targets_by_rule")
            pages = paginator.paginate(Rule=rule, EventBusName=bus)
            targets = [t for page in pages for t in page["Targets"]]
        except Exception as error:
            if _gone(error):
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
    from infra.streams import lambda_record

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


# replay --archive ------------------------------------------------------------------------
def parse_time(text: str, now: datetime) -> datetime:
    """ISO 8601 (UTC when no offset is given), or `now`."""
    if text.strip().lower() == "now":
        return now
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise EventsError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_window(start: datetime, end: datetime, now: datetime) -> None:
    if start >= end:
        raise EventsError(f"--from ({start.isoformat()}) must be before --to ({end.isoformat()})")
    if end > now:
        raise EventsError(f"--to ({end.isoformat()}) is in the future: at most now")


def replay_name(stage: str, now: datetime) -> str:
    return f"crm-{stage}-{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def replay_archive(
    stage: Stage,
    start: datetime,
    end: datetime,
    rules: Sequence[str] = (),
    *,
    now: datetime | None = None,
    poll_s: float = REPLAY_POLL_S,
    out: TextIO | None = None,
) -> int:
    """Replay the archive's events of [start, end) onto the bus; 0 once COMPLETED."""
    out = out or sys.stdout
    now = now or datetime.now(UTC)
    check_window(start, end, now)
    events = stage.client("events")
    archive_name = stage.output("EventArchiveName")
    try:
        archive = events.describe_archive(ArchiveName=archive_name)
    except events.exceptions.ResourceNotFoundException:
        raise EventsError(f"no archive {archive_name}") from None
    bus_arn = str(archive["EventSourceArn"])
    bus = bus_arn.rsplit("/", 1)[-1]
    destination: dict[str, Any] = {"Arn": bus_arn}
    if rules:
        arns = []
        for rule in rules:
            try:
                arns.append(events.describe_rule(Name=rule, EventBusName=bus)["Arn"])
            except events.exceptions.ResourceNotFoundException:
                raise EventsError(f"no rule {rule} on {bus}") from None
        destination["FilterArns"] = arns
    name = replay_name(stage.name, now)
    events.start_replay(
        ReplayName=name,
        Description=f"crm events replay --archive ({len(rules) or 'all'} rule(s))",
        EventSourceArn=archive["ArchiveArn"],
        EventStartTime=start,
        EventEndTime=end,
        Destination=destination,
    )
    only = f", rules {', '.join(rules)}" if rules else ""
    out.write(
        f"replay {name}: {archive_name} [{start.isoformat()}, {end.isoformat()}) onto {bus}{only}\n"
    )
    out.flush()
    state, last_state = "", None
    try:
        with _sigterm_stops():
            while True:
                described = events.describe_replay(ReplayName=name)
                state = str(described.get("State", ""))
                if state != last_state:
                    replayed = described.get("EventLastReplayedTime")
                    upto = f" (replayed up to {replayed.isoformat()})" if replayed else ""
                    out.write(f"{name}: {state}{upto}\n")
                    out.flush()
                    last_state = state
                if state in REPLAY_DONE:
                    if state != "COMPLETED" and described.get("StateReason"):
                        out.write(f"{name}: {described['StateReason']}\n")
                    break
                time.sleep(poll_s)
    except (KeyboardInterrupt, _Stopped):
        out.write(
            f"{name} goes on: `aws events describe-replay --replay-name {name}` follows it, "
            f"`aws events cancel-replay --replay-name {name}` stops it\n"
        )
        return 130
    return 0 if state == "COMPLETED" else 1


# The commands ------------------------------------------------------------------------------
def _guarded(run: Callable[[], int]) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return run()
    except (KeyboardInterrupt, _Stopped):
        return 130
    except EventsError as error:
        print(f"crm events: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"crm events: {error}", file=sys.stderr)
        return 2


def cmd_tail(args: argparse.Namespace) -> int:
    def run() -> int:
        stage = stage_of(args)
        pattern = tail_pattern(args.source or [], args.detail_type or [])
        return tail(stage, pattern, as_json=args.json, count=args.count, timeout_s=args.timeout)

    return _guarded(run)


def cmd_replay(args: argparse.Namespace) -> int:
    def run() -> int:
        if args.dlq is not None:
            if args.start or args.end or args.rule:
                raise EventsError("--from, --to and --rule go with --archive, not --dlq")
            stage = stage_of(args)
            tally = DlqReplay(stage).run(args.dlq, max_messages=args.max, dry_run=args.dry_run)
            if args.dry_run:
                summary = (
                    f"{args.dlq}: would re-drive {tally.redriven}, would fail {tally.failed}, "
                    f"kept {tally.kept} (dry run: nothing sent, nothing deleted)"
                )
            else:
                summary = (
                    f"{args.dlq}: re-driven {tally.redriven}, failed {tally.failed}, "
                    f"kept {tally.kept}"
                )
            print(summary + (" (interrupted)" if tally.interrupted else ""), flush=True)
            if tally.interrupted:
                return 130
            return 1 if tally.failed else 0
        if not (args.start and args.end):
            raise EventsError("--archive needs --from and --to")
        if args.max is not None or args.dry_run:
            raise EventsError("--max and --dry-run go with --dlq, not --archive")
        now = datetime.now(UTC)
        start, end = parse_time(args.start, now), parse_time(args.end, now)
        check_window(start, end, now)  # before looking for the stage
        return replay_archive(stage_of(args), start, end, args.rule or [], now=now)

    return _guarded(run)


def register(commands: Any) -> None:
    """`crm events ...` under the `crm` command's subparsers."""
    events = commands.add_parser("events", help="the stage's event bus: tail, replay")
    actions = events.add_subparsers(dest="action", required=True)

    tail_cmd = actions.add_parser("tail", help="print the bus's events as they arrive")
    tail_cmd.add_argument("--stage", help="a deployed stage instead of the local cloud")
    tail_cmd.add_argument(
        "--source", action="append", help="only this source (repeatable; default crm.*)"
    )
    tail_cmd.add_argument(
        "--detail-type", action="append", help="only this detail-type (repeatable)"
    )
    tail_cmd.add_argument("--json", action="store_true", help="each event as JSON, one a line")
    tail_cmd.add_argument("--count", type=int, help="stop after N events (exit 1 if fewer)")
    tail_cmd.add_argument("--timeout", type=float, help="stop after S seconds")
    tail_cmd.set_defaults(run=cmd_tail)

    replay = actions.add_parser(
        "replay", help="deliver again: a dead-letter queue's messages, or an archive's events"
    )
    source = replay.add_mutually_exclusive_group(required=True)
    source.add_argument("--dlq", metavar="NAME", help="a dead-letter queue's name, URL or ARN")
    source.add_argument("--archive", action="store_true", help="the stage's archive")
    replay.add_argument("--stage", help="a deployed stage instead of the local cloud")
    replay.add_argument("--max", type=int, help="--dlq: at most N messages")
    replay.add_argument("--dry-run", action="store_true", help="--dlq: say, send nothing")
    replay.add_argument("--from", dest="start", metavar="TIME", help="--archive: ISO 8601")
    replay.add_argument("--to", dest="end", metavar="TIME", help="--archive: ISO 8601, or now")
    replay.add_argument(
        "--rule", action="append", help="--archive: only to this rule of the bus (repeatable)"
    )
    replay.set_defaults(run=cmd_replay)
