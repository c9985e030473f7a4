"""template.yaml's event backbone: the bus, its archive, outbox_publisher, and the rules
every consumer's subscription must follow."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from crm_core.events.outbox import STREAM_FILTER
from infra.cfn import REPO_ROOT, load_template, resources
from tests.iac.test_template import (
    Template,
    _events,
    _function_setting,
    _functions,
    _props,
    _ref_target,
    iam_statements,
)

STAGES = ("dev", "staging", "prod", "local")


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


# Events that invoke a function asynchronously from EventBridge: a subscription to the bus,
# and schedules (a rule on the default bus, or an EventBridge Scheduler schedule).
RULE_TRIGGERS = ("EventBridgeRule", "Schedule", "ScheduleV2")


def aws_service_pattern(pattern: Any) -> bool:
    """A pattern of AWS services' own events (every `source` is `aws.*`, SES's `aws.ses`
    say): AWS puts those on the account's default bus, never on a custom one."""
    sources = (pattern or {}).get("source") if isinstance(pattern, dict) else None
    return bool(sources) and all(isinstance(s, str) and s.startswith("aws.") for s in sources)


def on_default_bus(props: dict[str, Any]) -> bool:
    return props.get("EventBusName") in (None, "default")


def event_rule_problems(template: Template) -> list[str]:
    """Every subscription to the bus and every schedule: a retry policy and a DLQ for its
    target, and a function that catches its own failures in an on-failure destination.
    A subscription is on the stage's bus, but one to AWS services' events is on the
    default bus, where those events are."""
    problems = []
    for name, fn in _functions(template).items():
        invoke = _function_setting(template, fn, "EventInvokeConfig") or {}
        for event_name, event in _events(fn).items():
            if event.get("Type") not in RULE_TRIGGERS:
                continue
            where = f"{name}.Events.{event_name}"
            props = event.get("Properties") or {}
            if event["Type"] != "EventBridgeRule":
                pass
            elif aws_service_pattern(props.get("Pattern")):
                if not on_default_bus(props):
                    problems.append(f"{where}: AWS services' events are on the default bus only")
            elif _ref_target(props.get("EventBusName")) != "EventBus":
                problems.append(f"{where}: subscribe on the stage's bus (!Ref EventBus)")
            retry = props.get("RetryPolicy") or {}
            if not {"MaximumRetryAttempts", "MaximumEventAgeInSeconds"} <= set(retry):
                problems.append(f"{where}: RetryPolicy needs MaximumRetryAttempts and age")
            if not (props.get("DeadLetterConfig") or {}).get("Arn"):
                problems.append(f"{where}: no DeadLetterConfig.Arn for delivery failures")
            on_failure = ((invoke.get("DestinationConfig") or {}).get("OnFailure")) or {}
            if not on_failure.get("Destination") or "MaximumRetryAttempts" not in invoke:
                problems.append(
                    f"{where}: the function needs EventInvokeConfig with MaximumRetryAttempts "
                    "and an OnFailure destination for its own errors"
                )
    return problems


def _rule_fn(event_type: str = "EventBridgeRule", **props: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "EventInvokeConfig": {
                "MaximumRetryAttempts": 2,
                "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": "arn:dlq"}},
            },
            "Events": {"E": {"Type": event_type, "Properties": props}},
        },
    }


_GOOD_RULE = {
    "EventBusName": {"Ref": "EventBus"},
    "Pattern": {"source": ["crm.contacts"]},
    "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
    "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["Dlq", "Arn"]}},
}


