"""Conventions of template.yaml, checked on the parsed template (no AWS, no subprocess).

cfn-lint, `sam validate --lint` and `sam build` run from the Makefile's `iac` target; these
tests check what those tools do not: our naming, least-privilege IAM, failure destinations
of every asynchronous path, the HTTP routes, the identity settings and the table shape.

Each convention is a `*_problems(template) -> list[str]` checker. The template must give
no problems, and the `test_checker_*` tests feed each checker small templates that break
its rule, so a checker that silently stops finding anything fails too.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from infra.cfn import (
    REPO_ROOT,
    load_template,
    loads,
    resources,
    table_create_kwargs,
    table_ttl_attribute,
)

Template = dict[str, Any]

STAGES = {"dev", "staging", "prod"}
ALLOWED_STAGE_VALUES = STAGES | {"local"}

FUNCTION_TYPES = frozenset({"AWS::Serverless::Function", "AWS::Lambda::Function"})

# The property holding each resource type's physical name. Every name must contain the stage.
NAME_PROPERTIES = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Serverless::HttpApi": "Name",
    "AWS::Serverless::Api": "Name",
    "AWS::Serverless::StateMachine": "Name",
    "AWS::Cognito::UserPool": "UserPoolName",
    "AWS::Cognito::UserPoolClient": "ClientName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Events::Archive": "ArchiveName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::SES::ConfigurationSet": "Name",
    "AWS::S3::Bucket": "BucketName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::SSM::Parameter": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::KMS::Alias": "AliasName",
}
# Types that have no account-wide physical name (or one scoped to a parent resource, like a
# Cognito group, whose name is a role: `admin`, `sales`, ...).
UNNAMED_TYPES = frozenset(
    {
        "AWS::Cognito::UserPoolGroup",
        "AWS::Cognito::UserPoolDomain",
        "AWS::Lambda::Permission",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::SNS::Subscription",
        "AWS::Events::EventBusPolicy",
        "AWS::IAM::Policy",
        # A key has only its generated id; its alias carries the stage.
        "AWS::KMS::Key",
        # An SES identity is named by its domain (the SenderDomain parameter), and an event
        # destination is scoped to its configuration set, whose name carries the stage.
        "AWS::SES::EmailIdentity",
        "AWS::SES::ConfigurationSetEventDestination",
        "AWS::S3::BucketPolicy",
        # A receipt rule is named inside the rule set (`Rule.Name`, which has the stage).
        "AWS::SES::ReceiptRule",
    }
)
# Resources that must have an explicit physical name (a missing one would be random).
MUST_BE_NAMED = frozenset(
    {
        "AWS::DynamoDB::Table",
        "AWS::Serverless::Function",
        "AWS::Lambda::Function",
        "AWS::Cognito::UserPool",
        "AWS::Logs::LogGroup",
    }
)

# No function may hold a DynamoDB action outside this list (no Scan, no table admin).
DYNAMODB_ALLOWED_ACTIONS = frozenset(
    {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
        # the outbox publisher reads the stream
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    }
)
# IAM has no `dynamodb:TransactWriteItems` action: TransactWriteItems is authorized by the
# actions of its parts (PutItem, UpdateItem, DeleteItem, ConditionCheckItem).
CONTACTS_DYNAMODB_ACTIONS = frozenset(
    {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:ConditionCheckItem",
    }
)
# The activities function: reads, Queries (timelines, tasks), BatchGetItem (a deal's
# timeline page), the parts of its transactions, and Idempotency-Key's records (PutItem,
# GetItem, UpdateItem, DeleteItem). No batch writes and no ConditionCheckItem: none of its
# transactions has a condition check.
ACTIVITIES_DYNAMODB_ACTIONS = frozenset(
    {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
    }
)
# SAM policy templates (or managed policies) a function may use. None so far: inline
# statements only, so every action is visible to these tests.
ALLOWED_POLICY_TEMPLATES: frozenset[str] = frozenset()

EXPECTED_ROUTES = frozenset(
    {
        ("POST", "/contacts"),
        ("GET", "/contacts"),
        ("GET", "/contacts/{contact_id}"),
        ("PATCH", "/contacts/{contact_id}"),
        ("DELETE", "/contacts/{contact_id}"),
        ("POST", "/contacts/{contact_id}/merge"),
        ("POST", "/companies"),
        ("GET", "/companies"),
        ("GET", "/companies/{company_id}"),
        ("PATCH", "/companies/{company_id}"),
        ("DELETE", "/companies/{company_id}"),
        ("GET", "/companies/{company_id}/contacts"),
        ("POST", "/contacts/{contact_id}/activities"),
        ("GET", "/contacts/{contact_id}/activities/{activity_id}"),
        ("PATCH", "/contacts/{contact_id}/activities/{activity_id}"),
        ("DELETE", "/contacts/{contact_id}/activities/{activity_id}"),
        ("GET", "/contacts/{contact_id}/timeline"),
        ("GET", "/deals/{deal_id}/timeline"),
        ("GET", "/tasks"),
        ("POST", "/lead-sources"),
        ("GET", "/lead-sources"),
        ("GET", "/lead-sources/{source_id}"),
        ("PATCH", "/lead-sources/{source_id}"),
        ("DELETE", "/lead-sources/{source_id}"),
        ("POST", "/lead-sources/{source_id}/rotate-secret"),
        ("GET", "/lead-sources/{source_id}/deliveries"),
        ("GET", "/lead-sources/{source_id}/deliveries/{lead_id}"),
        ("POST", "/webhooks/leads/{source_id}"),
        ("GET", "/scoring/model"),
        ("PUT", "/scoring/model"),
        ("GET", "/contacts/{contact_id}/score"),
        ("GET", "/scoring/jobs"),
        ("POST", "/scoring/jobs"),
        ("GET", "/scoring/jobs/{job_id}"),
        ("POST", "/segments"),
        ("GET", "/segments"),
        ("GET", "/segments/{segment_id}"),
        ("PATCH", "/segments/{segment_id}"),
        ("DELETE", "/segments/{segment_id}"),
        ("GET", "/segments/{segment_id}/preview"),
        ("POST", "/campaigns"),
        ("GET", "/campaigns"),
        ("GET", "/campaigns/{campaign_id}"),
        ("PATCH", "/campaigns/{campaign_id}"),
        ("POST", "/campaigns/{campaign_id}/schedule"),
        ("POST", "/campaigns/{campaign_id}/send"),
        ("POST", "/campaigns/{campaign_id}/cancel"),
        ("POST", "/campaigns/{campaign_id}/pause"),
        ("POST", "/campaigns/{campaign_id}/resume"),
        ("POST", "/campaigns/{campaign_id}/test"),
        ("GET", "/campaigns/{campaign_id}/recipients"),
        ("POST", "/pipelines"),
        ("GET", "/pipelines"),
        ("GET", "/pipelines/{pipeline_id}"),
        ("PATCH", "/pipelines/{pipeline_id}"),
        ("DELETE", "/pipelines/{pipeline_id}"),
        ("GET", "/pipelines/{pipeline_id}/board"),
        ("POST", "/deals"),
        ("GET", "/deals"),
        ("GET", "/deals/{deal_id}"),
        ("PATCH", "/deals/{deal_id}"),
        ("DELETE", "/deals/{deal_id}"),
        ("GET", "/deals/{deal_id}/history"),
        ("GET", "/forecast"),
        ("GET", "/settings/currencies"),
        ("PUT", "/settings/currencies"),
        ("GET", "/settings/deals"),
        ("PUT", "/settings/deals"),
        ("POST", "/cases"),
        ("GET", "/cases"),
        ("GET", "/cases/{case_id}"),
        ("PATCH", "/cases/{case_id}"),
        ("POST", "/cases/{case_id}/replies"),
        ("GET", "/cases/{case_id}/conversation"),
        ("GET", "/cases/{case_id}/conversation/{entry_id}/attachments/{index}"),
        ("GET", "/reports/{name}"),
        ("GET", "/settings/reports"),
        ("PUT", "/settings/reports"),
        ("POST", "/queues"),
        ("GET", "/queues"),
        ("GET", "/queues/{queue_id}"),
        ("PATCH", "/queues/{queue_id}"),
        ("DELETE", "/queues/{queue_id}"),
        ("GET", "/settings/sla"),
        ("PUT", "/settings/sla"),
        ("GET", "/settings/email"),
        ("PUT", "/settings/email"),
        ("GET", "/unsubscribe"),
        ("POST", "/unsubscribe"),
        ("GET", "/csat"),
        ("POST", "/csat"),
    }
)
# Routes without the JWT authorizer (they verify their own signatures or tokens).
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/webhooks/leads/{source_id}"),
        ("GET", "/unsubscribe"),
        ("POST", "/unsubscribe"),
        ("GET", "/csat"),
        ("POST", "/csat"),
    }
)

ROLES = {"admin", "sales", "marketing", "support", "viewer"}

# Event source types, by how a failure must be caught.
SYNC_EVENT_TYPES = frozenset({"Api", "HttpApi"})
QUEUE_EVENT_TYPES = frozenset({"SQS"})
STREAM_EVENT_TYPES = frozenset({"DynamoDB", "Kinesis", "MSK", "SelfManagedKafka"})
RULE_EVENT_TYPES = frozenset({"EventBridgeRule", "CloudWatchEvent", "Schedule", "ScheduleV2"})
PUSH_EVENT_TYPES = frozenset({"SNS", "S3", "CloudWatchLogs", "IoTRule", "Cognito"})


# ---------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = resource.get("Properties") or {}
    return props


def _global_function(template: Template) -> dict[str, Any]:
    found: dict[str, Any] = (template.get("Globals") or {}).get("Function") or {}
    return found


def _functions(template: Template) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in resources(template).items() if r.get("Type") in FUNCTION_TYPES}


def _function_setting(template: Template, resource: dict[str, Any], key: str) -> Any:
    """A function property, falling back to Globals.Function for SAM functions."""
    props = _props(resource)
    if key in props:
        return props[key]
    if resource.get("Type") == "AWS::Serverless::Function":
        return _global_function(template).get(key)
    return None


def _ref_target(value: Any) -> str | None:
    """The logical id behind `!Ref X` or `!GetAtt X.Attr`, else None."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            return str(value["Ref"])
        getatt = value.get("Fn::GetAtt")
        if isinstance(getatt, list) and getatt and isinstance(getatt[0], str):
            return getatt[0]
    return None


