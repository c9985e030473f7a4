"""What a rule's Lambda target receives, and how rules are read from a template (no cloud)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from infra.event_input import TargetInput, json_path, transform
from infra.local.eventbridge import _limited, rule_arn, rules_of
from infra.local.pages import wants_json
from infra.topology import Physical, Resolver
from tests.support.local import function_spec

EVENT: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Contact Created",
    "source": "crm.contacts",
    "account": "123456789012",
    "time": "2026-01-02T03:04:05Z",
    "region": "us-east-1",
    "resources": ["arn:aws:dynamodb:us-east-1:123456789012:table/crm-local"],
    "detail": {"contact": {"id": "c1", "name": 'Ada "the" Countess'}, "tags": ["a", "b"]},
}
ARN = rule_arn("crm-local", "ContactsRule")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", EVENT),
        ("$.detail-type", "Contact Created"),
        ("$.detail.contact.id", "c1"),
        ("$.detail.tags[1]", "b"),
        ("$['detail']['contact']['name']", 'Ada "the" Countess'),
        ("$.resources[0]", "arn:aws:dynamodb:us-east-1:123456789012:table/crm-local"),
    ],
)
def test_json_paths(path: str, expected: Any) -> None:
    assert json_path(EVENT, path) == expected


def test_a_path_the_event_lacks_gives_null_to_input_path() -> None:
    assert TargetInput(input_path="$.detail.nothing").payload(EVENT, "r", ARN) is None


def test_input_is_constant_json() -> None:
    assert TargetInput(input='{"a": [1, 2]}').payload(EVENT, "r", ARN) == {"a": [1, 2]}


def test_no_input_setting_gives_the_event() -> None:
    assert TargetInput().payload(EVENT, "r", ARN) == EVENT


def test_an_input_transformer_builds_json_from_paths_and_predefined_variables() -> None:
    transformer = {
        "InputPathsMap": {
            "id": "$.detail.contact.id",
            "name": "$.detail.contact.name",
            "tags": "$.detail.tags",
            "missing": "$.detail.nothing",
        },
        "InputTemplate": (
            '{"contact": <id>, "text": "Hello <name> (<id>)", "tags": <tags>,'
            ' "missing": <missing>, "quoted": "<missing>", "rule": "<aws.events.rule-name>",'
            ' "arn": <aws.events.rule-arn>, "whole": <aws.events.event.json>,'
            ' "inline": "tags <tags>"}'
        ),
    }
    assert transform(transformer, EVENT, "ContactsRule", ARN) == {
        "contact": "c1",
        "text": 'Hello Ada "the" Countess (c1)',
        "tags": ["a", "b"],
        "missing": None,
        "quoted": "",
        "rule": "ContactsRule",
        "arn": ARN,
        "whole": EVENT,
        "inline": 'tags ["a", "b"]',
    }


def test_an_input_transformer_that_makes_text_gives_a_string() -> None:
    transformer = {"InputPathsMap": {"t": "$.detail-type"}, "InputTemplate": "<t> happened"}
    assert transform(transformer, EVENT, "r", ARN) == "Contact Created happened"
    quoted = {"InputPathsMap": {"t": "$.detail-type"}, "InputTemplate": '"<t> happened"'}
    assert transform(quoted, EVENT, "r", ARN) == "Contact Created happened"


@pytest.mark.parametrize(
    ("accept", "query", "wanted"),
    [
        ("application/json", {}, True),
        ("text/html, application/json;q=0.9", {}, True),
        ("application/json;q=0", {}, False),
        ("text/html,application/xhtml+xml,*/*;q=0.8", {}, False),
        ("*/*", {}, False),
        ("", {"format": ["json"]}, True),
    ],
)
def test_the_events_page_answers_json_when_asked(
    accept: str, query: dict[str, list[str]], wanted: bool
) -> None:
    request = SimpleNamespace(headers={"accept": accept}, query=query)
    assert wants_json(request) is wanted


def test_shadow_names_stay_within_aws_limits() -> None:
    assert _limited("crm-local-shadow-Rule-Fn", 80) == "crm-local-shadow-Rule-Fn"
    long = _limited("crm-local-shadow-" + "x.y" * 40, 80)
    assert len(long) == 80
    assert set(long) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    assert long != _limited("crm-local-shadow-" + "x.y" * 41, 80)


def test_rules_come_from_sam_events_and_rule_resources_as_sam_expands_them() -> None:
    function = function_spec(
        "Consumer",
        "crm-local-consumer",
        events={
            "Created": {
                "Type": "EventBridgeRule",
                "Properties": {
                    "EventBusName": "arn:aws:events:us-east-1:123456789012:event-bus/crm",
                    "Pattern": {"source": ["crm"]},
                    "DeadLetterConfig": {"Type": "SQS"},
                    "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 60},
                    "Enabled": False,
                },
            },
            "Api": {"Type": "HttpApi", "Properties": {}},
        },
    )
    template = {
        "Resources": {
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": {"source": ["x"]},
                    "Targets": [
                        {"Id": "fn", "Arn": function.arn + ":live", "InputPath": "$.detail"},
                        {"Id": "queue", "Arn": "arn:aws:sqs:us-east-1:123456789012:q"},
                    ],
                },
            },
            "Scheduled": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "ScheduleExpression": "rate(1 minute)",
                    "Targets": [{"Id": "fn", "Arn": function.arn}],
                },
            },
        }
    }
    resolver = Resolver(template, {}, {"Rule": Physical(ref="Rule")})
    sam, resource = rules_of(template, resolver, [function], log=lambda _line: None)

    assert (sam.name, sam.bus_name, sam.state) == ("ConsumerCreated", "crm", "DISABLED")
    assert sam.create_dead_letter_queue == (
        "ConsumerCreatedQueue",
        "crm-local-ConsumerCreatedQueue",
    )
    (target,) = sam.targets
    assert target.target_id == "ConsumerCreatedLambdaTarget"
    assert target.function == "Consumer"
    assert (
        target.dead_letter_arn
        == "arn:aws:sqs:us-east-1:123456789012:crm-local-ConsumerCreatedQueue"
    )
    assert (target.max_retries, target.max_event_age_s) == (3, 60)
    assert target.rule_arn == "arn:aws:events:us-east-1:123456789012:rule/crm/ConsumerCreated"

    assert (resource.name, resource.bus_name, resource.declared) == ("Rule", "default", True)
    (fn_target,) = resource.targets  # the queue is moto's; the scheduled rule is not ours
    assert fn_target.function == "Consumer"
    assert fn_target.input.input_path == "$.detail"
    assert fn_target.shadow_queue == "crm-local-shadow-Rule-Consumer"
