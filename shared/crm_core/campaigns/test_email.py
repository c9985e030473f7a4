"""One test email of a campaign: checked, rendered for a contact or a sample one, and sent.

Who may receive it and how many a tenant may send are test_sends.py's rules. A test email
has `[Test] ` before its subject, counts in no stats (no contact tag: email_events ignores
its events), and its unsubscribe link names the contact TEST_CONTACT_ID ("test"), for which
the unsubscribe function does nothing (no contact has this id: ids are ULIDs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from crm_core import keys
from crm_core.campaigns import templates, test_sends, unsubscribe_tokens
from crm_core.campaigns.campaign_models import TestSendRequest
from crm_core.campaigns.campaign_store import CampaignStore
from crm_core.campaigns.email_settings import EmailSettingsStore
from crm_core.campaigns.lifecycle import Errors, refusal, sender_errors, settings_errors
from crm_core.campaigns.sender_rules import SenderRules
from crm_core.campaigns.unsubscribe_tokens import TokenKey
from crm_core.campaigns.unsubscribing import TEST_CONTACT_ID
from crm_core.contacts.store import ContactStore
from crm_core.errors import CrmError, NotFound, TooManyRequests, Unprocessable
from crm_core.table import Table

TEST_SUBJECT_PREFIX = "[Test] "
SAMPLE_CONTACT: dict[str, Any] = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "title": "Analyst",
    "country": "GB",
    "lifecycle_stage": "lead",
    "attributes": {},
}
# SESv2 errors that are the request's to fix, and where.
_SES_REFUSALS = {
    "MessageRejected": ["body", "to"],
    "MailFromDomainNotVerifiedException": ["campaign", "from_address"],
    "BadRequestException": ["body", "to"],
}
_SES_THROTTLES = {"TooManyRequestsException", "LimitExceededException", "Throttling"}


def ses_error(code: str, message: str) -> CrmError | None:
    """The answer for an SES error the caller can act on (429, 422), None for the others."""
    if code in _SES_THROTTLES:
        return TooManyRequests("SES is throttling sends; try again shortly")
    if code in _SES_REFUSALS:
        return Unprocessable(
            f"SES refused the test email: {message}",
            [{"loc": _SES_REFUSALS[code], "msg": message}],
        )
    return None


def recipient_errors(to: str, own_address: str | None, is_teammate: bool) -> Errors:
    """`to` must be the caller's own verified address or a user of the tenant."""
    if to == own_address or is_teammate:
        return []
    return [
        {
            "loc": ["body", "to"],
            "msg": f"{to} may not receive test emails: they go only to your own verified "
            "address or to another user of your tenant",
        }
    ]


class TestEmails:
    """Sends a campaign's test emails through SES, within the tenant's hourly quota."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        table: Table,
        campaigns: CampaignStore,
        email_settings: EmailSettingsStore,
        senders: SenderRules,
        teammates: test_sends.Teammates,
        quota: test_sends.TestSendQuota,
        token_key: TokenKey,
        ses: Callable[[], Any],
        configuration_set: str,
    ) -> None:
        self.table = table
        self.campaigns = campaigns
        self.email_settings = email_settings
        self.senders = senders
        self.teammates = teammates
        self.quota = quota
        self.token_key = token_key
        self.ses = ses
        self.configuration_set = configuration_set

    def send(
        self,
        tenant_id: str,
        campaign_id: str,
        request: TestSendRequest,
        own_address: str | None,
        unsubscribe_base: str,
    ) -> str:
        """Send it; SES's message id. `own_address` is the caller's verified address (from
        their token), `unsubscribe_base` the unsubscribe route of the API they called."""
        # Imported here: the MIME modules cost every cold start time only test sends need.
        from crm_core.campaigns import messages

        item = self.campaigns.load(tenant_id, campaign_id)
        found = self.email_settings.find(tenant_id)
        errors = [] if found else settings_errors()
        loc = ["campaign", "from_address"]
        errors += sender_errors(self.senders, tenant_id, item["from_address"], loc)
        errors += self._recipient_errors(tenant_id, request.to, own_address)
        if errors or found is None:
            raise refusal(errors, "the test email cannot be sent")
        contact = self._contact(tenant_id, request)
        token = unsubscribe_tokens.issue(
            self.token_key.secret, tenant_id, TEST_CONTACT_ID, campaign_id
        )
        url = unsubscribe_tokens.unsubscribe_url(unsubscribe_base, token)
        footer = templates.Footer(found.postal_address, url, found.company_name)
        try:
            rendered = templates.render(
                item["subject"], item["html"], item["text"], contact, footer
            )
        except Unprocessable as refused:
            raise Unprocessable(
                f"the campaign does not render for this contact: {refused.detail}",
                [{"loc": ["campaign", *e["loc"][1:]], "msg": e["msg"]} for e in refused.errors],
            ) from None
        rendered = dataclasses.replace(rendered, subject=TEST_SUBJECT_PREFIX + rendered.subject)
        envelope = messages.Envelope(
            from_address=item["from_address"],
            to_address=request.to,
            from_name=item.get("from_name"),
            reply_to=item.get("reply_to"),
        )
        raw = messages.build(envelope, rendered, url, tenant_id, campaign_id)
        # No contact_id tag: email_events ignores the events of a test email.
        tags = {"tenant_id": tenant_id, "campaign_id": campaign_id, "test": "true"}
        ses_request = messages.send_request(raw, envelope, self.configuration_set, tags)
        window = self.quota.take(tenant_id)
        try:
            response = self.ses().send_email(**ses_request)
        except ClientError as exc:
            self.quota.give_back(tenant_id, window)
            error = exc.response.get("Error", {})
            answer = ses_error(str(error.get("Code", "")), str(error.get("Message", "refused")))
            if answer is not None:
                raise answer from None
            raise
        return str(response["MessageId"])

    def _recipient_errors(self, tenant_id: str, to: str, own_address: str | None) -> Errors:
        """The caller's own verified address, or a user of the tenant; never a suppressed one."""
        errors = recipient_errors(
            to, own_address, to != own_address and self.teammates.includes(tenant_id, to)
        )
        if errors:
            return errors
        if test_sends.is_suppressed(self.table, tenant_id, to):
            return [
                {
                    "loc": ["body", "to"],
                    "msg": f"{to} is on your tenant's suppression list (a bounce or a "
                    "complaint): no email goes to it, tests included; send the test to another "
                    "of your users",
                }
            ]
        return []

    def _contact(self, tenant_id: str, request: TestSendRequest) -> dict[str, Any]:
        if request.contact_id is None:
            return {**SAMPLE_CONTACT, "email": request.to}
        # A merged contact's survivor has its fields now.
        found = ContactStore(self.table).survivor(tenant_id, request.contact_id)
        if found is None or found.get("type") != keys.CONTACT_ITEM:
            raise NotFound("no such contact")
        return found
