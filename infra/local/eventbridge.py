"""EventBridge rules with Lambda targets, delivered locally; and the recent events page.

moto keeps the buses and rules and matches event patterns, but a Lambda target would make
it try to run Docker. So every Lambda target of a rule gets a local *shadow* instead: an
SQS queue (`crm-local-shadow-<rule>-<function>`) put on the rule as its target, which moto
fills with each matching event. A poller per shadow queue (long poll 1 s, batches of 10)
hands each event to the async invoker, as EventBridge invokes Lambda asynchronously, then
deletes the message. From there the function's own async configuration applies: retries,
event age, OnFailure / OnSuccess destinations, DLQ (infra/local/async_invoke.py).

Where the rules come from:
- a function's `EventBridgeRule` (or `CloudWatchEvent`) events, as SAM expands them: the
  rule `<Function><Event>` (or `RuleName`) on `EventBusName` (a name or an ARN; the default
  bus if absent) with the event's `Pattern`, `State` or `Enabled`, and one Lambda target
  with the event's `Input` / `InputPath` / `InputTransformer`, `RetryPolicy` and
  `DeadLetterConfig` (`Arn`, or `Type: SQS`: the queue SAM would create, logical id
  `QueueLogicalId` or `<Function><Event>Queue`, is created here);
- `AWS::Events::Rule` resources with an `EventPattern`: each target whose `Arn` is a Lambda
  function gets its shadow. Their other targets (SQS queues, buses, log groups) are moto's
  own and are put by the rule's creator in provision.py. Scheduled rules belong to the
  schedules service.

The event a function receives is the EventBridge event as EventBridge delivers it:
version, id, detail-type, source, account, time (ISO 8601, seconds), region, resources,
detail (and replay-name for a replayed event). moto's default SQS message drops `account`
and breaks on a quote in a string field, so the shadow target asks moto for the whole event
(`InputTemplate: <aws.events.event.json>`) and the poller removes the one field that is
moto's own (`ingestion-time`). The rule's input settings are applied here, after matching.

Target delivery failures: a target function that does not exist (the async invoker refuses
the event) is retried as the target's `RetryPolicy` says (`MaximumRetryAttempts`, default
185; `MaximumEventAgeInSeconds`, default 86400), `retry_delays` apart (the async invoker's
local delays), then the event goes to the target's `DeadLetterConfig` queue with
EventBridge's message attributes (RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE,
EXHAUSTED_RETRY_CONDITION, RETRY_ATTEMPTS), or is logged as dropped. A function's own
errors are not delivery failures: the async invoker handles them.

A rule whose state is DISABLED (in the template, or by `disable-rule` at run time) delivers
nothing: moto still fills its shadow queue, and the poller drops those messages.

`/_local/events`: one catch-all rule per bus of the stage (the default bus, the template's
buses and any bus a rule names) fills a shadow queue whose poller keeps the last
`RECENT_EVENTS` events in memory. The page answers JSON (the events as delivered, newest
first) to `Accept: application/json` or `?format=json`, and HTML otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.event_input import TargetInput
from infra.local.context import CloudContext, Service
from infra.local.pages import wants_json
from infra.topology import ACCOUNT_ID, REGION, FunctionSpec, Physical, Resolver

EVENTS_PAGE = "/_local/events"
RECENT_EVENTS = 500
SHADOW_PREFIX = "crm-local-shadow"
CATCH_ALL_PREFIX = "crm-local-events"
CATCH_ALL_PATTERN = {"source": [{"prefix": ""}]}
# moto fills the target's queue with the whole event, `ingestion-time` included.
FULL_EVENT = {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"}
MOTO_ONLY_FIELDS = ("ingestion-time",)
LONG_POLL_S = 1
DEFAULT_MAX_RETRIES = 185  # EventBridge's default RetryPolicy
DEFAULT_MAX_EVENT_AGE_S = 86_400
RULE_EVENT_TYPES = ("EventBridgeRule", "CloudWatchEvent")


# What the template declares ----------------------------------------------------------------
@dataclass(frozen=True)
class LambdaTarget:
    """One Lambda target of one rule, and the shadow queue that stands for it."""

    rule_name: str
    bus_name: str
    target_id: str
    function_arn: str
    function: str  # the template function's logical id, or the ARN when it has none
    input: TargetInput = field(default_factory=TargetInput)
    dead_letter_arn: str | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    max_event_age_s: int = DEFAULT_MAX_EVENT_AGE_S
    source: str = ""  # where the template declares it, for messages

    @property
    def rule_arn(self) -> str:
        return rule_arn(self.bus_name, self.rule_name)

    @property
    def shadow_queue(self) -> str:
        return _limited(f"{SHADOW_PREFIX}-{self.rule_name}-{self.function.split(':')[-1]}", 80)

    @property
    def shadow_target_id(self) -> str:
        return _limited(f"{SHADOW_PREFIX}-{self.target_id}", 64)


@dataclass(frozen=True)
class RuleSpec:
    """A rule to put on moto: its pattern, its state, and its Lambda targets."""

    name: str
    bus_name: str
    pattern: Mapping[str, Any]
    state: str
    targets: tuple[LambdaTarget, ...]
    create_dead_letter_queue: tuple[str, str] | None = None  # (logical id, queue name)
    declared: bool = False  # an AWS::Events::Rule resource: provisioning may have created it


def rule_arn(bus_name: str, rule_name: str) -> str:
    bus = "" if bus_name == "default" else f"{bus_name}/"
    return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{bus}{rule_name}"


def bus_name(name_or_arn: Any) -> str:
    text = str(name_or_arn or "default")
    return text.rsplit("/", 1)[-1] if text.startswith("arn:") else text


def _function_key(arn: str, functions: Iterable[FunctionSpec]) -> str:
    """The logical id of the template function an ARN names (qualified or not), or the ARN."""
    unqualified = ":".join(arn.split(":")[:7])
    for spec in functions:
        if unqualified in (spec.arn, spec.name) or arn == spec.logical_id:
            return spec.logical_id
    return arn


def _retry(props: Mapping[str, Any]) -> tuple[int, int]:
    policy = props.get("RetryPolicy") or {}
    return (
        int(policy.get("MaximumRetryAttempts", DEFAULT_MAX_RETRIES)),
        int(policy.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_S)),
    )


def _sam_target_id(logical_id: str) -> str:
    """SAM's generated target id: the rule's logical id and `LambdaTarget`, within 64."""
    target = f"{logical_id}LambdaTarget"
    return target if len(target) <= 64 else target[:64]


def rules_of(
    template: Mapping[str, Any],
    resolver: Resolver,
    functions: Iterable[FunctionSpec],
    log: Callable[[str], None] = print,
) -> list[RuleSpec]:
    """Every rule of the stage with a Lambda target, from SAM events and AWS::Events::Rule."""
    functions = list(functions)
    rules: list[RuleSpec] = []
    for spec in functions:
        for event_name, event in spec.events.items():
            if event.get("Type") not in RULE_EVENT_TYPES:
                continue
            props = event.get("Properties") or {}
            logical = f"{spec.logical_id}{event_name}"
            if not props.get("Pattern"):
                if "Schedule" not in props:
                    log(f"[events] {logical}: no Pattern, no rule (CloudFormation needs one)")
                continue
            name = str(props.get("RuleName") or logical)
            bus = bus_name(props.get("EventBusName"))
            state = str(props.get("State") or "ENABLED")
            if props.get("Enabled") is False:
                state = "DISABLED"
            dead_letter = props.get("DeadLetterConfig") or {}
            create_dlq = None
            dlq_arn = dead_letter.get("Arn")
            if not dlq_arn and dead_letter.get("Type") == "SQS":
                queue_logical = str(dead_letter.get("QueueLogicalId") or f"{logical}Queue")
                queue_name = f"crm-local-{queue_logical}"
                create_dlq = (queue_logical, queue_name)
                dlq_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_name}"
            retries, age = _retry(props)
            target = LambdaTarget(
                rule_name=name,
                bus_name=bus,
                target_id=str((props.get("Target") or {}).get("Id") or _sam_target_id(logical)),
                function_arn=spec.arn,
                function=spec.logical_id,
                input=TargetInput.of(props),
                dead_letter_arn=dlq_arn,
                max_retries=retries,
                max_event_age_s=age,
                source=f"{spec.logical_id}.Events.{event_name}",
            )
            rules.append(RuleSpec(name, bus, props["Pattern"], state, (target,), create_dlq))
    for logical, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Events::Rule":
            continue
        condition = resource.get("Condition")
        if condition and not resolver.condition(condition):
            continue
        props = resolver.resolve(resource.get("Properties") or {})
        pattern = props.get("EventPattern")
        if not pattern:
            continue  # a scheduled rule: the schedules service runs those
        if isinstance(pattern, str):
            pattern = json.loads(pattern)
        name = str(props.get("Name") or logical)  # as provision.py names it
        bus = bus_name(props.get("EventBusName"))
        targets = []
        for target in props.get("Targets") or []:
            arn = str(target.get("Arn", ""))
            if not arn.startswith("arn:aws:lambda:"):
                continue
            retries, age = _retry(target)
            targets.append(
                LambdaTarget(
                    rule_name=name,
                    bus_name=bus,
                    target_id=str(target["Id"]),
                    function_arn=arn,
                    function=_function_key(arn, functions),
                    input=TargetInput.of(target),
                    dead_letter_arn=(target.get("DeadLetterConfig") or {}).get("Arn"),
                    max_retries=retries,
                    max_event_age_s=age,
                    source=f"{logical}.Targets.{target['Id']}",
                )
            )
        if targets:
            state = str(props.get("State") or "ENABLED")
            rules.append(RuleSpec(name, bus, pattern, state, tuple(targets), declared=True))
    return rules


# The service ------------------------------------------------------------------------------
class _ShadowPoller:
    """Receives a shadow queue's events and hands each to `handle`, then deletes them."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handle: Callable[[dict[str, Any]], None],
        stopped: threading.Event,
        log: Callable[[str], None],
        name: str,
        before_batch: Callable[[], bool] | None = None,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handle = handle
        self.stopped = stopped
        self.log = log
        self.before_batch = before_batch  # False: drop this batch (the rule is disabled)
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                received = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=LONG_POLL_S
                )
            except Exception as error:
                if not self.stopped.is_set():
                    self.log(f"[events] {self.thread.name}: receive failed: {error!r}")
                    self.stopped.wait(1.0)
                continue
            messages = received.get("Messages") or []
            if not messages:
                continue
            deliver = self.before_batch() if self.before_batch is not None else True
            for message in messages:
                if not deliver:
                    continue
                try:
                    event = json.loads(message["Body"])
                    for key in MOTO_ONLY_FIELDS:
                        event.pop(key, None)
                    self.handle(event)
                except Exception as error:
                    self.log(f"[events] {self.thread.name}: event not handled: {error!r}")
            try:
                self.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                        for n, m in enumerate(messages)
                    ],
                )
            except Exception as error:
                self.log(f"[events] {self.thread.name}: delete failed: {error!r}")


