"""Shared fixtures: moto in-process, the table built from template.yaml, the HTTP handlers."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "TABLE_NAME": "crm-test",
        "STAGE": "test",
        "POWERTOOLS_SERVICE_NAME": "contacts",
        "POWERTOOLS_METRICS_NAMESPACE": "CRM",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "LEAD_SECRETS_KEY_ID": "alias/crm-test-lead-secrets",
        # Campaigns (issue 8): what template.yaml gives the campaign functions.
        "UNSUBSCRIBE_KEY_ID": "alias/crm-test-unsubscribe",
        # Satisfaction links: the same HMAC key (template.yaml), another label.
        "CSAT_KEY_ID": "alias/crm-test-unsubscribe",
        "UNSUBSCRIBE_URL": "https://api.crm.test/unsubscribe",
        "SES_CONFIGURATION_SET": "crm-test-campaigns",
        "SEND_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/crm-test-campaign-send",
        "SEND_RATE_PER_SECOND": "1000",
        "SCHEDULE_GROUP": "crm-test-campaigns",
        "DISPATCHER_ARN": (
            "arn:aws:lambda:us-east-1:123456789012:function:crm-test-campaign-dispatcher"
        ),
        "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/crm-test-scheduler",
        "DISPATCHER_DLQ_ARN": "arn:aws:sqs:us-east-1:123456789012:crm-test-campaign-dispatcher-dlq",
        # The shared sending domain (mail_setup's) and a user pool id: tests that need the
        # pool create one and point the function's `teammates` at it.
        "SENDER_DOMAIN": "mail.example.com",
        "USER_POOL_ID": "us-east-1_crmtest",
        # Deals (issue 19): what template.yaml gives deal_rotting.
        "ROT_SCHEDULE_GROUP": "crm-test-deal-rotting",
        "ROT_TARGET_ARN": "arn:aws:lambda:us-east-1:123456789012:function:crm-test-deal-rotting",
        "ROT_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/crm-test-deal-rot-scheduler",
        "ROT_DLQ_ARN": "arn:aws:sqs:us-east-1:123456789012:crm-test-deal-rotting-dlq",
        # Cases (issue 20): what template.yaml gives case_timers.
        "SLA_SCHEDULE_GROUP": "crm-test-case-timers",
        "SLA_TARGET_ARN": "arn:aws:lambda:us-east-1:123456789012:function:crm-test-case-timers",
        "SLA_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/crm-test-case-sla-scheduler",
        "SLA_DLQ_ARN": "arn:aws:sqs:us-east-1:123456789012:crm-test-case-timers-dlq",
        # ... and case_mailer (the same HMAC key as the unsubscribe links, another label).
        "CASE_MAIL_DOMAIN": "mail.example.com",
        "CASE_MAIL_KEY_ID": "alias/crm-test-unsubscribe",
        "CSAT_URL": "https://api.crm.test/csat",
        # ... and inbound_mail.
        "MAIL_BUCKET": "crm-test-mail",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="module", autouse=True)
def _fresh_aws_per_module() -> None:
    """moto's backends are global per process: each test module starts from none, so that
    resources one module names (a table `crm-local`, say) never collide with another's."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


@pytest.fixture(scope="session")
def aws() -> Iterator[None]:
    from moto import mock_aws

    from infra.local.endpoint import PartitionQueries, isolated_dynamodb

    # The local endpoint's corrections of moto, so that what the tests see is what
    # `crm dev` serves (infra/local/endpoint.py). Isolation matters to the tests that write from
    # threads: moto applies a transaction's parts one by one, so without it a concurrent
    # reader sees half a transaction, which DynamoDB never shows.
    queries = PartitionQueries()
    queries.install()
    try:
        with mock_aws(), isolated_dynamodb():
            yield
    finally:
        queries.uninstall()