def _mentions_stage(value: Any) -> bool:
    if isinstance(value, dict):
        if value.get("Ref") == "Stage":
            return True
        sub = value.get("Fn::Sub")
        if isinstance(sub, str):
            return "${Stage}" in sub
        if isinstance(sub, list) and sub:
            return "${Stage}" in str(sub[0]) or any(
                _mentions_stage(v) for v in (sub[1] if len(sub) > 1 else {}).values()
            )
        return any(_mentions_stage(v) for v in value.values())
    if isinstance(value, list):
        return any(_mentions_stage(v) for v in value)
    return False


def _events(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = _props(resource).get("Events") or {}
    return found


# ---------------------------------------------------------------------------- checkers


def naming_problems(template: Template) -> list[str]:
    problems = []
    for name, res in resources(template).items():
        type_ = res.get("Type", "")
        if type_ in UNNAMED_TYPES:
            continue
        if type_ not in NAME_PROPERTIES:
            problems.append(
                f"{name}: unknown type {type_}: add it to NAME_PROPERTIES or UNNAMED_TYPES"
            )
            continue
        value = _props(res).get(NAME_PROPERTIES[type_])
        if value is None:
            if type_ in MUST_BE_NAMED:
                problems.append(f"{name}: {type_} needs an explicit {NAME_PROPERTIES[type_]}")
        elif not _mentions_stage(value):
            problems.append(f"{name}: {NAME_PROPERTIES[type_]} {value!r} lacks ${{Stage}}")
    return problems


def function_statements(template: Template, function: str) -> dict[str, dict[str, Any]]:
    """A function's own policy statements, by Sid."""
    return {
        s["Sid"]: s for where, s in iam_statements(template) if where.startswith(f"{function}.")
    }


def iam_statements(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy statement in the template, with where it was found."""
    documents: list[tuple[str, Any]] = []
    for name, res in resources(template).items():
        type_, props = res.get("Type"), _props(res)
        if type_ in {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}:
            for i, policy in enumerate(_as_list(props.get("Policies"))):
                if isinstance(policy, dict) and "Statement" in policy:
                    documents.append((f"{name}.Policies[{i}]", policy))
        elif type_ in {"AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"}:
            for i, policy in enumerate(_as_list(props.get("Policies"))):
                documents.append((f"{name}.Policies[{i}]", (policy or {}).get("PolicyDocument")))
        elif type_ is not None and type_.startswith("AWS::IAM::") and "PolicyDocument" in props:
            documents.append((f"{name}.PolicyDocument", props["PolicyDocument"]))
    for where, document in documents:
        for j, statement in enumerate(_as_list((document or {}).get("Statement"))):
            yield f"{where}.Statement[{j}]", statement


def iam_problems(template: Template) -> list[str]:
    """No wildcard actions, no NotAction, no `*` resource for DynamoDB, no policy templates."""
    problems = []
    for name, res in resources(template).items():
        if res.get("Type") not in {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}:
            continue
        for i, policy in enumerate(_as_list(_props(res).get("Policies"))):
            if isinstance(policy, dict) and "Statement" in policy:
                continue
            key = policy if isinstance(policy, str) else next(iter(policy or {}), None)
            if key not in ALLOWED_POLICY_TEMPLATES:
                problems.append(
                    f"{name}.Policies[{i}]: {key!r} is a policy template or managed policy; "
                    "write an inline statement"
                )
    for where, statement in iam_statements(template):
        if not isinstance(statement, dict):
            problems.append(f"{where}: not a literal statement")
            continue
        if statement.get("Effect") != "Allow":
            continue  # a Deny with wildcards only narrows access
        for key in ("NotAction", "NotResource"):
            if key in statement:
                problems.append(f"{where}: {key} grants everything else")
        actions = _as_list(statement.get("Action"))
        for action in actions:
            if not isinstance(action, str):
                problems.append(f"{where}: action {action!r} is not a literal")
            elif "*" in action:
                problems.append(f"{where}: action {action!r} contains '*'")
        dynamodb = [a for a in actions if isinstance(a, str) and a.lower().startswith("dynamodb:")]
        if dynamodb and "*" in _as_list(statement.get("Resource")):
            problems.append(f"{where}: DynamoDB actions on Resource '*'")
    return problems


def function_dynamodb_actions(template: Template, function: str) -> set[str]:
    actions = set()
    for where, statement in iam_statements(template):
        if where.startswith(f"{function}.") and statement.get("Effect") == "Allow":
            actions |= {
                a
                for a in _as_list(statement.get("Action"))
                if isinstance(a, str) and a.lower().startswith("dynamodb:")
            }
    return actions


def log_group_problems(template: Template) -> list[str]:
    """Every function logs to an explicit log group; every log group has a retention."""
    problems = []
    groups = resources(template, "AWS::Logs::LogGroup")
    for name, group in groups.items():
        if "RetentionInDays" not in _props(group):
            problems.append(f"{name}: log group without RetentionInDays")
    for name, fn in _functions(template).items():
        logging_config = _function_setting(template, fn, "LoggingConfig") or {}
        target = _ref_target(logging_config.get("LogGroup"))
        if target is None:
            problems.append(f"{name}: LoggingConfig.LogGroup must !Ref a log group of the template")
        elif target not in groups:
            problems.append(f"{name}: LoggingConfig.LogGroup {target} is not a log group")
    return problems


def _on_failure(config: Any) -> bool:
    on_failure = ((config or {}).get("DestinationConfig") or {}).get("OnFailure") or {}
    return bool(on_failure.get("Destination") or on_failure.get("Type"))


def _dead_letter(config: Any) -> bool:
    dead_letter = (config or {}).get("DeadLetterConfig") or {}
    return bool(dead_letter.get("Arn") or dead_letter.get("Type"))


def _queue_problem(template: Template, where: str, queue_arn: Any) -> str | None:
    queue = _ref_target(queue_arn)
    res = resources(template).get(queue or "")
    if res is None or res.get("Type") != "AWS::SQS::Queue":
        return f"{where}: queue {queue_arn!r} is not an AWS::SQS::Queue of this template"
    redrive = _props(res).get("RedrivePolicy") or {}
    if not redrive.get("deadLetterTargetArn"):
        return f"{where}: queue {queue} has no RedrivePolicy with a deadLetterTargetArn"
    return None


def async_failure_problems(template: Template) -> list[str]:
    """Every asynchronous path ends in a DLQ or an on-failure destination."""
    problems: list[str | None] = []
    for name, fn in _functions(template).items():
        invoke_config = _function_setting(template, fn, "EventInvokeConfig")
        function_catches = _on_failure(invoke_config) or bool(
            _function_setting(template, fn, "DeadLetterQueue")
        )
        for event_name, event in _events(fn).items():
            where = f"{name}.Events.{event_name}"
            type_, props = event.get("Type"), event.get("Properties") or {}
            if type_ in SYNC_EVENT_TYPES:
                continue
            if type_ in QUEUE_EVENT_TYPES:
                problems.append(_queue_problem(template, where, props.get("Queue")))
            elif type_ in STREAM_EVENT_TYPES:
                if not _on_failure(props):
                    problems.append(f"{where}: {type_} source without DestinationConfig.OnFailure")
            elif type_ in RULE_EVENT_TYPES:
                if not (_dead_letter(props) or function_catches):
                    problems.append(
                        f"{where}: {type_} without DeadLetterConfig, and the function has no "
                        "EventInvokeConfig OnFailure destination"
                    )
            elif type_ in PUSH_EVENT_TYPES:
                if not function_catches:
                    problems.append(f"{where}: {type_} is async; the function needs OnFailure")
            else:
                problems.append(f"{where}: unknown event type {type_!r}: classify it in this test")
    for name, res in resources(template).items():
        type_, props = res.get("Type"), _props(res)
        if type_ == "AWS::Lambda::EventSourceMapping":
            source = _ref_target(props.get("EventSourceArn"))
            source_type = resources(template).get(source or "", {}).get("Type")
            if source_type == "AWS::SQS::Queue":
                problems.append(_queue_problem(template, name, props["EventSourceArn"]))
            elif not _on_failure(props):
                problems.append(f"{name}: event source mapping without DestinationConfig.OnFailure")
        elif type_ == "AWS::Events::Rule":
            for i, target in enumerate(_as_list(props.get("Targets"))):
                if not _dead_letter(target):
                    problems.append(f"{name}.Targets[{i}]: no DeadLetterConfig")
        elif type_ == "AWS::Scheduler::Schedule" and not _dead_letter(props.get("Target")):
            problems.append(f"{name}.Target: no DeadLetterConfig")
    return [p for p in problems if p]


def http_routes(template: Template) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(function, METHOD, path, event properties) of every HttpApi event."""
    routes = []
    for name, fn in _functions(template).items():
        for event in _events(fn).values():
            if event.get("Type") == "HttpApi":
                props = event.get("Properties") or {}
                method = str(props.get("Method", "ANY")).upper()
                routes.append((name, method, str(props.get("Path")), props))
    return routes


# ---------------------------------------------------------------------------- parameters


def test_stage_parameter_allows_exactly_the_stages_and_local(template: Template) -> None:
    stage = template["Parameters"]["Stage"]
    assert stage["Type"] == "String"
    assert sorted(stage["AllowedValues"]) == sorted(ALLOWED_STAGE_VALUES)
    assert "Default" not in stage, "a stage must be chosen explicitly"
    is_prod = template["Conditions"]["IsProd"]["Fn::Equals"]
    assert {"Ref": "Stage"} in is_prod
    assert "prod" in is_prod


def test_cors_origins_parameter_is_a_list(template: Template) -> None:
    origins = template["Parameters"]["CorsAllowedOrigins"]
    assert origins["Type"] == "CommaDelimitedList"
    assert origins["Default"] == "*"


def test_every_named_resource_includes_the_stage(template: Template) -> None:
    assert naming_problems(template) == []


def test_template_format_version_is_a_string(template: Template) -> None:
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


# ---------------------------------------------------------------------------- table


def test_table_keys_and_indexes(template: Template) -> None:
    table = resources(template)["Table"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    props = _props(table)
    assert props["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    key_names = ["PK", "SK"] + [f"GSI{n}{k}" for n in range(1, 5) for k in ("PK", "SK")]
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == dict.fromkeys(key_names, "S")
    indexes = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    assert sorted(indexes) == ["GSI1", "GSI2", "GSI3", "GSI4"]
    for name, index in indexes.items():
        assert index["KeySchema"] == [
            {"AttributeName": f"{name}PK", "KeyType": "HASH"},
            {"AttributeName": f"{name}SK", "KeyType": "RANGE"},
        ]
        assert index["Projection"] == {"ProjectionType": "ALL"}
        assert "ProvisionedThroughput" not in index
    assert props["BillingMode"] == "PAY_PER_REQUEST"


def test_table_stream_ttl_encryption(template: Template) -> None:
    props = _props(resources(template)["Table"])
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert table_ttl_attribute(template) == "ttl"
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_table_protection_depends_on_prod(template: Template) -> None:
    table = resources(template)["Table"]
    props = _props(table)
    prod_only = {"Fn::If": ["IsProd", True, False]}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": prod_only}
    assert props["DeletionProtectionEnabled"] == prod_only
    # A policy cannot depend on a condition here, so the table is retained in every stage.
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_table_create_kwargs_mirror_the_template(template: Template) -> None:
    kwargs = table_create_kwargs(template, table_name="crm-unit")
    props = _props(resources(template)["Table"])
    assert kwargs["TableName"] == "crm-unit"
    assert kwargs["KeySchema"] == props["KeySchema"]
    assert kwargs["AttributeDefinitions"] == props["AttributeDefinitions"]
    assert [i["IndexName"] for i in kwargs["GlobalSecondaryIndexes"]] == [
        "GSI1",
        "GSI2",
        "GSI3",
        "GSI4",
    ]
    assert kwargs["BillingMode"] == "PAY_PER_REQUEST"
    assert kwargs["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert set(kwargs) == {
        "TableName",
        "KeySchema",
        "AttributeDefinitions",
        "GlobalSecondaryIndexes",
        "BillingMode",
        "StreamSpecification",
    }


def test_table_create_kwargs_are_accepted_by_dynamodb(template: Template) -> None:
    from moto import mock_aws  # imported here: only this test pays for it

    # A name of its own, dropped at the end: inside another test's session-wide mock_aws
    # (tests/conftest.py), moto shares one backend and does not reset a nested mock.
    name = "crm-iac-table-check"
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**table_create_kwargs(template, table_name=name))
        try:
            ttl = table_ttl_attribute(template)
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl, "Enabled": True},
            )
            table = client.describe_table(TableName=name)["Table"]
        finally:
            client.delete_table(TableName=name)
    assert len(table["GlobalSecondaryIndexes"]) == 4
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def test_cfn_loader_reads_every_short_form_tag() -> None:
    text = """
    A: !Ref X
    B: !Sub "a-${X}"
    C: !GetAtt Res.Arn
    D: !GetAtt Db.Endpoint.Address
    E: !If [Cond, 1, 2]
    F: !Equals [a, b]
    G: !Not [!Condition Cond]
    H: !And [!Condition A, !Condition B]
    I: !Or [!Condition A, !Condition B]
    J: !Select [0, !GetAZs ""]
    K: !Join [",", [a, b]]
    L: !Split [",", "a,b"]
    M: !FindInMap [Map, Top, Second]
    N: !ImportValue Exported
    O: !Base64 text
    P: !Cidr [10.0.0.0/16, 4, 8]
    Q: 2010-09-09
    """
    assert loads(text) == {
        "A": {"Ref": "X"},
        "B": {"Fn::Sub": "a-${X}"},
        "C": {"Fn::GetAtt": ["Res", "Arn"]},
        "D": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
        "E": {"Fn::If": ["Cond", 1, 2]},
        "F": {"Fn::Equals": ["a", "b"]},
        "G": {"Fn::Not": [{"Condition": "Cond"}]},
        "H": {"Fn::And": [{"Condition": "A"}, {"Condition": "B"}]},
        "I": {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]},
        "J": {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
        "K": {"Fn::Join": [",", ["a", "b"]]},
        "L": {"Fn::Split": [",", "a,b"]},
        "M": {"Fn::FindInMap": ["Map", "Top", "Second"]},
        "N": {"Fn::ImportValue": "Exported"},
        "O": {"Fn::Base64": "text"},
        "P": {"Fn::Cidr": ["10.0.0.0/16", 4, 8]},
        "Q": "2010-09-09",
    }


# ---------------------------------------------------------------------------- IAM


def test_no_wildcard_iam(template: Template) -> None:
    assert iam_problems(template) == []


def test_dynamodb_actions_are_allow_listed(template: Template) -> None:
    for name in _functions(template):
        extra = function_dynamodb_actions(template, name) - DYNAMODB_ALLOWED_ACTIONS
        assert not extra, f"{name} has DynamoDB actions outside the allow-list: {sorted(extra)}"


def test_contacts_function_has_exactly_its_dynamodb_actions(template: Template) -> None:
    assert function_dynamodb_actions(template, "ContactsFunction") == CONTACTS_DYNAMODB_ACTIONS
    statements = [s for w, s in iam_statements(template) if w.startswith("ContactsFunction.")]
    for statement in statements:
        assert statement["Resource"] == [
            {"Fn::GetAtt": ["Table", "Arn"]},
            {"Fn::Sub": "${Table.Arn}/index/*"},
        ]


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("ContactsFunction", CONTACTS_DYNAMODB_ACTIONS),
        ("ActivitiesFunction", ACTIVITIES_DYNAMODB_ACTIONS),
    ],
)
def test_api_functions_have_exactly_their_dynamodb_actions_on_the_table(
    template: Template, function: str, expected: frozenset[str]
) -> None:
    assert function_dynamodb_actions(template, function) == expected
    statements = [s for w, s in iam_statements(template) if w.startswith(f"{function}.")]
    assert statements
    for statement in statements:
        assert statement["Resource"] == [
            {"Fn::GetAtt": ["Table", "Arn"]},
            {"Fn::Sub": "${Table.Arn}/index/*"},
        ]


