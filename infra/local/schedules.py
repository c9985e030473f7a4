"""Schedules: the template's `Schedule` and `ScheduleV2` events, and the EventBridge
Scheduler schedules that functions create at run time.

moto stores Scheduler schedules but never fires them, and has no clock for rules; this
service is that clock. It ticks every half second (`tick_s`) and reads the time from an
injectable `clock`, so that tests can move time on instead of waiting minutes.

`Schedule` (an EventBridge rule with a schedule expression, always in UTC): `rate()` fires
one period after the local cloud starts and every period after; `cron()` at each matching
minute (infra/local/schedule_expressions.py says which cron features are supported). Each firing
is an asynchronous invoke (`ctx.async_invoker`: Lambda's retries, DLQ and destinations) of
the scheduled event EventBridge sends (`"detail-type": "Scheduled Event"`, `"source":
"aws.events"`, `"resources": [<rule ARN>]`, `"time"`: the scheduled minute), or of the
event's `Input` when it has one. `Enabled: false` or `State: DISABLED` never fires.

`ScheduleV2` (EventBridge Scheduler): created on the local endpoint when the service starts
(as SAM creates an AWS::Scheduler::Schedule), then fired like any Scheduler schedule.

Scheduler schedules (from the template or created at run time with boto3): every tick the
service lists the schedules of every group (`list_schedules`, then `get_schedule` for those
new or modified since the last look) and fires those that are due:
- `at(...)` in `ScheduleExpressionTimezone`: at most once per name, group, expression and
  time zone, so an update to a new time fires again; a time already past fires at once.
  `ActionAfterCompletion: DELETE` deletes the schedule after it fired.
- `rate()` and `cron()`: as above, from `StartDate` (or when first seen) until `EndDate`.
- `State: DISABLED` does not fire.
- targets: a Lambda function (an asynchronous invoke of the `Input`, `{}` without one), an
  SQS queue (`send_message`, FIFO with `SqsParameters.MessageGroupId`), an SNS topic, or an
  event bus (`put_events` with `EventBridgeParameters`). `Input` gets Scheduler's context
  attributes (`<aws.scheduler.schedule-arn>`, `<aws.scheduler.scheduled-time>`,
  `<aws.scheduler.execution-id>`, `<aws.scheduler.attempt-number>`).
- a delivery that fails (an unknown function or queue) goes to the target's
  `DeadLetterConfig.Arn` with the error in message attributes. Scheduler's own
  `RetryPolicy` is not needed locally: what it retries is the call to the target, which
  only fails here for good; the function's own retries are Lambda's (async_invoker).

Not emulated: `FlexibleTimeWindow` (a schedule fires at the start of its window), universal
targets (`arn:aws:scheduler:::aws-sdk:...`) and targets other than the four above, the
rule's `RetryPolicy`, SAM's generated DLQ (`DeadLetterConfig.Type: SQS`; an `Arn` works),
firings missed while the local cloud was stopped (Scheduler's state is not saved across
restarts, nor is which `at()` schedules fired), and the exactness of AWS's timing (a schedule
fires within a tick of its time here; AWS promises about a minute).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from infra.local.context import CloudContext
from infra.local.destinations import send, service_of
from infra.local.schedule_expressions import At, Expression, Rate, parse
from infra.topology import ACCOUNT_ID, REGION, FunctionSpec

TICK_S = 0.5


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_event(rule_arn: str, when: datetime) -> dict[str, Any]:
    """The event an EventBridge schedule rule sends its targets."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": _iso(when),
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    }


# The template's Schedule events (EventBridge rules) --------------------------------------
@dataclass
class RuleSchedule:
    function: FunctionSpec
    event_id: str
    name: str
    expression: Expression
    input: Any = None
    has_input: bool = False
    enabled: bool = True
    dead_letter_arn: str | None = None
    next_at: datetime | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{self.name}"

    @classmethod
    def of(cls, function: FunctionSpec, event_id: str, props: Mapping[str, Any]) -> RuleSchedule:
        state = props.get("State")
        enabled = props.get("Enabled", True)
        raw_input = props.get("Input")
        return cls(
            function=function,
            event_id=event_id,
            name=str(props.get("Name") or f"{function.logical_id}{event_id}"),
            expression=parse(str(props["Schedule"])),
            input=json.loads(raw_input) if isinstance(raw_input, str) else raw_input,
            has_input=raw_input is not None,
            enabled=(str(state).upper() != "DISABLED")
            if state is not None
            else (enabled is True or str(enabled).lower() == "true"),
            dead_letter_arn=(props.get("DeadLetterConfig") or {}).get("Arn"),
        )