def _routes(module: ModuleType, logical_id: str) -> Any:
    """A function's HTTP routes as template.yaml declares them, served by its handler."""
    from tests.support.api import Api, template_routes

    return Api(module.handler, template_routes(logical_id))


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py as Lambda would: its folder first on sys.path, fresh."""
    folder = str(ROOT / "functions" / name)
    for module in [
        m for m in sys.modules if m == "app" or m.startswith((f"{name}_api", f"{name}_consumer"))
    ]:
        del sys.modules[module]
    sys.path.insert(0, folder)
    try:
        return importlib.import_module("app")
    finally:
        sys.path.remove(folder)


@dataclass(frozen=True)
class ConsumerFunction:
    """A function that takes events, queue messages, stream records or schedules, loaded as
    Lambda loads it: `handler` is its entry (app.py), `context` what its cold start made
    (`<name>_consumer/context.py`: the table, the clients, the services), where a test
    stands in for a client."""

    app: ModuleType
    context: ModuleType

    @property
    def handler(self) -> Any:
        return self.app.handler


def load_consumer(name: str) -> ConsumerFunction:
    app = load_function(name)
    return ConsumerFunction(app, sys.modules[f"{name}_consumer.context"])


@pytest.fixture(scope="session")
def contacts_module(aws: None) -> ModuleType:
    return load_function("contacts")


@pytest.fixture
def table(contacts_module: ModuleType) -> Iterator[Any]:
    """A fresh table, exactly as template.yaml declares it, for each test."""
    from infra.cfn import table_create_kwargs

    crm_table = sys.modules["contacts_api.context"].table
    ddb = crm_table.client
    ddb.create_table(**table_create_kwargs(table_name="crm-test"))
    yield crm_table
    ddb.delete_table(TableName="crm-test")


@pytest.fixture
def lead_secrets_key(aws: None) -> str:
    """The KMS key that seals lead source secrets, under the alias the functions are given
    (moto's backends are reset per module, so it is made again whenever it is missing)."""
    import boto3

    kms = boto3.client("kms")
    alias = os.environ["LEAD_SECRETS_KEY_ID"]
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    if alias not in aliases:
        key_id = kms.create_key(Description="lead secrets (tests)")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return alias


@pytest.fixture
def api(contacts_module: ModuleType, table: Any) -> Any:
    return _routes(contacts_module, "ContactsFunction")


@pytest.fixture(scope="session")
def activities_module(contacts_module: ModuleType) -> ModuleType:
    """The activities function, loaded after contacts (whose table client the `table`
    fixture uses; both talk to the same moto backend)."""
    return load_function("activities")


@pytest.fixture(scope="session")
def lead_processor_module(contacts_module: ModuleType) -> ConsumerFunction:
    """The lead processor, loaded after contacts (the `table` fixture uses contacts' client;
    both talk to the same moto backend)."""
    return load_consumer("lead_processor")


@pytest.fixture
def activity_api(activities_module: ModuleType, table: Any) -> Any:
    """The activities function's routes, on the same fresh table as `api`."""
    return _routes(activities_module, "ActivitiesFunction")


@pytest.fixture(scope="session")
def lead_sources_module(contacts_module: ModuleType) -> ModuleType:
    return load_function("lead_sources")


@pytest.fixture(scope="session")
def lead_webhook_module(contacts_module: ModuleType) -> ModuleType:
    return load_function("lead_webhook")


@pytest.fixture
def lead_api(lead_sources_module: ModuleType, table: Any, lead_secrets_key: str) -> Any:
    """The lead_sources function's routes, on the fresh table."""
    return _routes(lead_sources_module, "LeadSourcesFunction")


@pytest.fixture
def webhook(lead_webhook_module: ModuleType, table: Any, lead_secrets_key: str) -> Any:
    """The webhook, called as the HTTP API calls it (no authorizer)."""
    from tests.support.leads import Webhook

    return Webhook(lead_webhook_module.handler)


@pytest.fixture(scope="session")
def scoring_module(contacts_module: ModuleType) -> ModuleType:
    return load_function("scoring")


@pytest.fixture
def scoring_api(scoring_module: ModuleType, table: Any) -> Any:
    """The scoring function's routes, on the fresh table."""
    return _routes(scoring_module, "ScoringFunction")


@pytest.fixture(scope="session")
def lead_scoring_module(contacts_module: ModuleType) -> ConsumerFunction:
    return load_consumer("lead_scoring")


@pytest.fixture(scope="session")
def campaigns_module(contacts_module: ModuleType) -> ModuleType:
    return load_function("campaigns")


@pytest.fixture
def campaigns_api(campaigns_module: ModuleType, table: Any) -> Any:
    """The campaigns function's routes (segments), on the fresh table."""
    return _routes(campaigns_module, "CampaignsFunction")


@pytest.fixture(scope="session")
def deals_module(contacts_module: ModuleType) -> ModuleType:
    return load_function("deals")


@pytest.fixture
def deals_api(deals_module: ModuleType, table: Any) -> Any:
    """The deals function's routes, on the same fresh table as `api` (contacts, companies)."""
    return _routes(deals_module, "DealsFunction")


@pytest.fixture(scope="session")
def cases_module(contacts_module: ModuleType) -> ModuleType:
    return load_function("cases")


@pytest.fixture
def cases_api(cases_module: ModuleType, table: Any) -> Any:
    """The cases function's routes, on the same fresh table as `api` (contacts, companies)."""
    return _routes(cases_module, "CasesFunction")


SENDER_DOMAIN = "mail.example.com"


@pytest.fixture
def mail_setup(aws: None) -> dict[str, str]:
    """What the campaign functions need besides the table, as template.yaml makes it: the
    unsubscribe HMAC key (under its alias), the verified sending domain, the configuration
    set, the send queue (with its DLQ) and the schedule group. Made again when missing
    (moto's backends are reset per module)."""
    import boto3

    kms = boto3.client("kms")
    alias = os.environ["UNSUBSCRIBE_KEY_ID"]
    if alias not in {a["AliasName"] for a in kms.list_aliases()["Aliases"]}:
        key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyMetadata"]["KeyId"])
    ses = boto3.client("sesv2")
    identities = {i["IdentityName"] for i in ses.list_email_identities()["EmailIdentities"]}
    if SENDER_DOMAIN not in identities:
        ses.create_email_identity(EmailIdentity=SENDER_DOMAIN)
    config_set = os.environ["SES_CONFIGURATION_SET"]
    if config_set not in ses.list_configuration_sets()["ConfigurationSets"]:
        ses.create_configuration_set(ConfigurationSetName=config_set)
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="crm-test-campaign-send-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
    redrive = (
        f'{{"deadLetterTargetArn": "{dlq_arn["Attributes"]["QueueArn"]}", "maxReceiveCount": "5"}}'
    )
    queue = sqs.create_queue(
        QueueName="crm-test-campaign-send",
        Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "720"},
    )["QueueUrl"]
    scheduler = boto3.client("scheduler")
    group = os.environ["SCHEDULE_GROUP"]
    if group not in {g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]}:
        scheduler.create_schedule_group(Name=group)
    return {"sender_domain": SENDER_DOMAIN, "send_queue_url": queue, "send_dlq_url": dlq}