# ---------------------------------------------------------------------------- functions


def test_globals_runtime_architecture_tracing(template: Template) -> None:
    globals_ = _global_function(template)
    assert globals_["Runtime"] == "python3.11"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Tracing"] == "Active"
    assert globals_["Handler"] == "app.handler"
    assert globals_["Layers"] == [{"Ref": "SharedLayer"}]
    for name, fn in _functions(template).items():
        for key in ("Runtime", "Architectures", "Tracing"):
            assert _function_setting(template, fn, key) == globals_[key], f"{name}.{key}"


def test_globals_environment(template: Template) -> None:
    env = _global_function(template)["Environment"]["Variables"]
    assert env["TABLE_NAME"] == {"Ref": "Table"}
    assert env["STAGE"] == {"Ref": "Stage"}
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "CRM"
    # Events and responses carry personal data: never log or trace them.
    assert env["POWERTOOLS_LOGGER_LOG_EVENT"] == "false"
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert "POWERTOOLS_LOG_LEVEL" in env


def test_every_function_has_a_service_name(template: Template) -> None:
    for name, fn in _functions(template).items():
        variables = (_props(fn).get("Environment") or {}).get("Variables") or {}
        assert variables.get("POWERTOOLS_SERVICE_NAME"), name


def test_no_lambda_json_log_format(template: Template) -> None:
    """Powertools writes JSON itself; Lambda's JSON format would wrap it again."""
    configs = [_global_function(template).get("LoggingConfig") or {}]
    configs += [_props(fn).get("LoggingConfig") or {} for fn in _functions(template).values()]
    assert all(c.get("LogFormat") != "JSON" for c in configs)


