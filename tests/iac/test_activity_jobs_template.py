"""template.yaml's asynchronous activity functions: activity_events (merges and deletes of
contacts) and task_overdue (the daily check), each with exactly the access it uses."""

from __future__ import annotations

import pytest

from crm_core.events.cases import CaseReplied
from crm_core.events.contacts import ContactDeleted, ContactMerged
from infra.cfn import load_template, resources
from tests.iac.test_template import (
    Template,
    _props,
    function_dynamodb_actions,
    function_statements,
)

TABLE = {"Fn::GetAtt": ["Table", "Arn"]}


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def test_activity_events_subscribes_to_merges_and_deletes_of_contacts_and_case_entries(
    template: Template,
) -> None:
    fn = _props(resources(template)["ActivityEventsFunction"])
    assert fn["FunctionName"] == {"Fn::Sub": "crm-${Stage}-activity-events"}
    assert fn["Timeout"] == 300  # time to move 10,000 activities
    (event,) = fn["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    assert event["Properties"]["Pattern"] == {
        "source": [ContactMerged.SOURCE, CaseReplied.SOURCE],
        "detail-type": [
            ContactMerged.DETAIL_TYPE,
            ContactDeleted.DETAIL_TYPE,
            CaseReplied.DETAIL_TYPE,
        ],
    }
    dlq = {"Fn::GetAtt": ["ActivityEventsDlq", "Arn"]}
    assert event["Properties"]["DeadLetterConfig"] == {"Arn": dlq}
    assert fn["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == dlq


def test_activity_events_reads_and_writes_only_table_items(template: Template) -> None:
    assert function_dynamodb_actions(template, "ActivityEventsFunction") == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
    }
    statements = function_statements(template, "ActivityEventsFunction")
    assert statements["TableItems"]["Resource"] == TABLE  # no index
    assert statements["OnFailureDestination"]["Resource"] == {
        "Fn::GetAtt": ["ActivityEventsDlq", "Arn"]
    }


def test_task_overdue_runs_daily_and_is_retried_when_it_stops(template: Template) -> None:
    fn = _props(resources(template)["TaskOverdueFunction"])
    assert fn["FunctionName"] == {"Fn::Sub": "crm-${Stage}-task-overdue"}
    assert fn["Timeout"] == 300
    (event,) = fn["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == "cron(0 6 * * ? *)"
    assert fn["EventInvokeConfig"]["MaximumRetryAttempts"] >= 1
    dlq = {"Fn::GetAtt": ["TaskOverdueDlq", "Arn"]}
    assert event["Properties"]["DeadLetterConfig"] == {"Arn": dlq}
    assert fn["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == dlq


def test_task_overdue_queries_only_the_overdue_watch_and_writes_its_reports(
    template: Template,
) -> None:
    statements = function_statements(template, "TaskOverdueFunction")
    assert statements["OverdueWatch"]["Action"] == ["dynamodb:Query"]
    assert statements["OverdueWatch"]["Resource"] == {"Fn::Sub": "${Table.Arn}/index/GSI4"}
    assert statements["Reports"]["Action"] == ["dynamodb:UpdateItem", "dynamodb:PutItem"]
    assert statements["Reports"]["Resource"] == TABLE
    assert function_dynamodb_actions(template, "TaskOverdueFunction") == {
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
    }


@pytest.mark.parametrize("queue", ["ActivityEventsDlq", "TaskOverdueDlq"])
def test_the_dead_letter_queues_keep_messages_14_days_encrypted(
    template: Template, queue: str
) -> None:
    props = _props(resources(template)[queue])
    assert props["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert props["SqsManagedSseEnabled"] is True
    assert f"{queue}Url" in template["Outputs"]
