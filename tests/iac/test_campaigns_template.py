"""template.yaml's email campaigns: SES (identity, configuration set, its events on the
default bus), the unsubscribe key, the dispatcher and its schedules, the send queue and the
sender, email_events and the unsubscribe routes (and the satisfaction routes, which sign
their links with the same key), each with exactly the access it uses."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from crm_core.campaigns import send_rate
from crm_core.events.campaigns import CampaignResumed, CampaignSendRequested
from crm_core.events.contacts import ContactUnsubscribed
from infra.cfn import REPO_ROOT, load_template, resources
from tests.iac.test_template import (
    Template,
    _events,
    _functions,
    _props,
    _ref_target,
    function_dynamodb_actions,
    function_statements,
    iam_statements,
)

TABLE = {"Fn::GetAtt": ["Table", "Arn"]}
INDEXES = [{"Fn::Sub": f"${{Table.Arn}}/index/GSI{n}"} for n in range(1, 5)]
KEY = {"Fn::GetAtt": ["UnsubscribeKey", "Arn"]}
IDENTITY = {
    "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderDomain}"
}
ANY_IDENTITY = {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/*"}
# SendEmail from an identity other than the shared domain: only one tagged for a tenant.
TAGGED_FOR_A_TENANT = {"Null": {"aws:ResourceTag/crm:tenant_id": "false"}}
CONFIGURATION_SET = {
    "Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:"
    "configuration-set/${CampaignConfigurationSet}"
}
UNSUBSCRIBE_URL = {
    "Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/unsubscribe"
}
DEFAULT_BUS = {
    "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
}


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def _env(template: Template, function: str) -> dict[str, Any]:
    variables: dict[str, Any] = _props(resources(template)[function])["Environment"]["Variables"]
    return variables


def _actions(template: Template, function: str, prefix: str) -> set[str]:
    found: set[str] = set()
    for where, statement in iam_statements(template):
        if where.startswith(f"{function}."):
            listed = statement["Action"]
            found |= {a for a in ([listed] if isinstance(listed, str) else listed) if a}
    return {a for a in found if a.startswith(prefix)}


# ---------------------------------------------------------------------------- SES and the key


def test_the_sender_domain_is_a_parameter_with_a_default(template: Template) -> None:
    parameter = template["Parameters"]["SenderDomain"]
    assert parameter["Type"] == "String"
    assert parameter["Default"] == "example.com"
    pattern = re.compile(parameter["AllowedPattern"])
    for good in ("example.com", "mail.acme.example", "dev-mail.crm.example.org"):
        assert pattern.fullmatch(good), good
    for bad in ("Example.com", "localhost", "-x.example.com", "news@example.com", ""):
        assert not pattern.fullmatch(bad), bad
    # How to set it is written where the stages are deployed from.
    assert "SenderDomain=" in (REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8")


def test_ses_identity_configuration_set_and_events_on_the_default_bus(template: Template) -> None:
    res = resources(template)
    identity = _props(res["SenderIdentity"])
    assert res["SenderIdentity"]["Type"] == "AWS::SES::EmailIdentity"
    assert identity["EmailIdentity"] == {"Ref": "SenderDomain"}
    configuration_set = _props(res["CampaignConfigurationSet"])
    assert configuration_set["Name"] == {"Fn::Sub": "crm-${Stage}-campaigns"}
    destination = _props(res["CampaignEventDestination"])
    assert destination["ConfigurationSetName"] == {"Ref": "CampaignConfigurationSet"}
    event_destination = destination["EventDestination"]
    assert event_destination["Enabled"] is True  # CloudFormation's default is false
    assert event_destination["EventBridgeDestination"] == {"EventBusArn": DEFAULT_BUS}
    assert set(event_destination["MatchingEventTypes"]) == {
        "send",
        "delivery",
        "bounce",
        "complaint",
        "reject",
        "open",
        "click",
    }


def test_the_unsubscribe_key_is_an_hmac_key_that_is_kept(template: Template) -> None:
    key = resources(template)["UnsubscribeKey"]
    assert key["Type"] == "AWS::KMS::Key"
    # A new key would break every unsubscribe link already sent.
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = _props(key)
    assert (props["KeySpec"], props["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    assert "EnableKeyRotation" not in props  # KMS rotates no HMAC key
    alias = _props(resources(template)["UnsubscribeKeyAlias"])
    assert alias["AliasName"] == {"Fn::Sub": "alias/crm-${Stage}-unsubscribe"}
    assert alias["TargetKeyId"] == {"Ref": "UnsubscribeKey"}


# The functions that make MACs with the key, by the variable that names it to them: the
# satisfaction links and reply addresses use the same key under labels of their own.
KEY_USERS = {
    "CampaignsFunction": "UNSUBSCRIBE_KEY_ID",
    "CampaignSenderFunction": "UNSUBSCRIBE_KEY_ID",
    "UnsubscribeFunction": "UNSUBSCRIBE_KEY_ID",
    "CaseMailerFunction": "CASE_MAIL_KEY_ID",
    "InboundMailFunction": "CASE_MAIL_KEY_ID",
    "CsatFunction": "CSAT_KEY_ID",
}


def test_only_the_link_functions_make_macs_with_the_key(template: Template) -> None:
    users = {
        where.split(".")[0]
        for where, statement in iam_statements(template)
        if "kms:GenerateMac" in statement.get("Action", [])
    }
    assert users == set(KEY_USERS)
    for function in users:
        assert _actions(template, function, "kms:") == {"kms:GenerateMac"}
        assert _env(template, function)[KEY_USERS[function]] == KEY
        (statement,) = [
            s for s in function_statements(template, function).values() if "kms:" in str(s)
        ]
        assert statement["Resource"] == KEY


# ---------------------------------------------------------------------------- dispatch


def test_the_dispatcher_takes_send_requests_and_resumes_with_retries_and_a_dlq(
    template: Template,
) -> None:
    fn = _props(resources(template)["CampaignDispatcherFunction"])
    assert fn["FunctionName"] == {"Fn::Sub": "crm-${Stage}-campaign-dispatcher"}
    assert fn["CodeUri"] == "functions/campaign_dispatcher/"
    assert fn["Timeout"] == 900
    assert fn["Environment"]["Variables"]["SEND_QUEUE_URL"] == {"Ref": "SendQueue"}
    (event,) = fn["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    assert event["Properties"]["EventBusName"] == {"Ref": "EventBus"}
    assert event["Properties"]["Pattern"] == {
        "source": [CampaignSendRequested.SOURCE],
        "detail-type": [CampaignSendRequested.DETAIL_TYPE, CampaignResumed.DETAIL_TYPE],
    }
    dlq = {"Fn::GetAtt": ["DispatcherDlq", "Arn"]}
    assert event["Properties"]["DeadLetterConfig"] == {"Arn": dlq}
    assert fn["EventInvokeConfig"]["MaximumRetryAttempts"] == 2
    assert fn["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == dlq


def test_the_dispatcher_reads_the_audience_through_every_index(template: Template) -> None:
    assert function_dynamodb_actions(template, "CampaignDispatcherFunction") == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
    }
    statements = function_statements(template, "CampaignDispatcherFunction")
    assert statements["TableItems"]["Resource"] == TABLE
    assert statements["AudienceIndexes"]["Action"] == ["dynamodb:Query"]
    assert statements["AudienceIndexes"]["Resource"] == INDEXES
    assert statements["EnqueueRecipients"] == {
        "Sid": "EnqueueRecipients",
        "Effect": "Allow",
        "Action": ["sqs:SendMessage"],
        "Resource": {"Fn::GetAtt": ["SendQueue", "Arn"]},
    }
    assert _actions(template, "CampaignDispatcherFunction", "sqs:") == {"sqs:SendMessage"}


def test_the_scheduler_role_may_only_invoke_the_dispatcher(template: Template) -> None:
    role = _props(resources(template)["SchedulerRole"])
    assert "RoleName" not in role  # a named role would need CAPABILITY_NAMED_IAM
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    granted = {
        (action, _ref_target(statement["Resource"]))
        for where, statement in iam_statements(template)
        if where.startswith("SchedulerRole.")
        for action in statement["Action"]
    }
    assert granted == {
        ("lambda:InvokeFunction", "CampaignDispatcherFunction"),
        ("sqs:SendMessage", "DispatcherDlq"),
    }
    group = _props(resources(template)["CampaignScheduleGroup"])
    assert group["Name"] == {"Fn::Sub": "crm-${Stage}-campaigns"}


def test_the_campaigns_function_schedules_in_its_group_and_passes_only_that_role(
    template: Template,
) -> None:
    env = _env(template, "CampaignsFunction")
    assert env["SCHEDULE_GROUP"] == {"Ref": "CampaignScheduleGroup"}
    assert env["DISPATCHER_ARN"] == {"Fn::GetAtt": ["CampaignDispatcherFunction", "Arn"]}
    assert env["SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert env["DISPATCHER_DLQ_ARN"] == {"Fn::GetAtt": ["DispatcherDlq", "Arn"]}
    assert env["SES_CONFIGURATION_SET"] == {"Ref": "CampaignConfigurationSet"}
    statements = function_statements(template, "CampaignsFunction")
    schedules = statements["CampaignSchedules"]
    assert set(schedules["Action"]) == {
        "scheduler:CreateSchedule",
        "scheduler:UpdateSchedule",
        "scheduler:DeleteSchedule",
        "scheduler:GetSchedule",
    }
    group = _props(resources(template)["CampaignScheduleGroup"])["Name"]["Fn::Sub"]
    assert schedules["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:"
        f"schedule/{group}/*"
    }
    assert statements["PassTheSchedulerRole"]["Action"] == ["iam:PassRole"]
    assert statements["PassTheSchedulerRole"]["Resource"] == {
        "Fn::GetAtt": ["SchedulerRole", "Arn"]
    }
    assert statements["PassTheSchedulerRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    assert _actions(template, "CampaignsFunction", "ses:") == {
        "ses:GetEmailIdentity",
        "ses:SendEmail",
    }
    # Any identity's status and tags are read; a tenant's own identity sends when tagged.
    assert statements["SenderIdentityStatus"]["Resource"] == ANY_IDENTITY
    assert statements["TestSend"]["Resource"] == [IDENTITY, CONFIGURATION_SET]
    tagged = statements["TestSendFromTenantIdentities"]
    assert (tagged["Action"], tagged["Resource"]) == (["ses:SendEmail"], ANY_IDENTITY)
    assert tagged["Condition"] == TAGGED_FOR_A_TENANT


def test_the_campaigns_function_knows_the_sender_domain_and_lists_only_its_pools_users(
    template: Template,
) -> None:
    env = _env(template, "CampaignsFunction")
    assert env["SENDER_DOMAIN"] == {"Ref": "SenderDomain"}
    assert env["USER_POOL_ID"] == {"Ref": "UserPool"}
    assert _actions(template, "CampaignsFunction", "cognito-idp:") == {"cognito-idp:ListUsers"}
    users = function_statements(template, "CampaignsFunction")["TenantUsers"]
    assert users["Resource"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    # No other function reads the pool.
    readers = {
        where.split(".")[0]
        for where, statement in iam_statements(template)
        if any(str(a).startswith("cognito-idp:") for a in statement.get("Action", []))
    }
    assert readers == {"CampaignsFunction"}


def test_the_campaigns_function_keeps_its_segment_access(template: Template) -> None:
    statements = function_statements(template, "CampaignsFunction")
    assert statements["TableItems"]["Resource"] == TABLE
    assert statements["SegmentCandidates"]["Resource"] == INDEXES
    assert "dynamodb:Scan" not in function_dynamodb_actions(template, "CampaignsFunction")


# ---------------------------------------------------------------------------- sending


def test_the_send_queue_redrives_to_its_dlq_and_outlasts_the_sender(template: Template) -> None:
    queue = _props(resources(template)["SendQueue"])
    sender = _props(resources(template)["CampaignSenderFunction"])
    assert queue["QueueName"] == {"Fn::Sub": "crm-${Stage}-campaign-send"}
    assert sender["Timeout"] == 120
    assert queue["VisibilityTimeout"] == 6 * sender["Timeout"]  # as Lambda advises
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["SendDlq", "Arn"]},
        "maxReceiveCount": 5,
    }
    assert queue["SqsManagedSseEnabled"] is True
    dlq = _props(resources(template)["SendDlq"])
    assert dlq["QueueName"] == {"Fn::Sub": "crm-${Stage}-campaign-send-dlq"}
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    # A message must not expire in the queue before its DLQ would have it.
    assert queue["MessageRetentionPeriod"] <= dlq["MessageRetentionPeriod"]


def test_the_sender_takes_small_batches_two_at_a_time(template: Template) -> None:
    fn = _props(resources(template)["CampaignSenderFunction"])
    assert fn["FunctionName"] == {"Fn::Sub": "crm-${Stage}-campaign-sender"}
    assert fn["CodeUri"] == "functions/campaign_sender/"
    (event,) = fn["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"] == {
        "Queue": {"Fn::GetAtt": ["SendQueue", "Arn"]},
        "BatchSize": 2,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 2},
    }
    assert "EventInvokeConfig" not in fn  # a poller invokes it synchronously
    # The sender's rate limiter shares the stage's rate among this many pollers.
    scaling = event["Properties"]["ScalingConfig"]
    assert scaling["MaximumConcurrency"] == send_rate.SENDER_CONCURRENCY


def test_the_sender_environment_and_the_rate_of_each_stage(template: Template) -> None:
    env = _env(template, "CampaignSenderFunction")
    assert env["SES_CONFIGURATION_SET"] == {"Ref": "CampaignConfigurationSet"}
    assert env["UNSUBSCRIBE_URL"] == UNSUBSCRIBE_URL
    assert env["SEND_RATE_PER_SECOND"] == {
        "Fn::FindInMap": ["StageSettings", {"Ref": "Stage"}, "SendRatePerSecond"]
    }
    rates = {
        stage: settings["SendRatePerSecond"]
        for stage, settings in template["Mappings"]["StageSettings"].items()
    }
    assert rates == {"dev": "5", "staging": "10", "prod": "14", "local": "400"}


def test_the_sender_sends_only_from_the_domain_with_the_configuration_set(
    template: Template,
) -> None:
    assert function_dynamodb_actions(template, "CampaignSenderFunction") == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    }
    statements = function_statements(template, "CampaignSenderFunction")
    assert statements["TableItems"]["Resource"] == TABLE
    assert set(statements["SendEmails"]["Action"]) == {"ses:SendEmail", "ses:SendRawEmail"}
    assert statements["SendEmails"]["Resource"] == [IDENTITY, CONFIGURATION_SET]
    tagged = statements["SendFromTenantIdentities"]
    assert set(tagged["Action"]) == {"ses:SendEmail", "ses:SendRawEmail"}
    assert (tagged["Resource"], tagged["Condition"]) == (ANY_IDENTITY, TAGGED_FOR_A_TENANT)
    assert _actions(template, "CampaignSenderFunction", "ses:") == {
        "ses:SendEmail",
        "ses:SendRawEmail",
    }


# ---------------------------------------------------------------------------- email events


def test_email_events_takes_this_stages_ses_events_and_unsubscribes(template: Template) -> None:
    fn = _props(resources(template)["EmailEventsFunction"])
    assert fn["FunctionName"] == {"Fn::Sub": "crm-${Stage}-email-events"}
    events = fn["Events"]
    assert set(events) == {"SesEvents", "ContactUnsubscribed"}
    ses = events["SesEvents"]["Properties"]
    assert ses["EventBusName"] == "default"  # SES puts its events nowhere else
    assert ses["RuleName"] == {"Fn::Sub": "crm-${Stage}-email-events-ses"}
    # Every stage of the account sends its SES events to the one default bus.
    configuration_set = _props(resources(template)["CampaignConfigurationSet"])["Name"]
    assert configuration_set == {"Fn::Sub": "crm-${Stage}-campaigns"}
    assert ses["Pattern"] == {
        "source": ["aws.ses"],
        "detail": {"mail": {"tags": {"ses:configuration-set": [configuration_set]}}},
    }
    unsubscribed = events["ContactUnsubscribed"]["Properties"]
    assert unsubscribed["EventBusName"] == {"Ref": "EventBus"}
    assert unsubscribed["Pattern"] == {
        "source": [ContactUnsubscribed.SOURCE],
        "detail-type": [ContactUnsubscribed.DETAIL_TYPE],
    }
    dlq = {"Fn::GetAtt": ["EmailEventsDlq", "Arn"]}
    for event in events.values():
        assert event["Properties"]["DeadLetterConfig"] == {"Arn": dlq}
    assert fn["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == dlq
    policy = _props(resources(template)["EmailEventsDlqPolicy"])
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:"
            "rule/crm-${Stage}-email-events-ses"
        },
        {
            "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:"
            "rule/crm-${Stage}-bus/crm-${Stage}-email-events"
        },
    ]


def test_email_events_writes_only_table_items(template: Template) -> None:
    assert function_dynamodb_actions(template, "EmailEventsFunction") == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",  # the consumed event's idempotency record
        "dynamodb:Query",
    }
    assert function_statements(template, "EmailEventsFunction")["TableItems"]["Resource"] == TABLE


# ---------------------------------------------------------------------------- unsubscribe


def test_unsubscribe_is_public_and_writes_one_transaction(template: Template) -> None:
    fn = _props(resources(template)["UnsubscribeFunction"])
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in fn["Events"].values()}
    assert routes == {("GET", "/unsubscribe"), ("POST", "/unsubscribe")}
    for event in fn["Events"].values():
        assert event["Properties"]["Auth"] == {"Authorizer": "NONE"}
    assert function_dynamodb_actions(template, "UnsubscribeFunction") == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
    }
    assert function_statements(template, "UnsubscribeFunction")["TableItems"]["Resource"] == TABLE


def test_csat_is_public_and_writes_one_transaction(template: Template) -> None:
    fn = _props(resources(template)["CsatFunction"])
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in fn["Events"].values()}
    assert routes == {("GET", "/csat"), ("POST", "/csat")}
    for event in fn["Events"].values():
        assert event["Properties"]["Auth"] == {"Authorizer": "NONE"}
    # GetItem of the case; the rating's and CaseRated's PutItem and the case's UpdateItem in
    # one transaction. No index: the function reads nothing but the case.
    assert function_dynamodb_actions(template, "CsatFunction") == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
    }
    assert function_statements(template, "CsatFunction")["TableItems"]["Resource"] == TABLE
    assert fn["CodeUri"] == "functions/csat/"
    assert fn["LoggingConfig"] == {"LogGroup": {"Ref": "CsatLogGroup"}}


# ---------------------------------------------------------------------------- references


def _references(value: Any) -> set[str]:
    """The logical ids a value names through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!][^}]*)\}", text)}
                if not isinstance(inner, str):
                    found |= _references(inner[1])
            else:
                found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def api_cycle_problems(template: Template) -> list[str]:
    """A route's function may not name its API (an API's URL in its environment, say): SAM
    writes the function's ARN into the API's definition, so CloudFormation would find a
    circular dependency and refuse the deploy. cfn-lint and `sam validate` do not see it."""
    problems = []
    for name, fn in _functions(template).items():
        apis = {
            _ref_target((event.get("Properties") or {}).get("ApiId"))
            for event in _events(fn).values()
            if event.get("Type") in ("HttpApi", "Api")
        } - {None}
        named = _references({k: v for k, v in _props(fn).items() if k != "Events"})
        for api in sorted(str(a) for a in apis & named):
            problems.append(f"{name}: a route of {api} names {api} (a circular dependency)")
    return problems