def _scheduler_schedule(
    function: FunctionSpec, event_id: str, props: Mapping[str, Any]
) -> dict[str, Any]:
    """The create_schedule call SAM's ScheduleV2 stands for."""
    name = str(props.get("Name") or f"{function.logical_id}{event_id}")
    target: dict[str, Any] = {
        "Arn": function.arn,
        "RoleArn": str(
            props.get("RoleArn") or f"arn:aws:iam::{ACCOUNT_ID}:role/{name}-scheduler-local"
        ),
    }
    if "Input" in props:
        raw = props["Input"]
        target["Input"] = raw if isinstance(raw, str) else json.dumps(raw)
    if props.get("RetryPolicy"):
        target["RetryPolicy"] = props["RetryPolicy"]
    dead_letter = (props.get("DeadLetterConfig") or {}).get("Arn")
    if dead_letter:
        target["DeadLetterConfig"] = {"Arn": dead_letter}
    kwargs: dict[str, Any] = {
        "Name": name,
        "ScheduleExpression": str(props["ScheduleExpression"]),
        "FlexibleTimeWindow": props.get("FlexibleTimeWindow") or {"Mode": "OFF"},
        "Target": target,
    }
    for key in ("GroupName", "ScheduleExpressionTimezone", "StartDate", "EndDate", "Description"):
        if props.get(key):
            kwargs[key] = props[key]
    if props.get("State"):
        kwargs["State"] = str(props["State"]).upper()
    return kwargs


# The service -----------------------------------------------------------------------------
@dataclass
class _Recurring:
    expression: Expression
    next_at: datetime | None


@dataclass
class _Seen:
    modified: Any
    detail: dict[str, Any]


@dataclass
class _State:
    details: dict[tuple[str, str], _Seen] = field(default_factory=dict)
    fired: set[tuple[str, str, str, str]] = field(default_factory=set)
    recurring: dict[tuple[Any, ...], _Recurring] = field(default_factory=dict)
    reported: set[tuple[str, ...]] = field(default_factory=set)