def test_every_function_has_an_explicit_log_group_with_retention(template: Template) -> None:
    assert log_group_problems(template) == []


@pytest.mark.parametrize(
    ("group", "function"), [("Contacts", "contacts"), ("Activities", "activities")]
)
def test_api_log_group_retention_depends_on_prod(
    template: Template, group: str, function: str
) -> None:
    props = _props(resources(template)[f"{group}LogGroup"])
    assert props["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/crm-${{Stage}}-{function}"}
    assert props["RetentionInDays"] == {"Fn::If": ["IsProd", 90, 14]}
    function_props = _props(resources(template)[f"{group}Function"])
    assert function_props["FunctionName"] == {"Fn::Sub": f"crm-${{Stage}}-{function}"}
    assert function_props["LoggingConfig"] == {"LogGroup": {"Ref": f"{group}LogGroup"}}


def test_every_async_path_has_a_failure_destination(template: Template) -> None:
    assert async_failure_problems(template) == []


def test_every_function_code_uri_has_its_handler(template: Template) -> None:
    for name, fn in _functions(template).items():
        if fn["Type"] != "AWS::Serverless::Function":
            continue
        code_uri = _function_setting(template, fn, "CodeUri")
        handler = _function_setting(template, fn, "Handler")
        assert isinstance(code_uri, str), f"{name}: CodeUri must be a local directory"
        assert isinstance(handler, str), f"{name}: no Handler"
        module, _, attribute = handler.rpartition(".")
        source = REPO_ROOT / code_uri / f"{module.replace('.', '/')}.py"
        assert source.is_file(), f"{name}: {source.relative_to(REPO_ROOT)} does not exist"
        pattern = rf"^(async\s+def|def)\s+{re.escape(attribute)}\b|^{re.escape(attribute)}\s*[:=]"
        assert re.search(pattern, source.read_text(encoding="utf-8"), re.MULTILINE), (
            f"{name}: {source.relative_to(REPO_ROOT)} defines no {attribute}"
        )