@pytest.mark.parametrize(
    "broken",
    [
        {k: v for k, v in _GOOD_RULE.items() if k != "RetryPolicy"},
        {k: v for k, v in _GOOD_RULE.items() if k != "DeadLetterConfig"},
        {**_GOOD_RULE, "EventBusName": "default"},
        {**_GOOD_RULE, "RetryPolicy": {"MaximumRetryAttempts": 3}},
    ],
)
def test_checker_refuses_a_subscription_without_its_safety_nets(broken: dict[str, Any]) -> None:
    assert event_rule_problems({"Resources": {"F": _rule_fn(**_GOOD_RULE)}}) == []
    assert event_rule_problems({"Resources": {"F": _rule_fn(**broken)}}) != []
    no_destination = _rule_fn(**_GOOD_RULE)
    no_destination["Properties"].pop("EventInvokeConfig")
    assert event_rule_problems({"Resources": {"F": no_destination}}) != []


_SES_RULE = {
    "EventBusName": "default",
    "Pattern": {"source": ["aws.ses"]},
    "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
    "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["Dlq", "Arn"]}},
}


@pytest.mark.parametrize(
    "broken",
    [
        {**_SES_RULE, "EventBusName": {"Ref": "EventBus"}},  # SES never puts events there
        {**_SES_RULE, "Pattern": {"source": ["aws.ses", "crm.contacts"]}},  # half on default
        {k: v for k, v in _SES_RULE.items() if k != "DeadLetterConfig"},
    ],
)
def test_checker_wants_aws_service_events_from_the_default_bus(broken: dict[str, Any]) -> None:
    assert event_rule_problems({"Resources": {"F": _rule_fn(**_SES_RULE)}}) == []
    without_bus = {k: v for k, v in _SES_RULE.items() if k != "EventBusName"}
    assert event_rule_problems({"Resources": {"F": _rule_fn(**without_bus)}}) == []
    assert event_rule_problems({"Resources": {"F": _rule_fn(**broken)}}) != []


_GOOD_SCHEDULE = {
    "Schedule": "cron(0 6 * * ? *)",
    "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
    "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["Dlq", "Arn"]}},
}


@pytest.mark.parametrize(
    "broken",
    [
        {k: v for k, v in _GOOD_SCHEDULE.items() if k != "RetryPolicy"},
        {k: v for k, v in _GOOD_SCHEDULE.items() if k != "DeadLetterConfig"},
        {**_GOOD_SCHEDULE, "RetryPolicy": {"MaximumEventAgeInSeconds": 3600}},
    ],
)
def test_checker_refuses_a_schedule_without_its_safety_nets(broken: dict[str, Any]) -> None:
    assert event_rule_problems({"Resources": {"F": _rule_fn("Schedule", **_GOOD_SCHEDULE)}}) == []
    assert event_rule_problems({"Resources": {"F": _rule_fn("Schedule", **broken)}}) != []
    no_destination = _rule_fn("Schedule", **_GOOD_SCHEDULE)
    no_destination["Properties"].pop("EventInvokeConfig")
    assert event_rule_problems({"Resources": {"F": no_destination}}) != []


def test_every_subscription_has_a_retry_policy_and_dlqs(template: Template) -> None:
    assert event_rule_problems(template) == []


def rule_dlq_policy_problems(template: Template) -> list[str]:
    """EventBridge sends what it cannot deliver to a rule's DLQ as itself: the queue's policy
    must let `events.amazonaws.com` send from that rule (SAM writes none for an `Arn`)."""
    res = resources(template)
    grants: dict[str, list[Any]] = {}
    for policy in res.values():
        if policy.get("Type") != "AWS::SQS::QueuePolicy":
            continue
        props = _props(policy)
        for statement in props["PolicyDocument"]["Statement"]:
            if statement.get("Principal") == {"Service": "events.amazonaws.com"} and (
                statement.get("Action") in ("sqs:SendMessage", ["sqs:SendMessage"])
            ):
                sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
                for queue in props["Queues"]:
                    grants.setdefault(_ref_target(queue) or "", []).extend(
                        sources if isinstance(sources, list) else [sources]
                    )
    problems = []
    for name, fn in _functions(template).items():
        for event_name, event in _events(fn).items():
            if event.get("Type") not in ("EventBridgeRule", "Schedule"):
                continue
            props = event.get("Properties") or {}
            queue = _ref_target((props.get("DeadLetterConfig") or {}).get("Arn"))
            if queue is None:
                continue
            rule = props.get("RuleName" if event["Type"] == "EventBridgeRule" else "Name")
            # A rule of the default bus (schedules, AWS services' events) has no bus in its ARN.
            custom_bus = event["Type"] == "EventBridgeRule" and not on_default_bus(props)
            bus = "crm-${Stage}-bus/" if custom_bus else ""
            if not isinstance(rule, dict) or "Fn::Sub" not in rule:
                problems.append(
                    f"{name}.Events.{event_name}: name the rule (!Sub crm-${{Stage}}-...)"
                )
                continue
            arn = (
                "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/"
                f"{bus}{rule['Fn::Sub']}"
            )
            if {"Fn::Sub": arn} not in grants.get(queue, []):
                problems.append(
                    f"{name}.Events.{event_name}: the policy of {queue} does not let {arn} send"
                )
    return problems