class EventBridgeDelivery:
    """Rules' Lambda targets and the recent events page, on shadow queues."""

    def __init__(self, ctx: CloudContext, rules: list[RuleSpec], buses: list[str]) -> None:
        self.ctx = ctx
        self.rules = rules
        self.buses = buses
        self.recent: deque[tuple[str, dict[str, Any]]] = deque(maxlen=RECENT_EVENTS)
        self._recent_lock = threading.Lock()
        self._stopped = threading.Event()
        self._events = ctx.client("events")
        self._sqs = ctx.client("sqs")
        self._pollers: list[_ShadowPoller] = []
        self._created_rules: list[tuple[str, str]] = []  # (bus, rule) put here
        self._shadow_targets: list[tuple[str, str, str]] = []  # (bus, rule, target id)
        self._shadow_queues: list[str] = []  # urls
        self._queue_names: set[str] = set()
        self._retries: set[threading.Thread] = set()
        self._lock = threading.Lock()

    # Building: rules, shadow queues and targets on moto ----------------------------------
    def create(self) -> None:
        for rule in self.rules:
            try:
                self._create_rule(rule)
            except Exception as error:
                sources = ", ".join(t.source for t in rule.targets)
                self.ctx.log(f"[events] {sources}: rule {rule.name} not created: {error}")
        for bus in self.buses:
            name = _limited(f"{CATCH_ALL_PREFIX}-{bus}", 64)
            try:
                self._events.put_rule(
                    Name=name, EventBusName=bus, EventPattern=json.dumps(CATCH_ALL_PATTERN)
                )
                self._created_rules.append((bus, name))
                url = self._shadow(bus, name, _limited(f"{CATCH_ALL_PREFIX}-{bus}", 80), name)
            except Exception as error:
                self.ctx.log(f"[events] bus {bus}: recent events not kept: {error}")
                continue
            self._pollers.append(
                _ShadowPoller(
                    self._sqs,
                    url,
                    functools.partial(self._keep, bus),
                    self._stopped,
                    self.ctx.log,
                    name=f"events-{bus}",
                )
            )

    def _create_rule(self, rule: RuleSpec) -> None:
        if not (rule.declared and self._exists(rule)):
            self._events.put_rule(
                Name=rule.name,
                EventBusName=rule.bus_name,
                EventPattern=json.dumps(rule.pattern),
                State=rule.state,
            )
            self._created_rules.append((rule.bus_name, rule.name))
        if rule.create_dead_letter_queue is not None:
            logical, queue = rule.create_dead_letter_queue
            url = self._sqs.create_queue(QueueName=queue)["QueueUrl"]
            arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue}"
            physical = self.ctx.resolver.physical
            if isinstance(physical, dict):  # so that the rest of the stage can resolve it
                physical.setdefault(
                    logical, Physical(ref=url, attributes={"Arn": arn, "QueueName": queue})
                )
        for target in rule.targets:
            url = self._shadow(
                rule.bus_name, rule.name, self._queue_name(target), target.shadow_target_id
            )
            self._pollers.append(
                _ShadowPoller(
                    self._sqs,
                    url,
                    functools.partial(self._deliver_new, target),
                    self._stopped,
                    self.ctx.log,
                    name=f"events-{rule.name}-{target.target_id}",
                    before_batch=functools.partial(self._enabled, rule),
                )
            )

    def _queue_name(self, target: LambdaTarget) -> str:
        """`crm-local-shadow-<rule>-<function>`, made longer only if that is taken (the same
        function twice on one rule, or rules of one name on two buses)."""
        for name in (
            target.shadow_queue,
            _limited(f"{target.shadow_queue}-{target.target_id}", 80),
            _limited(
                f"{SHADOW_PREFIX}-{target.bus_name}-{target.rule_name}-{target.target_id}", 80
            ),
        ):
            if name not in self._queue_names:
                break
        self._queue_names.add(name)
        return name

    def _shadow(self, bus: str, rule: str, queue: str, target_id: str) -> str:
        url: str = self._sqs.create_queue(QueueName=queue)["QueueUrl"]
        self._shadow_queues.append(url)
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue}"
        answer = self._events.put_targets(
            Rule=rule,
            EventBusName=bus,
            Targets=[{"Id": target_id, "Arn": arn, "InputTransformer": FULL_EVENT}],
        )
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"shadow target refused: {answer.get('FailedEntries')}")
        self._shadow_targets.append((bus, rule, target_id))
        return url

    def _exists(self, rule: RuleSpec) -> bool:
        try:
            self._events.describe_rule(Name=rule.name, EventBusName=rule.bus_name)
        except self._events.exceptions.ResourceNotFoundException:
            return False
        return True

    def _enabled(self, rule: RuleSpec) -> bool:
        try:
            described = self._events.describe_rule(Name=rule.name, EventBusName=rule.bus_name)
        except Exception:
            return False  # deleted at run time
        return str(described.get("State", "ENABLED")) == "ENABLED"

    # Delivery ----------------------------------------------------------------------------
    def _deliver_new(self, target: LambdaTarget, event: dict[str, Any]) -> None:
        self._deliver(target, event, 1, time.monotonic())

    def _deliver(
        self, target: LambdaTarget, event: dict[str, Any], attempt: int, since: float
    ) -> None:
        payload = target.input.payload(event, target.rule_name, target.rule_arn)
        try:
            self.ctx.async_invoker.submit(target.function, payload)
        except Exception as error:
            self._failed(target, event, attempt, since, error)

    def _failed(
        self,
        target: LambdaTarget,
        event: dict[str, Any],
        attempt: int,
        since: float,
        error: Exception,
    ) -> None:
        """EventBridge's retries of a failed delivery, then the target's dead-letter queue."""
        delays = self.ctx.async_invoker.retry_delays or (1.0,)
        delay = delays[min(attempt - 1, len(delays) - 1)]
        if attempt <= target.max_retries:
            if time.monotonic() + delay - since <= target.max_event_age_s:
                worker = threading.Thread(
                    target=self._retry_later,
                    args=(target, event, attempt, since, delay),
                    name=f"events-retry-{target.target_id}",
                    daemon=True,
                )
                with self._lock:
                    self._retries.add(worker)
                worker.start()
                return
            condition = "MaximumEventAgeExceeded"
        else:
            condition = "MaximumRetryAttemptsExhausted"
        code, message = _error_of(target, error)
        self.ctx.log(
            f"[events] {target.source}: delivery to {target.function_arn} failed after "
            f"{attempt} attempt(s) ({condition}): {code}"
        )
        if not target.dead_letter_arn:
            self.ctx.log(f"[events] {target.source}: no DeadLetterConfig: event dropped")
            return
        attributes = {
            "RULE_ARN": target.rule_arn,
            "TARGET_ARN": target.function_arn,
            "ERROR_CODE": code,
            "ERROR_MESSAGE": message,
            "EXHAUSTED_RETRY_CONDITION": condition,
            "RETRY_ATTEMPTS": str(attempt - 1),
        }
        try:
            queue = target.dead_letter_arn.rsplit(":", 1)[-1]
            url = self._sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            self._sqs.send_message(
                QueueUrl=url,
                MessageBody=json.dumps(event),
                MessageAttributes={
                    k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
                },
            )
        except Exception as dead:
            self.ctx.log(f"[events] {target.source}: dead-letter queue failed: {dead!r}")

    def _retry_later(
        self, target: LambdaTarget, event: dict[str, Any], attempt: int, since: float, delay: float
    ) -> None:
        try:
            if not self._stopped.wait(delay):
                self._deliver(target, event, attempt + 1, since)
        finally:
            with self._lock:
                self._retries.discard(threading.current_thread())

    # Recent events -----------------------------------------------------------------------
    def _keep(self, bus: str, event: dict[str, Any]) -> None:
        with self._recent_lock:
            self.recent.appendleft((bus, event))

    def recent_events(self) -> list[tuple[str, dict[str, Any]]]:
        with self._recent_lock:
            return list(self.recent)

    def page(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        events = self.recent_events()
        if wants_json(request):
            body = json.dumps([event for _bus, event in events]).encode()
            return 200, {"Content-Type": "application/json", "Cache-Control": "no-store"}, body
        return (
            200,
            {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
            _events_html(events, self.buses).encode(),
        )

    # Life --------------------------------------------------------------------------------
    def idle(self) -> bool:
        """Every event matched so far is handed on: shadow queues empty, no retry waiting."""
        with self._lock:
            if self._retries:
                return False
        for url in self._shadow_queues:
            counts = self._sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            if any(int(count) for count in counts.values()):
                return False
        return True

    def start(self) -> None:
        for poller in self._pollers:
            poller.thread.start()

    def stop(self) -> None:
        self._stopped.set()
        deadline = time.monotonic() + LONG_POLL_S + 3.0
        for poller in self._pollers:
            if poller.thread.is_alive():
                poller.thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            retries = list(self._retries)
        for worker in retries:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._clean_up()

    def _clean_up(self) -> None:
        """Take the shadows off moto, so that the same process can start another cloud."""
        for bus, rule, target_id in self._shadow_targets:
            try:
                self._events.remove_targets(Rule=rule, EventBusName=bus, Ids=[target_id])
            except Exception as error:
                self.ctx.log(f"[events] {rule}: shadow target not removed: {error!r}")
        for bus, rule in self._created_rules:
            try:
                self._events.delete_rule(Name=rule, EventBusName=bus)
            except Exception as error:
                self.ctx.log(f"[events] {rule}: rule not deleted: {error!r}")
        for url in self._shadow_queues:
            try:
                self._sqs.delete_queue(QueueUrl=url)
            except Exception as error:
                self.ctx.log(f"[events] {url}: shadow queue not deleted: {error!r}")


def _error_of(target: LambdaTarget, error: Exception) -> tuple[str, str]:
    if isinstance(error, KeyError):
        return "ResourceNotFoundException", f"Function not found: {target.function_arn}"
    return type(error).__name__, str(error)[:1000]


def _limited(name: str, limit: int) -> str:
    """A name AWS accepts for a queue or target id: [A-Za-z0-9_-], at most `limit` long."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    if len(clean) <= limit:
        return clean
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{clean[: limit - 9]}-{digest}"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1f2328; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem;
         border-bottom: 1px solid #d0d7de; font-size: .9rem; }
pre { margin: 0; white-space: pre-wrap; font-size: .8rem; }
.muted { color: #656d76; }
"""


def _events_html(events: list[tuple[str, dict[str, Any]]], buses: list[str]) -> str:
    rows = []
    for bus, event in events:
        rows.append(
            "<tr>"
            f"<td>{html.escape(str(event.get('time', '')))}</td>"
            f"<td>{html.escape(bus)}</td>"
            f"<td>{html.escape(str(event.get('source', '')))}</td>"
            f"<td>{html.escape(str(event.get('detail-type', '')))}</td>"
            f"<td><pre>{html.escape(json.dumps(event.get('detail'), indent=2))}</pre>"
            f"<span class=muted>{html.escape(str(event.get('id', '')))}</span></td>"
            "</tr>"
        )
    body = "".join(rows) if rows else "<tr><td colspan=5 class=muted>No event yet.</td></tr>"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Recent events (local)</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Recent events</h1>
<p class=muted>{len(events)} event(s), newest first (at most {RECENT_EVENTS}), on the buses
{html.escape(", ".join(buses))}. As JSON: <code>Accept: application/json</code> or
<code>?format=json</code>.</p>
<table>
<thead><tr><th>Time</th><th>Bus</th><th>Source</th><th>Detail type</th><th>Detail</th></tr></thead>
<tbody>
{body}
</tbody>
</table>
</body>
</html>
"""


def stage_buses(
    template: Mapping[str, Any], resolver: Resolver, rules: list[RuleSpec]
) -> list[str]:
    """The default bus, the template's buses, and any other bus a rule names."""
    buses = ["default"]
    for logical, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") == "AWS::Events::EventBus" and logical in resolver.physical:
            buses.append(resolver.physical[logical].ref)
    buses += [rule.bus_name for rule in rules]
    return list(dict.fromkeys(buses))


def build(ctx: CloudContext) -> Service | None:
    """EventBridge delivery for the stage, and the `/_local/events` page."""
    rules = rules_of(ctx.template, ctx.resolver, ctx.functions, ctx.log)
    delivery = EventBridgeDelivery(ctx, rules, stage_buses(ctx.template, ctx.resolver, rules))
    delivery.create()
    ctx.pages[EVENTS_PAGE] = delivery.page
    return delivery