def test_shared_layer(template: Template) -> None:
    layer = resources(template)["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    props = _props(layer)
    assert props["ContentUri"] == "shared/"
    assert props["CompatibleRuntimes"] == ["python3.11"]
    assert props["CompatibleArchitectures"] == ["arm64"]
    assert props["RetentionPolicy"] == "Delete"
    assert layer["Metadata"] == {"BuildMethod": "python3.11", "BuildArchitecture": "arm64"}
    assert (REPO_ROOT / "shared" / "requirements.txt").is_file()
    assert (REPO_ROOT / "shared" / "crm_core" / "__init__.py").is_file()


# ---------------------------------------------------------------------------- HTTP API


def test_http_routes_are_exactly_the_declared_ones(template: Template) -> None:
    routes = [(method, path) for _, method, path, _ in http_routes(template)]
    assert len(routes) == len(set(routes)), "a route is declared twice"
    assert set(routes) == EXPECTED_ROUTES


def test_http_routes_use_the_api_and_its_authorizer(template: Template) -> None:
    for name, method, path, props in http_routes(template):
        assert props.get("ApiId") == {"Ref": "HttpApi"}, f"{name} {method} {path}: ApiId"
        authorizer = (props.get("Auth") or {}).get("Authorizer")
        if (method, path) in PUBLIC_ROUTES:
            assert authorizer == "NONE", f"{method} {path} should be public"
        else:
            assert authorizer in (None, "CognitoJwt"), f"{method} {path} must use the JWT"


def test_http_api_auth_cors_throttling_logs(template: Template) -> None:
    api = _props(resources(template)["HttpApi"])
    assert api["StageName"] == "$default"
    auth = api["Auth"]
    assert auth["DefaultAuthorizer"] == "CognitoJwt"
    jwt = auth["Authorizers"]["CognitoJwt"]
    assert jwt["IdentitySource"] == "$request.header.Authorization"
    assert jwt["JwtConfiguration"]["issuer"] == {
        "Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"
    }
    assert jwt["JwtConfiguration"]["audience"] == [{"Ref": "UserPoolClient"}]
    cors = api["CorsConfiguration"]
    assert cors["AllowOrigins"] == {"Ref": "CorsAllowedOrigins"}
    assert set(cors["AllowHeaders"]) >= {"Authorization", "Content-Type", "If-Match"}
    assert "Idempotency-Key" in cors["AllowHeaders"]
    assert set(cors["ExposeHeaders"]) >= {"ETag", "Location"}
    assert set(cors["AllowMethods"]) == {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
    assert api["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Fn::FindInMap": ["StageSettings", {"Ref": "Stage"}, "ApiBurst"]},
        "ThrottlingRateLimit": {"Fn::FindInMap": ["StageSettings", {"Ref": "Stage"}, "ApiRate"]},
    }  # tests/iac/test_limits.py holds the numbers
    destination = _ref_target(api["AccessLogSettings"]["DestinationArn"])
    assert resources(template)[destination or ""]["Type"] == "AWS::Logs::LogGroup"
    assert "$context.requestId" in api["AccessLogSettings"]["Format"]


# ---------------------------------------------------------------------------- identity


def test_user_pool(template: Template) -> None:
    pool = _props(resources(template)["UserPool"])
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["UsernameAttributes"] == ["email"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12
    tenant = [a for a in pool["Schema"] if a["Name"] == "tenant_id"]
    assert len(tenant) == 1
    assert tenant[0]["AttributeDataType"] == "String"
    assert tenant[0]["Mutable"] is False, "a user's tenant must never change"
    constraints = tenant[0]["StringAttributeConstraints"]
    assert (int(constraints["MinLength"]), int(constraints["MaxLength"])) == (1, 64)


def test_user_pool_groups_are_the_roles(template: Template) -> None:
    groups = resources(template, "AWS::Cognito::UserPoolGroup").values()
    assert {_props(g)["GroupName"] for g in groups} == ROLES
    assert all(_props(g)["UserPoolId"] == {"Ref": "UserPool"} for g in groups)


def test_user_pool_client_cannot_write_the_tenant(template: Template) -> None:
    client = _props(resources(template)["UserPoolClient"])
    assert client["UserPoolId"] == {"Ref": "UserPool"}
    assert client.get("GenerateSecret", False) is False
    assert set(client["ExplicitAuthFlows"]) == {
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    }
    assert {"email", "custom:tenant_id"} <= set(client["ReadAttributes"])
    # An absent WriteAttributes means "every writable attribute": it must be explicit.
    assert "WriteAttributes" in client
    assert "custom:tenant_id" not in client["WriteAttributes"]
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert (client["IdTokenValidity"], client["AccessTokenValidity"]) == (60, 60)
    assert client["RefreshTokenValidity"] == 30
    assert client["TokenValidityUnits"] == {
        "IdToken": "minutes",
        "AccessToken": "minutes",
        "RefreshToken": "days",
    }


def test_outputs(template: Template) -> None:
    assert set(template["Outputs"]) >= {
        "ApiUrl",
        "UserPoolId",
        "UserPoolClientId",
        "TableName",
        "Stage",
    }


# ---------------------------------------------------------------------------- samconfig


def test_samconfig_deploys_each_stage_to_its_own_stack() -> None:
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert "deploy" not in config.get("default", {}), "a bare `sam deploy` must not guess"
    assert "local" not in config
    for stage in STAGES:
        deploy = config[stage]["deploy"]["parameters"]
        assert deploy["stack_name"] == f"crm-{stage}"
        assert deploy["parameter_overrides"] == f"Stage={stage}"
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["resolve_s3"] is True
        assert deploy["confirm_changeset"] is (stage != "dev")
        assert deploy["fail_on_empty_changeset"] is False


# ---------------------------------------------------------------------------- the checkers
# Small templates that break one rule each: every checker must report them, and must
# accept the same template once fixed.


def _fn(events: dict[str, Any] | None = None, **props: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {"FunctionName": {"Fn::Sub": "crm-${Stage}-x"}, **props, "Events": events},
    }


def _queue(with_redrive: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"QueueName": {"Fn::Sub": "crm-${Stage}-q"}}
    if with_redrive:
        props["RedrivePolicy"] = {
            "deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]},
            "maxReceiveCount": 5,
        }
    return {"Type": "AWS::SQS::Queue", "Properties": props}


_ON_FAILURE = {"DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["Dlq", "Arn"]}}}}
_DLQ = {"DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["Dlq", "Arn"]}}}
_STREAM = {"Stream": {"Fn::GetAtt": ["Table", "StreamArn"]}, "StartingPosition": "LATEST"}
_INVOKE_ON_FAILURE = {
    "EventInvokeConfig": {
        "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": "arn:dlq"}}
    }
}


def _event(type_: str, **props: Any) -> dict[str, Any]:
    return {"E": {"Type": type_, "Properties": props}}


ASYNC_CASES = [
    pytest.param(
        {"Q": _queue(False), "F": _fn(_event("SQS", Queue={"Fn::GetAtt": ["Q", "Arn"]}))},
        {"Q": _queue(True), "F": _fn(_event("SQS", Queue={"Fn::GetAtt": ["Q", "Arn"]}))},
        id="sqs-queue-without-redrive",
    ),
    pytest.param(
        {"F": _fn(_event("SQS", Queue="arn:aws:sqs:us-east-1:123456789012:elsewhere"))},
        {"Q": _queue(True), "F": _fn(_event("SQS", Queue={"Fn::GetAtt": ["Q", "Arn"]}))},
        id="sqs-queue-outside-the-template",
    ),
    pytest.param(
        {"F": _fn(_event("DynamoDB", **_STREAM))},
        {"F": _fn(_event("DynamoDB", **_STREAM, **_ON_FAILURE))},
        id="dynamodb-stream-without-on-failure",
    ),
    pytest.param(
        {"F": _fn(_event("Kinesis", **_STREAM))},
        {"F": _fn(_event("Kinesis", **_STREAM, **_ON_FAILURE))},
        id="kinesis-stream-without-on-failure",
    ),
    pytest.param(
        {"F": _fn(_event("EventBridgeRule", Pattern={"source": ["crm.contacts"]}))},
        {"F": _fn(_event("EventBridgeRule", Pattern={"source": ["crm.contacts"]}, **_DLQ))},
        id="eventbridge-rule-without-dlq",
    ),
    pytest.param(
        {"F": _fn(_event("EventBridgeRule", Pattern={"source": ["crm.contacts"]}))},
        {
            "F": _fn(
                _event("EventBridgeRule", Pattern={"source": ["crm.contacts"]}),
                **_INVOKE_ON_FAILURE,
            )
        },
        id="eventbridge-rule-fixed-by-function-on-failure",
    ),
    pytest.param(
        {"F": _fn(_event("Schedule", Schedule="rate(1 hour)"))},
        {"F": _fn(_event("Schedule", Schedule="rate(1 hour)", **_DLQ))},
        id="schedule-without-dlq",
    ),
    pytest.param(
        {"F": _fn(_event("ScheduleV2", ScheduleExpression="rate(1 hour)"))},
        {"F": _fn(_event("ScheduleV2", ScheduleExpression="rate(1 hour)"), **_INVOKE_ON_FAILURE)},
        id="schedule-v2-without-dlq",
    ),
    pytest.param(
        {"F": _fn(_event("SNS", Topic="arn:topic"))},
        {"F": _fn(_event("SNS", Topic="arn:topic"), **_INVOKE_ON_FAILURE)},
        id="sns-without-function-on-failure",
    ),
    pytest.param(
        {"F": _fn(_event("SomethingNew"))},
        {"F": _fn(_event("HttpApi", Path="/x", Method="GET"))},
        id="unknown-event-type",
    ),
    pytest.param(
        {"R": {"Type": "AWS::Events::Rule", "Properties": {"Targets": [{"Arn": "a", "Id": "t"}]}}},
        {
            "R": {
                "Type": "AWS::Events::Rule",
                "Properties": {"Targets": [{"Arn": "a", "Id": "t", **_DLQ}]},
            }
        },
        id="events-rule-target-without-dlq",
    ),
    pytest.param(
        {"S": {"Type": "AWS::Scheduler::Schedule", "Properties": {"Target": {"Arn": "a"}}}},
        {"S": {"Type": "AWS::Scheduler::Schedule", "Properties": {"Target": {"Arn": "a", **_DLQ}}}},
        id="scheduler-schedule-without-dlq",
    ),
    pytest.param(
        {
            "M": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Table", "StreamArn"]}},
            }
        },
        {
            "M": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "EventSourceArn": {"Fn::GetAtt": ["Table", "StreamArn"]},
                    **_ON_FAILURE,
                },
            }
        },
        id="event-source-mapping-without-on-failure",
    ),
    pytest.param(
        {
            "Q": _queue(False),
            "M": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Q", "Arn"]}},
            },
        },
        {
            "Q": _queue(True),
            "M": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Q", "Arn"]}},
            },
        },
        id="event-source-mapping-queue-without-redrive",
    ),
]