def test_every_rule_may_send_to_its_dead_letter_queue(template: Template) -> None:
    assert rule_dlq_policy_problems(template) == []


def test_checker_refuses_a_rule_dlq_events_may_not_send_to(template: Template) -> None:
    no_policy = copy.deepcopy(template)
    del no_policy["Resources"]["ActivityEventsDlqPolicy"]
    (problem,) = rule_dlq_policy_problems(no_policy)
    assert problem.startswith("ActivityEventsFunction.Events.ContactMergedOrDeleted:")

    other_rule = copy.deepcopy(template)
    daily = other_rule["Resources"]["TaskOverdueFunction"]["Properties"]["Events"]["Daily"]
    daily["Properties"]["Name"] = {"Fn::Sub": "crm-${Stage}-another-rule"}
    (problem,) = rule_dlq_policy_problems(other_rule)
    assert problem.startswith("TaskOverdueFunction.Events.Daily:")

    unnamed = copy.deepcopy(template)
    daily = unnamed["Resources"]["TaskOverdueFunction"]["Properties"]["Events"]["Daily"]
    del daily["Properties"]["Name"]
    (problem,) = rule_dlq_policy_problems(unnamed)
    assert "name the rule" in problem

    # A policy that lets one rule of two send: the other one is reported.
    one_of_two = copy.deepcopy(template)
    statement = one_of_two["Resources"]["EmailEventsDlqPolicy"]["Properties"]["PolicyDocument"]
    condition = statement["Statement"][0]["Condition"]["ArnEquals"]
    condition["aws:SourceArn"] = condition["aws:SourceArn"][1]
    (problem,) = rule_dlq_policy_problems(one_of_two)
    assert problem.startswith("EmailEventsFunction.Events.SesEvents:")
    assert problem.endswith(":rule/crm-${Stage}-email-events-ses send")  # no bus in its ARN


def test_one_bus_per_stage_and_an_archive_of_it(template: Template) -> None:
    res = resources(template)
    assert _props(res["EventBus"])["Name"] == {"Fn::Sub": "crm-${Stage}-bus"}
    archive = _props(res["EventArchive"])
    assert archive["ArchiveName"] == {"Fn::Sub": "crm-${Stage}-archive"}
    assert archive["SourceArn"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    assert "EventPattern" not in archive  # every event, so any consumer can be replayed
    assert archive["RetentionDays"] == {
        "Fn::FindInMap": ["StageSettings", {"Ref": "Stage"}, "ArchiveRetentionDays"]
    }
    days = {s: template["Mappings"]["StageSettings"][s]["ArchiveRetentionDays"] for s in STAGES}
    assert days["prod"] >= 90
    assert days["prod"] > days["staging"] >= days["dev"] >= 1


def test_outbox_publisher_reads_only_outbox_inserts_and_never_drops_a_batch(
    template: Template,
) -> None:
    fn = _props(resources(template)["OutboxPublisherFunction"])
    source = fn["Events"]["Outbox"]
    assert source["Type"] == "DynamoDB"
    props = source["Properties"]
    assert props["Stream"] == {"Fn::GetAtt": ["Table", "StreamArn"]}
    (only,) = props["FilterCriteria"]["Filters"]
    assert json.loads(only["Pattern"]) == STREAM_FILTER
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert 1 <= props["MaximumRetryAttempts"] <= 100
    assert props["BatchSize"] <= 1000
    on_failure = props["DestinationConfig"]["OnFailure"]
    assert on_failure == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["OutboxPublisherDlq", "Arn"]},
    }
    dlq = _props(resources(template)["OutboxPublisherDlq"])
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600  # the most SQS keeps
    assert fn["Environment"]["Variables"]["EVENT_BUS_NAME"] == {"Ref": "EventBus"}