def test_no_route_names_its_own_api(template: Template) -> None:
    assert api_cycle_problems(template) == []
    # The sender is no route: it may name the API.
    assert "HttpApi" in _references(_props(resources(template)["CampaignSenderFunction"]))


def test_checker_finds_a_route_that_names_its_api(template: Template) -> None:
    cyclic = copy.deepcopy(template)
    env = cyclic["Resources"]["CampaignsFunction"]["Properties"]["Environment"]["Variables"]
    env["UNSUBSCRIBE_URL"] = UNSUBSCRIBE_URL
    assert api_cycle_problems(cyclic) == [
        "CampaignsFunction: a route of HttpApi names HttpApi (a circular dependency)"
    ]


# ---------------------------------------------------------------------------- outputs


def test_outputs_name_the_queues_the_key_and_the_dkim_records(template: Template) -> None:
    outputs = template["Outputs"]
    for queue in ("SendQueue", "SendDlq", "DispatcherDlq", "EmailEventsDlq"):
        assert outputs[f"{queue}Url"]["Value"] == {"Ref": queue}
    assert outputs["UnsubscribeKeyArn"]["Value"] == KEY
    assert outputs["UnsubscribeUrl"]["Value"] == UNSUBSCRIBE_URL
    assert outputs["CampaignScheduleGroupName"]["Value"] == {"Ref": "CampaignScheduleGroup"}
    assert outputs["SesConfigurationSetName"]["Value"] == {"Ref": "CampaignConfigurationSet"}
    for n in (1, 2, 3):
        assert outputs[f"SenderDomainDkim{n}"]["Value"] == {
            "Fn::Sub": f"${{SenderIdentity.DkimDNSTokenName{n}}} CNAME "
            f"${{SenderIdentity.DkimDNSTokenValue{n}}}"
        }