@pytest.mark.parametrize(("broken", "fixed"), ASYNC_CASES)
def test_checker_async_failure_destinations(broken: dict[str, Any], fixed: dict[str, Any]) -> None:
    assert async_failure_problems({"Resources": broken}) != []
    assert async_failure_problems({"Resources": fixed}) == []


def _statement(**fields: Any) -> dict[str, Any]:
    return _fn(Policies=[{"Statement": [{"Effect": "Allow", **fields}]}])


_TABLE_ARN = {"Fn::GetAtt": ["Table", "Arn"]}

IAM_CASES = [
    pytest.param(
        _statement(Action=["dynamodb:*"], Resource=[_TABLE_ARN]),
        _statement(Action=["dynamodb:GetItem"], Resource=[_TABLE_ARN]),
        id="wildcard-action",
    ),
    pytest.param(
        _statement(Action="dynamodb:Get*", Resource=[_TABLE_ARN]),
        _statement(Action="dynamodb:GetItem", Resource=[_TABLE_ARN]),
        id="partial-wildcard-action",
    ),
    pytest.param(
        _statement(Action=["dynamodb:GetItem"], Resource="*"),
        _statement(Action=["dynamodb:GetItem"], Resource=[_TABLE_ARN]),
        id="dynamodb-on-any-resource",
    ),
    pytest.param(
        _statement(NotAction=["iam:*"], Resource=[_TABLE_ARN]),
        _statement(Action=["dynamodb:Query"], Resource=[_TABLE_ARN]),
        id="not-action",
    ),
    pytest.param(
        _fn(Policies=[{"DynamoDBCrudPolicy": {"TableName": {"Ref": "Table"}}}]),
        _statement(Action=["dynamodb:Query"], Resource=[_TABLE_ARN]),
        id="sam-policy-template",
    ),
    pytest.param(
        _fn(Policies=["AmazonDynamoDBFullAccess"]),
        _statement(Action=["dynamodb:Query"], Resource=[_TABLE_ARN]),
        id="managed-policy",
    ),
    pytest.param(
        {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": {"Fn::Sub": "crm-${Stage}-r"},
                "Policies": [
                    {
                        "PolicyName": "p",
                        "PolicyDocument": {
                            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
                        },
                    }
                ],
            },
        },
        {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyDocument": {
                    "Statement": [
                        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:q"}
                    ]
                }
            },
        },
        id="iam-role-inline-wildcard",
    ),
]


