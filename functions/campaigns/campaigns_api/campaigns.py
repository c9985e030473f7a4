"""/campaigns: draft, list, read and change email campaigns; schedule, send now, pause,
resume or cancel them; send a test; list their recipients.

The routes parse, authorize, call one use-case and shape the answer: what each step checks
is crm_core/campaigns/lifecycle.py's, a test email crm_core/campaigns/test_email.py's (who
may receive it: test_sends.py).
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel

from campaigns_api.context import (
    app,
    campaigns,
    lifecycle,
    logger,
    metrics,
    table,
    test_emails,
)
from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.campaigns import test_sends
from crm_core.campaigns.campaign_models import (
    Campaign,
    CampaignCreate,
    CampaignPage,
    CampaignPatch,
    RecipientPage,
    RecipientStatus,
    ScheduleRequest,
    TestSendRequest,
)
from crm_core.campaigns.campaign_store import to_campaign, to_summary
from crm_core.campaigns.recipients import recipient_page
from crm_core.dynamo import Item
from crm_core.fields import OUTPUT_MODEL, Ulid
from crm_core.pagination import DEFAULT_LIMIT

router = Router()
CampaignId = Annotated[Ulid, Path(description="The campaign's id (a ULID).")]
StatusFilter = Annotated[
    RecipientStatus | None, Query(description="Only the recipients in this status.")
]


class TestSendResult(BaseModel):
    """The test email SES accepted."""

    __test__ = False  # not a pytest class
    model_config = OUTPUT_MODEL

    message_id: str


# Drafts ------------------------------------------------------------------------------------
@router.post(
    "/campaigns",
    summary="Draft a campaign (admin, marketing)",
    responses=http.returns(201, "Created", Campaign),
)
@http.guard(app, Action.CAMPAIGN_WRITE, idempotency=table)
def create_campaign(caller: Principal, body: CampaignCreate) -> Response[str]:
    campaign = to_campaign(lifecycle.create(caller.tenant_id, body, http.origin(app, caller)))
    metrics.add_metric(name="CampaignCreated", unit=MetricUnit.Count, value=1)
    logger.info("campaign created", extra={"campaign_id": campaign.id})
    return http.json_response(
        201, campaign, version=campaign.version, location=f"/campaigns/{campaign.id}"
    )


@router.get(
    "/campaigns",
    summary="The tenant's campaigns, newest first (without their bodies)",
    responses=http.returns(200, "A page", CampaignPage),
)
@http.guard(app, Action.CAMPAIGN_READ)
def list_campaigns(
    caller: Principal, limit: http.Limit = DEFAULT_LIMIT, cursor: http.Cursor = None
) -> Response[str]:
    page = campaigns.list(caller.tenant_id, limit, cursor)
    result = CampaignPage(items=[to_summary(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)


@router.get(
    "/campaigns/<campaign_id>",
    summary="Read a campaign, with its stats",
    responses=http.returns(200, "The campaign", Campaign),
)
@http.guard(app, Action.CAMPAIGN_READ)
def get_campaign(caller: Principal, campaign_id: CampaignId) -> Response[str]:
    return _reply(200, campaigns.load(caller.tenant_id, campaign_id))


@router.patch(
    "/campaigns/<campaign_id>",
    summary="Change a draft or scheduled campaign (admin, marketing); a schedule is kept",
    responses=http.returns(200, "The campaign", Campaign),
)
@http.guard(app, Action.CAMPAIGN_WRITE)
def patch_campaign(
    caller: Principal, campaign_id: CampaignId, body: CampaignPatch
) -> Response[str]:
    origin = http.origin(app, caller)
    item = lifecycle.update(caller.tenant_id, campaign_id, body, http.if_match(app), origin)
    return _reply(200, item)


# Sending -----------------------------------------------------------------------------------
@router.post(
    "/campaigns/<campaign_id>/schedule",
    summary="Send a draft or scheduled campaign at a time (admin, marketing)",
    description=(
        "`send_at` is read in `timezone` (an IANA name) unless it carries an offset; it must "
        "be in the future and at most a year ahead. Scheduling a scheduled campaign moves it."
    ),
    responses=http.returns(200, "The scheduled campaign", Campaign),
)
@http.guard(app, Action.CAMPAIGN_WRITE, idempotency=table)
def schedule_campaign(
    caller: Principal, campaign_id: CampaignId, body: ScheduleRequest
) -> Response[str]:
    origin = http.origin(app, caller)
    item = lifecycle.schedule(caller.tenant_id, campaign_id, body, http.if_match(app), origin)
    campaign = to_campaign(item)
    metrics.add_metric(name="CampaignScheduled", unit=MetricUnit.Count, value=1)
    logger.info(
        "campaign scheduled",
        extra={"campaign_id": campaign_id, "send_at": campaign.send_at},
    )
    return http.json_response(200, campaign, version=campaign.version)


@router.post(
    "/campaigns/<campaign_id>/send",
    summary="Send a draft or scheduled campaign now (admin, marketing)",
    responses=http.returns(202, "Sending", Campaign),
)
@http.guard(app, Action.CAMPAIGN_WRITE, idempotency=table)
def send_campaign(caller: Principal, campaign_id: CampaignId) -> Response[str]:
    origin = http.origin(app, caller)
    item = lifecycle.send_now(caller.tenant_id, campaign_id, http.if_match(app), origin)
    metrics.add_metric(name="CampaignSendRequested", unit=MetricUnit.Count, value=1)
    logger.info("campaign send requested", extra={"campaign_id": campaign_id})
    return _reply(202, item)


@router.post(
    "/campaigns/<campaign_id>/cancel",
    summary="Cancel a campaign before or while it sends (admin, marketing)",
    responses=http.returns(200, "The cancelled campaign", Campaign),
)
@http.guard(app, Action.CAMPAIGN_WRITE, idempotency=table)
def cancel_campaign(caller: Principal, campaign_id: CampaignId) -> Response[str]:
    origin = http.origin(app, caller)
    item = lifecycle.cancel(caller.tenant_id, campaign_id, http.if_match(app), origin)
    logger.info("campaign cancelled", extra={"campaign_id": campaign_id})
    return _reply(200, item)


@router.post(
    "/campaigns/<campaign_id>/pause",
    summary="Pause a sending campaign (admin, marketing)",
    responses=http.returns(200, "The paused campaign", Campaign),
)
@http.guard(app, Action.CAMPAIGN_WRITE, idempotency=table)
def pause_campaign(caller: Principal, campaign_id: CampaignId) -> Response[str]:
    item = campaigns.pause(
        caller.tenant_id,
        campaign_id,
        f"paused by {caller.user_id}",
        http.origin(app, caller),
        http.if_match(app),
    )
    logger.info("campaign paused", extra={"campaign_id": campaign_id})
    return _reply(200, item)


@router.post(
    "/campaigns/<campaign_id>/resume",
    summary="Resume a paused campaign (admin, marketing)",
    responses=http.returns(200, "The sending campaign", Campaign),
)
@http.guard(app, Action.CAMPAIGN_WRITE, idempotency=table)
def resume_campaign(caller: Principal, campaign_id: CampaignId) -> Response[str]:
    origin = http.origin(app, caller)
    item = campaigns.resume(caller.tenant_id, campaign_id, origin, http.if_match(app))
    logger.info("campaign resumed", extra={"campaign_id": campaign_id})
    return _reply(200, item)


@router.post(
    "/campaigns/<campaign_id>/test",
    summary="Send one test email of the campaign (admin, marketing)",
    description=(
        "Rendered for `contact_id` (a contact of yours) or a sample contact, with `[Test] ` "
        "before its subject. It counts in no stats, and its unsubscribe link changes nothing. "
        "`to` is your own verified address or another user of your tenant, never a "
        f"suppressed one; a tenant sends at most {test_sends.TEST_SENDS_PER_HOUR} test emails "
        "an hour (then `429` with `Retry-After`)."
    ),
    responses={
        **http.returns(202, "SES accepted it", TestSendResult),
        429: {"description": "The tenant's test emails of this hour are used up"},
    },
)
# A used-up quota is raised, not returned, inside the Idempotency-Key's work: no record is
# kept of it, so the same request may be made again after Retry-After.
@http.guard(app, Action.CAMPAIGN_WRITE, idempotency=table)
def send_test(caller: Principal, campaign_id: CampaignId, body: TestSendRequest) -> Response[str]:
    authorizer = app.current_event.request_context.authorizer
    own = test_sends.own_verified_address(authorizer.jwt_claim if authorizer else None)
    message_id = test_emails.send(caller.tenant_id, campaign_id, body, own, _unsubscribe_base())
    metrics.add_metric(name="CampaignTestSent", unit=MetricUnit.Count, value=1)
    logger.info("campaign test sent", extra={"campaign_id": campaign_id, "message_id": message_id})
    return http.json_response(202, TestSendResult(message_id=message_id))


@router.get(
    "/campaigns/<campaign_id>/recipients",
    summary="A campaign's recipients, by contact id; `status` for those in one status",
    responses=http.returns(200, "A page", RecipientPage),
)
@http.guard(app, Action.CAMPAIGN_READ)
def list_recipients(
    caller: Principal,
    campaign_id: CampaignId,
    status: StatusFilter = None,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
) -> Response[str]:
    campaigns.load(caller.tenant_id, campaign_id, consistent=False)
    page = recipient_page(table, caller.tenant_id, campaign_id, status, limit, cursor)
    return http.json_response(200, page)


# Shaping the answers --------------------------------------------------------------------------
def _reply(status: int, item: Item) -> Response[str]:
    campaign = to_campaign(item)
    return http.json_response(status, campaign, version=campaign.version)


def _unsubscribe_base() -> str:
    """The unsubscribe route of the API this request came through (the function cannot be
    given the API's URL: template.yaml explains the circular reference)."""
    event = app.current_event
    proto = (event.headers.get("x-forwarded-proto") or "https").split(",")[0].strip().lower()
    scheme = proto if proto in ("http", "https") else "https"
    return f"{scheme}://{event.request_context.domain_name}/unsubscribe"
