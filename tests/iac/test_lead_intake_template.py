"""template.yaml's lead intake: the key that seals secrets, the admin API, the public
webhook and the processor, each with exactly the access it uses."""

from __future__ import annotations

import pytest

from crm_core.events.leads import LeadReceived
from infra.cfn import load_template, resources
from tests.iac.test_template import (
    Template,
    _props,
    function_dynamodb_actions,
    function_statements,
    iam_statements,
)

TABLE = {"Fn::GetAtt": ["Table", "Arn"]}
KEY = {"Fn::GetAtt": ["LeadSecretsKey", "Arn"]}


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def _kms_actions(template: Template, function: str) -> set[str]:
    actions: set[str] = set()
    for where, statement in iam_statements(template):
        if where.startswith(f"{function}."):
            listed = statement["Action"]
            names = [listed] if isinstance(listed, str) else listed
            actions |= {a for a in names if a.startswith("kms:")}
    return actions


def test_the_key_rotates_is_kept_and_has_a_staged_alias(template: Template) -> None:
    key = resources(template)["LeadSecretsKey"]
    assert key["DeletionPolicy"] == "Retain"  # a deleted key would lose every secret
    assert _props(key)["EnableKeyRotation"] is True
    alias = _props(resources(template)["LeadSecretsKeyAlias"])
    assert alias["AliasName"] == {"Fn::Sub": "alias/crm-${Stage}-lead-secrets"}


def test_only_the_api_seals_and_only_the_webhook_opens(template: Template) -> None:
    assert _kms_actions(template, "LeadSourcesFunction") == {"kms:Encrypt"}
    assert _kms_actions(template, "LeadWebhookFunction") == {"kms:Decrypt"}
    assert _kms_actions(template, "LeadProcessorFunction") == set()
    for function in ("LeadSourcesFunction", "LeadWebhookFunction"):
        env = _props(resources(template)[function])["Environment"]["Variables"]
        assert env["LEAD_SECRETS_KEY_ID"] == KEY
    assert function_statements(template, "LeadSourcesFunction")["SealSecrets"]["Resource"] == KEY
    assert function_statements(template, "LeadWebhookFunction")["OpenSecrets"]["Resource"] == KEY


def test_the_webhook_is_public_reads_one_item_and_writes_one_transaction(
    template: Template,
) -> None:
    fn = _props(resources(template)["LeadWebhookFunction"])
    (event,) = fn["Events"].values()
    assert event["Type"] == "HttpApi"
    assert event["Properties"]["Path"] == "/webhooks/leads/{source_id}"
    assert event["Properties"]["Auth"] == {"Authorizer": "NONE"}
    assert function_dynamodb_actions(template, "LeadWebhookFunction") == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    }
    assert function_statements(template, "LeadWebhookFunction")["TableItems"]["Resource"] == TABLE


def test_the_admin_api_uses_the_authorizer_and_two_indexes(template: Template) -> None:
    fn = _props(resources(template)["LeadSourcesFunction"])
    for event in fn["Events"].values():
        assert "Auth" not in event["Properties"]  # the API's default: the Cognito JWT
    resources_ = function_statements(template, "LeadSourcesFunction")["TableItems"]["Resource"]
    assert resources_ == [
        TABLE,
        {"Fn::Sub": "${Table.Arn}/index/GSI1"},
        {"Fn::Sub": "${Table.Arn}/index/GSI2"},
    ]
    assert "dynamodb:Scan" not in function_dynamodb_actions(template, "LeadSourcesFunction")


def test_the_processor_takes_lead_received_with_retries_and_a_dlq(template: Template) -> None:
    fn = _props(resources(template)["LeadProcessorFunction"])
    (event,) = fn["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    assert event["Properties"]["Pattern"] == {
        "source": [LeadReceived.SOURCE],
        "detail-type": [LeadReceived.DETAIL_TYPE],
    }
    dlq = {"Fn::GetAtt": ["LeadProcessorDlq", "Arn"]}
    assert event["Properties"]["DeadLetterConfig"] == {"Arn": dlq}
    assert fn["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == dlq
    # Items by key only: dedupe is a GetItem of the email's owner, never a Query.
    actions = function_dynamodb_actions(template, "LeadProcessorFunction")
    assert "dynamodb:Query" not in actions
    assert "dynamodb:Scan" not in actions
    assert function_statements(template, "LeadProcessorFunction")["TableItems"]["Resource"] == TABLE


def test_the_webhook_failures_are_alarmed(template: Template) -> None:
    alarm = _props(resources(template)["LeadWebhookFailureAlarm"])
    assert alarm["MetricName"] == "LeadDeliveryFailed"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "lead_webhook"}]
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