@pytest.mark.parametrize(("broken", "fixed"), IAM_CASES)
def test_checker_iam(broken: dict[str, Any], fixed: dict[str, Any]) -> None:
    assert iam_problems({"Resources": {"X": broken}}) != []
    assert iam_problems({"Resources": {"X": fixed}}) == []


def test_checker_dynamodb_allow_list_rejects_scan() -> None:
    tpl = {"Resources": {"X": _statement(Action=["dynamodb:Scan"], Resource=[_TABLE_ARN])}}
    assert function_dynamodb_actions(tpl, "X") - DYNAMODB_ALLOWED_ACTIONS == {"dynamodb:Scan"}


_LOG_GROUP = {
    "Type": "AWS::Logs::LogGroup",
    "Properties": {
        "LogGroupName": {"Fn::Sub": "/aws/lambda/crm-${Stage}-x"},
        "RetentionInDays": 14,
    },
}

LOG_CASES = [
    pytest.param(
        {"F": _fn()},
        {"F": _fn(LoggingConfig={"LogGroup": {"Ref": "L"}}), "L": _LOG_GROUP},
        id="function-without-log-group",
    ),
    pytest.param(
        {"F": _fn(LoggingConfig={"LogGroup": "/aws/lambda/elsewhere"})},
        {"F": _fn(LoggingConfig={"LogGroup": {"Ref": "L"}}), "L": _LOG_GROUP},
        id="log-group-outside-the-template",
    ),
    pytest.param(
        {
            "F": _fn(LoggingConfig={"LogGroup": {"Ref": "L"}}),
            "L": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "x"}},
        },
        {"F": _fn(LoggingConfig={"LogGroup": {"Ref": "L"}}), "L": _LOG_GROUP},
        id="log-group-without-retention",
    ),
]


@pytest.mark.parametrize(("broken", "fixed"), LOG_CASES)
def test_checker_log_groups(broken: dict[str, Any], fixed: dict[str, Any]) -> None:
    assert log_group_problems({"Resources": broken}) != []
    assert log_group_problems({"Resources": fixed}) == []


NAMING_CASES = [
    pytest.param(
        {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "crm"}},
        {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": {"Fn::Sub": "crm-${Stage}"}}},
        id="literal-name",
    ),
    pytest.param(
        {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {"TableName": {"Fn::Join": ["-", ["crm", {"Ref": "Stage"}]]}},
        },
        id="unnamed-table",
    ),
    pytest.param(
        {"Type": "AWS::Made::Up", "Properties": {}},
        {"Type": "AWS::Lambda::Permission", "Properties": {}},
        id="unclassified-type",
    ),
]


@pytest.mark.parametrize(("broken", "fixed"), NAMING_CASES)
def test_checker_naming(broken: dict[str, Any], fixed: dict[str, Any]) -> None:
    assert naming_problems({"Resources": {"X": broken}}) != []
    assert naming_problems({"Resources": {"X": fixed}}) == []
