"""What the routes share for the life of the process: settings, the table, the stores, the
resolver, and the Powertools logger, tracer and metrics.

The AWS clients beyond DynamoDB (Scheduler, SESv2, KMS, Cognito) are created on first use:
most requests (reads, segment writes) never need them.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from pydantic import BaseModel, ConfigDict, Field

from crm_core.campaigns.audience import Audience
from crm_core.campaigns.campaign_store import CampaignStore
from crm_core.campaigns.email_settings import EmailSettingsStore
from crm_core.campaigns.lifecycle import CampaignLifecycle
from crm_core.campaigns.scheduling import CampaignSchedules, ScheduleTarget
from crm_core.campaigns.segment_store import SegmentStore
from crm_core.campaigns.sender_identity import SenderIdentities
from crm_core.campaigns.sender_namespace import NamespaceClaims
from crm_core.campaigns.sender_rules import SenderRules
from crm_core.campaigns.test_email import TestEmails
from crm_core.campaigns.test_sends import Teammates, TestSendQuota
from crm_core.campaigns.unsubscribe_tokens import TokenKey
from crm_core.clients import client
from crm_core.runtime import function_runtime


class CampaignsSettings(BaseModel):
    """The campaigns function's own environment (template.yaml), checked at cold start."""

    model_config = ConfigDict(frozen=True)

    schedule_group: str = Field(min_length=1)
    dispatcher_arn: str = Field(min_length=1)
    scheduler_role_arn: str = Field(min_length=1)
    dispatcher_dlq_arn: str = Field(min_length=1)
    ses_configuration_set: str = Field(min_length=1)
    unsubscribe_key_id: str = Field(min_length=1)
    # The stage's shared sending domain (each tenant has a namespace on it) and the user
    # pool whose users of a tenant may receive its test emails.
    sender_domain: str = Field(min_length=1)
    user_pool_id: str = Field(min_length=1)

    @classmethod
    def from_env(cls) -> CampaignsSettings:
        return cls.model_validate(
            {name: os.environ.get(name.upper(), "") for name in cls.model_fields}
        )


logger, tracer, metrics, settings, table = function_runtime()
campaign_settings = CampaignsSettings.from_env()
segments = SegmentStore(table)
audience = Audience(table)
campaigns = CampaignStore(table)
email_settings = EmailSettingsStore(table)
schedules = CampaignSchedules(
    ScheduleTarget(
        group=campaign_settings.schedule_group,
        dispatcher_arn=campaign_settings.dispatcher_arn,
        role_arn=campaign_settings.scheduler_role_arn,
        dlq_arn=campaign_settings.dispatcher_dlq_arn,
    )
)
_ses_client: Any = None


def ses() -> Any:
    """The SESv2 client (identity checks, test sends), made on first use."""
    global _ses_client
    if _ses_client is None:
        _ses_client = client("sesv2")
    return _ses_client


senders = SenderRules(
    SenderIdentities(ses), NamespaceClaims(table), campaign_settings.sender_domain
)
teammates = Teammates(lambda: client("cognito-idp"), campaign_settings.user_pool_id)
test_send_quota = TestSendQuota(table)
token_key = TokenKey(lambda: client("kms"), campaign_settings.unsubscribe_key_id)
lifecycle = CampaignLifecycle(
    campaigns, segments, audience, senders, email_settings, schedules, logger
)
test_emails = TestEmails(
    table,
    campaigns,
    email_settings,
    senders,
    teammates,
    test_send_quota,
    token_key,
    ses,
    campaign_settings.ses_configuration_set,
)
app = APIGatewayHttpResolver(enable_validation=True)
