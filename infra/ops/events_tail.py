"""`crm events tail`: follow a stage's bus, printing each event as it arrives.

tail: a temporary SQS queue (its policy lets only this rule send) and a temporary rule on
the bus, `crm-<stage>-tail-<random>`, whose target asks for the whole event
(`<aws.events.event.json>`); each event is printed as it arrives. The rule, its target and
the queue are deleted when the tail ends: --count or --timeout reached, Ctrl-C, SIGTERM,
an error, or a closed pipe.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from infra.ops.signals import Stopped, sigterm_stops, uninterrupted
from infra.ops.stage import EventsError, Stage, gone

TAIL_PATTERN: dict[str, Any] = {"source": [{"prefix": "crm."}]}
# The whole event, as delivered; moto also needs it to keep `account` and quotes intact.
FULL_EVENT = {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"}
MOTO_ONLY_FIELDS = ("ingestion-time",)
TAIL_RETENTION_S = 3600  # a tail queue left behind by a killed process empties itself
LONG_POLL_S = 20


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
                if not gone(error):
                    left.append(f"target of rule {self.name}: {error}")
        if self._rule:
            try:
                self._events.delete_rule(Name=self.name, EventBusName=self.bus)
                self._rule = False
            except Exception as error:
                if not gone(error):
                    left.append(f"rule {self.name} on {self.bus}: {error}")
        if self._queue:
            try:
                url = self.queue_url or self._sqs.get_queue_url(QueueName=self.name)["QueueUrl"]
                self._sqs.delete_queue(QueueUrl=url)
                self._queue = False
            except Exception as error:
                if not gone(error):
                    left.append(f"queue {self.name}: {error}")
        return left


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
    with sigterm_stops():
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
        except (KeyboardInterrupt, Stopped):
            pass
        except BrokenPipeError:
            _quiet_stdout()
        finally:
            with uninterrupted():
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