class ScheduleService:
    """Fires the template's schedules and the Scheduler's, on one thread."""

    def __init__(
        self,
        ctx: CloudContext,
        rules: Sequence[RuleSchedule] = (),
        scheduler_schedules: Sequence[dict[str, Any]] = (),
        *,
        clock: Clock | None = None,
        tick_s: float = TICK_S,
    ) -> None:
        self._ctx = ctx
        self.rules = list(rules)
        self._v2 = list(scheduler_schedules)
        self.clock: Clock = clock or SystemClock()
        self._tick_s = tick_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._scheduler = ctx.client("scheduler")
        self._state = _State()
        self._lock = threading.Lock()

    # Life -------------------------------------------------------------------------------
    def start(self) -> None:
        now = self.clock.now()
        for rule in self.rules:
            if isinstance(rule.expression, Rate):
                rule.expression = rule.expression.anchored(now)
            rule.next_at = rule.expression.next_after(now)
        for kwargs in self._v2:
            self._create_or_update(kwargs)
        self._thread = threading.Thread(target=self._run, name="schedules", daemon=True)
        self._thread.start()
        enabled = [f"{r.name} {r.expression.text}" for r in self.rules if r.enabled]
        self._ctx.log(
            f"[schedules] rules: {', '.join(enabled) or 'none'}; "
            "watching EventBridge Scheduler for due schedules"
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            self.tick()

    def tick(self) -> None:
        """One look at every schedule: fire what is due now."""
        with self._lock:
            now = self.clock.now()
            for rule in self.rules:
                try:
                    self._rule_tick(rule, now)
                except Exception as error:
                    self._report(("rule", rule.name), f"rule {rule.name} failed: {error!r}")
            try:
                self._scheduler_tick(now)
            except Exception as error:
                self._report(("scheduler",), f"reading EventBridge Scheduler failed: {error!r}")

    def _report(self, key: tuple[str, ...], message: str) -> None:
        """Log a problem once, not every tick."""
        if key not in self._state.reported:
            self._state.reported.add(key)
            self._ctx.log(f"[schedules] {message}")

    # Rules ------------------------------------------------------------------------------
    def _rule_tick(self, rule: RuleSchedule, now: datetime) -> None:
        if rule.next_at is None or rule.next_at > now:
            return
        due = rule.next_at
        rule.next_at = rule.expression.next_after(now)  # missed firings are not made up
        if not rule.enabled:
            return
        event = rule.input if rule.has_input else scheduled_event(rule.arn, due)
        try:
            self._ctx.async_invoker.submit(rule.function.logical_id, event)
            self._ctx.log(f"[schedules] {rule.name} ({rule.expression.text}) fired")
        except Exception as error:
            self._ctx.log(f"[schedules] {rule.name}: could not invoke: {error!r}")
            if rule.dead_letter_arn:
                send(
                    self._ctx.client,
                    rule.dead_letter_arn,
                    json.dumps(event),
                    {"ERROR_CODE": type(error).__name__, "ERROR_MESSAGE": str(error)[:1000]},
                )

    # EventBridge Scheduler --------------------------------------------------------------
    def _create_or_update(self, kwargs: dict[str, Any]) -> None:
        try:
            self._scheduler.create_schedule(**kwargs)
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code")
            if code != "ConflictException":
                self._ctx.log(f"[schedules] could not create schedule {kwargs['Name']}: {error}")
                return
            self._scheduler.update_schedule(**kwargs)

    def _scheduler_tick(self, now: datetime) -> None:
        listed: set[tuple[str, str]] = set()
        token: str | None = None
        while True:
            page = self._scheduler.list_schedules(**({"NextToken": token} if token else {}))
            for summary in page.get("Schedules", []):
                key = (summary.get("GroupName") or "default", summary["Name"])
                listed.add(key)
                seen = self._state.details.get(key)
                modified = summary.get("LastModificationDate")
                if seen is None or seen.modified != modified:
                    try:
                        detail = self._scheduler.get_schedule(Name=key[1], GroupName=key[0])
                    except Exception:  # noqa: S112 - deleted meanwhile: gone from the next list
                        continue
                    self._state.details[key] = _Seen(modified, detail)
            token = page.get("NextToken")
            if not token:
                break
        for key in [k for k in self._state.details if k not in listed]:
            del self._state.details[key]
        for seen in list(self._state.details.values()):
            self._consider(seen.detail, now)

    def _consider(self, detail: Mapping[str, Any], now: datetime) -> None:
        group, name = detail.get("GroupName") or "default", str(detail["Name"])
        text = str(detail.get("ScheduleExpression", ""))
        zone = str(detail.get("ScheduleExpressionTimezone") or "UTC")
        fire_key = (group, name, text, zone)
        try:
            expression = parse(text, zone)
        except (ValueError, KeyError) as error:
            self._report(("bad", *fire_key), f"schedule {group}/{name} is not supported: {error}")
            return
        if str(detail.get("State", "ENABLED")) != "ENABLED":
            return
        if isinstance(expression, At):
            if fire_key in self._state.fired or not expression.due(now):
                return
            self._state.fired.add(fire_key)  # at most once, even if the delivery fails
            self._fire(detail, expression.when)
            if detail.get("ActionAfterCompletion") == "DELETE":
                self._delete(group, name)
            return
        start, end = _aware(detail.get("StartDate")), _aware(detail.get("EndDate"))
        recurring_key = (*fire_key, start, end)
        recurring = self._state.recurring.get(recurring_key)
        if recurring is None:
            base = max(now, start) if start else now
            if isinstance(expression, Rate):
                expression = expression.anchored(start or now)
            recurring = _Recurring(expression, expression.next_after(base))
            self._state.recurring[recurring_key] = recurring
        due = recurring.next_at
        if due is None or due > now:
            return
        if end is not None and due > end:
            recurring.next_at = None
            if detail.get("ActionAfterCompletion") == "DELETE":
                self._delete(group, name)
            return
        recurring.next_at = recurring.expression.next_after(now)
        self._fire(detail, due)

    def _delete(self, group: str, name: str) -> None:
        try:
            self._scheduler.delete_schedule(Name=name, GroupName=group)
        except Exception as error:
            self._ctx.log(f"[schedules] could not delete {group}/{name}: {error}")
        self._state.details.pop((group, name), None)

    def _fire(self, detail: Mapping[str, Any], when: datetime) -> None:
        target = dict(detail.get("Target") or {})
        arn = str(target.get("Arn", ""))
        execution_id = str(uuid.uuid4())
        text = _with_context(
            target.get("Input"), str(detail.get("Arn", "")), when, execution_id, attempt=1
        )
        label = f"{detail.get('GroupName') or 'default'}/{detail['Name']}"
        try:
            self._deliver(arn, text, target, execution_id)
            self._ctx.log(f"[schedules] {label} ({detail.get('ScheduleExpression')}) → {arn}")
        except Exception as error:
            self._ctx.log(f"[schedules] {label}: delivery to {arn} failed: {error!r}")
            dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
            if dead_letter:
                attributes = {
                    "ERROR_CODE": type(error).__name__,
                    "ERROR_MESSAGE": str(error)[:1000],
                    "EXECUTION_ID": execution_id,
                    "RETRY_ATTEMPTS": "0",
                    "SCHEDULE_ARN": str(detail.get("Arn", "")),
                    "TARGET_ARN": arn,
                }
                send(self._ctx.client, str(dead_letter), text or "{}", attributes)

    def _deliver(
        self, arn: str, text: str | None, target: Mapping[str, Any], execution_id: str
    ) -> None:
        kind = service_of(arn)
        if kind == "lambda":
            function = ":".join(arn.split(":")[:7])  # without a version or alias
            self._ctx.async_invoker.submit(function, _json_or_text(text or "{}"))
        elif kind in ("sqs", "sns"):
            group = (target.get("SqsParameters") or {}).get("MessageGroupId")
            send(
                self._ctx.client,
                arn,
                text or "{}",
                group_id=group,
                deduplication_id=execution_id,
            )
        elif kind == "events" and ":event-bus/" in arn:
            parameters = target.get("EventBridgeParameters") or {}
            self._ctx.client("events").put_events(
                Entries=[
                    {
                        "EventBusName": arn,
                        "Source": parameters.get("Source", "aws.scheduler"),
                        "DetailType": parameters.get("DetailType", "Scheduled Event"),
                        "Detail": text or "{}",
                    }
                ]
            )
        else:
            raise NotImplementedError(f"target {arn} is not emulated locally")


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _with_context(
    text: Any, schedule_arn: str, when: datetime, execution_id: str, attempt: int
) -> str | None:
    """The target's Input with Scheduler's context attributes filled in."""
    if text is None:
        return None
    replacements = {
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.scheduled-time>": _iso(when),
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    result = str(text)
    for placeholder, value in replacements.items():
        result = result.replace(placeholder, value)
    return result


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def build(ctx: CloudContext, *, clock: Clock | None = None) -> ScheduleService:
    """Always a service: functions may create Scheduler schedules even if the template has none."""
    rules: list[RuleSchedule] = []
    scheduler_schedules: list[dict[str, Any]] = []
    for function in ctx.functions:
        for event_id, event in function.events.items():
            props = event.get("Properties") or {}
            try:
                if event.get("Type") == "Schedule":
                    rules.append(RuleSchedule.of(function, event_id, props))
                elif event.get("Type") == "ScheduleV2":
                    parse(str(props["ScheduleExpression"]), props.get("ScheduleExpressionTimezone"))
                    scheduler_schedules.append(_scheduler_schedule(function, event_id, props))
            except (ValueError, KeyError) as error:
                ctx.log(f"[schedules] {function.logical_id}.{event_id} is not supported: {error}")
    return ScheduleService(ctx, rules, scheduler_schedules, clock=clock)