def test_only_outbox_publisher_may_put_events(template: Template) -> None:
    """No handler calls put_events after a write: IAM lets only the publisher do it, and
    only on the stage's bus."""
    granted = {}
    for where, statement in iam_statements(template):
        actions = statement.get("Action")
        if any(
            str(a).startswith("events:Put")
            for a in (actions if isinstance(actions, list) else [actions])
        ):
            granted[where.split(".")[0]] = statement["Resource"]
    assert granted == {"OutboxPublisherFunction": {"Fn::GetAtt": ["EventBus", "Arn"]}}


def test_no_function_code_calls_put_events_except_through_the_outbox() -> None:
    allowed = {
        REPO_ROOT / "functions" / "outbox_publisher" / "outbox_publisher_consumer" / "handlers.py",
        REPO_ROOT / "shared" / "crm_core" / "events" / "forwarding.py",
    }
    calls = re.compile(r"\bput_events\s*\(")
    offenders = [
        path.relative_to(REPO_ROOT).as_posix()
        for root in (REPO_ROOT / "functions", REPO_ROOT / "shared" / "crm_core")
        for path in root.rglob("*.py")
        if path not in allowed and calls.search(path.read_text())
    ]
    assert offenders == []


def test_the_stack_outputs_name_the_bus_archive_and_dlq(template: Template) -> None:
    outputs = template["Outputs"]
    for name in (
        "EventBusName",
        "EventBusArn",
        "EventArchiveName",
        "EventArchiveArn",
        "OutboxPublisherDlqUrl",
    ):
        assert name in outputs, name


def _dead_letter_queues(template: Template) -> set[str]:
    """Every queue the template uses as a DLQ or an on-failure destination."""
    found: set[str | None] = set()

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in ("DeadLetterConfig", "OnFailure"):
                    found.add(_ref_target(inner.get("Arn") or inner.get("Destination")))
                elif key == "RedrivePolicy":
                    found.add(_ref_target(inner.get("deadLetterTargetArn")))
                visit(inner)
        elif isinstance(value, list):
            for inner in value:
                visit(inner)

    visit(template["Resources"])
    queues = {n for n, r in resources(template).items() if r["Type"] == "AWS::SQS::Queue"}
    return {q for q in found if q in queues}


def test_every_dlq_raises_an_alarm_when_anything_lands_in_it(template: Template) -> None:
    dlqs = _dead_letter_queues(template)
    assert "OutboxPublisherDlq" in dlqs
    alarmed = set()
    for res in resources(template).values():
        if res["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = _props(res)
        if props.get("MetricName") == "ApproximateNumberOfMessagesVisible":
            assert props["Threshold"] == 0
            assert props["ComparisonOperator"] == "GreaterThanThreshold"
            assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
            (dimension,) = props["Dimensions"]
            alarmed.add(_ref_target(dimension["Value"]))
    assert dlqs <= alarmed


def test_a_lagging_outbox_publisher_raises_an_alarm(template: Template) -> None:
    props = _props(resources(template)["OutboxPublisherLagAlarm"])
    assert props["MetricName"] == "IteratorAge"
    assert props["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "OutboxPublisherFunction"}}
    ]
    assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
