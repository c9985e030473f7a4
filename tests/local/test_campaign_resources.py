"""The local cloud creates template.yaml's email campaign resources (the HMAC key, the SES
identity and configuration set, the schedule group, the queues, the scheduler role), and
the campaign functions' environments resolve to them, the API's URL to the local gateway."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.cfn import load_template
from infra.local.provision import Provisioned, Provisioner
from infra.topology import (
    ACCOUNT_ID,
    REGION,
    FunctionSpec,
    Physical,
    Resolver,
    serverless_functions,
)
from tests.local.conftest import API_URL

LAMBDA = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}"
SQS = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}"


@pytest.fixture(scope="module")
def functions(provisioned: Provisioned) -> dict[str, FunctionSpec]:
    specs = serverless_functions(load_template(), provisioned.resolver)
    return {spec.logical_id: spec for spec in specs}


# The key ----------------------------------------------------------------------------------
def test_the_unsubscribe_key_makes_and_verifies_macs(
    provisioned: Provisioned, clients: Any
) -> None:
    kms = clients("kms")
    key = provisioned.physical["UnsubscribeKey"]
    metadata = kms.describe_key(KeyId=key.ref)["KeyMetadata"]
    assert (metadata["KeySpec"], metadata["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    assert metadata["Description"] == "Signs the unsubscribe links of crm-local campaign emails"
    assert key.attributes["Arn"] == metadata["Arn"]
    assert provisioned.physical["UnsubscribeKeyAlias"].ref == "alias/crm-local-unsubscribe"
    mac = kms.generate_mac(KeyId=key.attributes["Arn"], Message=b"t1", MacAlgorithm="HMAC_SHA_256")
    assert len(mac["Mac"]) == 32
    again = kms.generate_mac(
        KeyId="alias/crm-local-unsubscribe", Message=b"t1", MacAlgorithm="HMAC_SHA_256"
    )
    assert again["Mac"] == mac["Mac"]  # the same secret every time: tokens stay valid
    verified = kms.verify_mac(
        KeyId=key.ref, Message=b"t1", MacAlgorithm="HMAC_SHA_256", Mac=mac["Mac"]
    )
    assert verified["MacValid"] is True
    assert "UnsubscribeKey" not in provisioned.skipped


# SES ----------------------------------------------------------------------------------------
def test_the_sender_domain_is_a_verified_identity_with_dkim(
    provisioned: Provisioned, clients: Any
) -> None:
    identity = clients("sesv2").get_email_identity(EmailIdentity="example.com")
    assert identity["IdentityType"] == "DOMAIN"
    assert identity["VerificationStatus"] == "SUCCESS"
    assert identity["VerifiedForSendingStatus"] is True
    assert identity["DkimAttributes"]["SigningEnabled"] is True
    found = provisioned.physical["SenderIdentity"]
    assert found.ref == "example.com"
    for n in (1, 2, 3):
        assert found.attributes[f"DkimDNSTokenName{n}"].endswith("._domainkey.example.com")
        assert found.attributes[f"DkimDNSTokenValue{n}"].endswith(".dkim.amazonses.com")


def test_the_configuration_set_and_its_eventbridge_destination(
    provisioned: Provisioned, clients: Any
) -> None:
    configuration_set = clients("sesv2").get_configuration_set(
        ConfigurationSetName="crm-local-campaigns"
    )
    assert configuration_set["ConfigurationSetName"] == "crm-local-campaigns"
    assert provisioned.physical["CampaignConfigurationSet"].ref == "crm-local-campaigns"
    # moto keeps no event destination; infra/local/mail.py reads it from the template.
    assert provisioned.physical["CampaignEventDestination"].ref == "to-eventbridge"


# Scheduler and IAM ----------------------------------------------------------------------------
def test_the_schedule_group_and_the_role_schedules_fire_as(
    provisioned: Provisioned, clients: Any
) -> None:
    group = clients("scheduler").get_schedule_group(Name="crm-local-campaigns")
    assert group["Name"] == "crm-local-campaigns"
    assert provisioned.physical["CampaignScheduleGroup"].attributes["Arn"] == group["Arn"]
    role = provisioned.physical["SchedulerRole"]
    assert role.ref == "crm-local-SchedulerRole"
    assert role.attributes["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:role/crm-local-SchedulerRole"
    assert role.attributes["RoleId"].startswith("AROA")
    assert "SchedulerRole" not in provisioned.skipped  # a name, not a placeholder


# Queues ---------------------------------------------------------------------------------------
def test_the_send_queue_redrives_to_its_dlq(provisioned: Provisioned, clients: Any) -> None:
    sqs = clients("sqs")
    url = provisioned.physical["SendQueue"].ref
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "720"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:crm-local-campaign-send-dlq",
        "maxReceiveCount": 5,
    }
    for dlq in ("crm-local-campaign-dispatcher-dlq", "crm-local-email-events-dlq"):
        assert sqs.get_queue_url(QueueName=dlq)["QueueUrl"]


# Environments ---------------------------------------------------------------------------------
def test_the_campaign_functions_environments(
    provisioned: Provisioned, functions: dict[str, FunctionSpec]
) -> None:
    key_arn = provisioned.physical["UnsubscribeKey"].attributes["Arn"]
    campaigns = functions["CampaignsFunction"].environment
    assert {k: v for k, v in campaigns.items() if k.isupper() and not k.startswith("POWER")} == {
        "TABLE_NAME": "crm-local",
        "STAGE": "local",
        "TENANT_REQUESTS_PER_SECOND": "200",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
        "SCHEDULE_GROUP": "crm-local-campaigns",
        "DISPATCHER_ARN": f"{LAMBDA}:function:crm-local-campaign-dispatcher",
        "SCHEDULER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT_ID}:role/crm-local-SchedulerRole",
        "DISPATCHER_DLQ_ARN": f"{SQS}:crm-local-campaign-dispatcher-dlq",
        "SES_CONFIGURATION_SET": "crm-local-campaigns",
        "UNSUBSCRIBE_KEY_ID": key_arn,
        "SENDER_DOMAIN": "example.com",
        "USER_POOL_ID": provisioned.physical["UserPool"].ref,
    }
    assert campaigns["USER_POOL_ID"].startswith(f"{REGION}_")
    assert functions["CampaignDispatcherFunction"].arn == campaigns["DISPATCHER_ARN"]
    sender = functions["CampaignSenderFunction"]
    assert sender.timeout_s == 120
    assert sender.environment["SES_CONFIGURATION_SET"] == "crm-local-campaigns"
    assert sender.environment["UNSUBSCRIBE_URL"] == f"{API_URL}/unsubscribe"
    assert sender.environment["UNSUBSCRIBE_KEY_ID"] == key_arn
    assert sender.environment["SEND_RATE_PER_SECOND"] == "400"
    dispatcher = functions["CampaignDispatcherFunction"]
    assert dispatcher.environment["SEND_QUEUE_URL"] == provisioned.physical["SendQueue"].ref
    assert dispatcher.timeout_s == 900
    assert functions["UnsubscribeFunction"].environment["UNSUBSCRIBE_KEY_ID"] == key_arn
    assert functions["EmailEventsFunction"].name == "crm-local-email-events"


def test_the_email_events_rules_resolve_on_their_buses(functions: dict[str, FunctionSpec]) -> None:
    events = functions["EmailEventsFunction"].events
    ses = events["SesEvents"]["Properties"]
    assert ses["EventBusName"] == "default"
    assert ses["RuleName"] == "crm-local-email-events-ses"
    assert ses["Pattern"] == {
        "source": ["aws.ses"],
        "detail": {"mail": {"tags": {"ses:configuration-set": ["crm-local-campaigns"]}}},
    }
    unsubscribed = events["ContactUnsubscribed"]["Properties"]
    assert unsubscribed["EventBusName"] == "crm-local-bus"


# The API's URL ---------------------------------------------------------------------------------
def test_the_api_urls_are_the_local_gateways(provisioned: Provisioned) -> None:
    resolver = provisioned.resolver
    api = provisioned.physical["HttpApi"]
    assert api.attributes["ApiEndpoint"] == API_URL
    execute_api = "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    assert resolver.resolve({"Fn::Sub": f"{execute_api}/"}) == f"{API_URL}/"
    assert resolver.resolve({"Fn::Sub": f"{execute_api}/unsubscribe?x=1"}) == (
        f"{API_URL}/unsubscribe?x=1"
    )
    joined = {
        "Fn::Join": ["", ["https://", {"Ref": "HttpApi"}, ".execute-api.us-east-1.amazonaws.com/a"]]
    }
    assert resolver.resolve(joined) == f"{API_URL}/a"
    assert resolver.resolve({"Fn::GetAtt": ["HttpApi", "ApiEndpoint"]}) == API_URL
    # Only that host: a longer host name, or another API's, stays as it is.
    for other in (
        "https://crmlocal.execute-api.us-east-1.amazonaws.com.example.org/x",
        "https://other.execute-api.us-east-1.amazonaws.com/x",
    ):
        assert resolver.resolve({"Fn::Sub": other}) == other


def test_without_a_gateway_url_the_api_keeps_its_aws_url(clients: Any) -> None:
    template = {
        "Resources": {"Api": {"Type": "AWS::Serverless::HttpApi", "Properties": {}}},
    }
    provisioned = Provisioner(clients).provision(template, {})
    url = "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/unsubscribe"
    assert provisioned.resolver.resolve({"Fn::Sub": url}) == (
        "https://crmlocal.execute-api.us-east-1.amazonaws.com/unsubscribe"
    )


def test_a_url_rewrite_is_the_resolvers_for_any_resource() -> None:
    physical = {"Site": Physical(ref="s1", urls={"https://s1.example.com": "http://localhost:1"})}
    resolver = Resolver({"Resources": {}}, {}, physical)
    assert resolver.resolve({"Fn::Sub": "https://${Site}.example.com/p"}) == "http://localhost:1/p"
    assert resolver.resolve({"Fn::Sub": "https://${Site}.example.com:8443/p"}) == (
        "https://s1.example.com:8443/p"
    )


# Roles and functions are names: their properties may name anything ----------------------------
def test_a_role_and_functions_may_name_each_other(clients: Any) -> None:
    code = {"CodeUri": "functions/campaigns/"}
    template = {
        "Resources": {
            "Caller": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    **code,
                    "FunctionName": "x-caller",
                    "Environment": {
                        "Variables": {
                            "TARGET": {"Fn::GetAtt": ["Target", "Arn"]},
                            "ROLE": {"Fn::GetAtt": ["Role", "Arn"]},
                        }
                    },
                },
            },
            "Target": {
                "Type": "AWS::Serverless::Function",
                "Properties": {**code, "FunctionName": "x-target"},
            },
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": "x-role",
                    "Path": "/service/",
                    "Policies": [
                        {
                            "PolicyName": "p",
                            "PolicyDocument": {
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": "lambda:InvokeFunction",
                                        "Resource": {"Fn::GetAtt": ["Target", "Arn"]},
                                    }
                                ]
                            },
                        }
                    ],
                },
            },
        }
    }
    provisioned = Provisioner(clients).provision(template, {})
    (caller,) = [
        f for f in serverless_functions(template, provisioned.resolver) if f.name == "x-caller"
    ]
    assert caller.environment == {
        "TARGET": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:x-target",
        "ROLE": f"arn:aws:iam::{ACCOUNT_ID}:role/service/x-role",
    }


def test_the_made_up_dkim_tokens_are_stable(clients: Any) -> None:
    template = {
        "Resources": {
            "Identity": {
                "Type": "AWS::SES::EmailIdentity",
                "Properties": {"EmailIdentity": "news.example.net"},
            }
        }
    }
    first = Provisioner(clients).provision(template, {}).physical["Identity"].attributes
    clients("sesv2").delete_email_identity(EmailIdentity="news.example.net")
    second = Provisioner(clients).provision(template, {}).physical["Identity"].attributes
    assert first == second
    tokens = {first[f"DkimDNSTokenName{n}"] for n in (1, 2, 3)}
    assert len(tokens) == 3
