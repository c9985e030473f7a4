"""/campaigns: draft, list, read and change email campaigns; schedule, send now, pause,
resume or cancel them; send a test; list their recipients.

Saving a campaign checks what can be checked then (its segment exists, its sender is one
of the tenant's addresses (crm_core/campaigns/sender_rules.py), its templates render);
scheduling and sending check again, and that the segment is not empty now and that the
tenant has its email settings (the postal address every email shows). A test email goes
only to the tenant's own users, never to a suppressed address, within an hourly quota
(crm_core/campaigns/test_sends.py). Every refusal says how to fix it.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from pydantic import BaseModel

from campaigns_api.context import (
    app,
    audience,
    campaign_settings,
    campaigns,
    email_settings,
    logger,
    metrics,
    schedules,
    segments,
    senders,
    ses,
    table,
    teammates,
    test_send_quota,
    token_key,
)
from crm_core import http, keys
from crm_core.auth import Action
from crm_core.campaigns import templates, test_sends, unsubscribe_tokens
from crm_core.campaigns.campaign_models import (
    EDITABLE,
    Campaign,
    CampaignCreate,
    CampaignPage,
    CampaignPatch,
    CampaignState,
    Recipient,
    RecipientPage,
    RecipientStatus,
    ScheduleRequest,
    TestSendRequest,
)
from crm_core.campaigns.campaign_store import to_campaign, to_summary
from crm_core.campaigns.email_settings import MISSING_DETAIL
from crm_core.campaigns.segments import SegmentFilter
from crm_core.campaigns.unsubscribing import TEST_CONTACT_ID
from crm_core.clock import format_iso
from crm_core.contacts.store import ContactStore
from crm_core.dynamo import Item
from crm_core.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    TooManyRequests,
    Unprocessable,
)
from crm_core.events.envelope import Origin
from crm_core.fields import OUTPUT_MODEL, Ulid
from crm_core.ids import new_ulid
from crm_core.pagination import DEFAULT_LIMIT, ListQuery

router = Router()
CampaignId = Annotated[Ulid, Path(description="The campaign's id (a ULID).")]
StatusFilter = Annotated[
    RecipientStatus | None, Query(description="Only the recipients in this status.")
]

MAX_SCHEDULE_AHEAD = timedelta(days=365)
# A test email's unsubscribe link names the contact TEST_CONTACT_ID ("test"), for which the
# unsubscribe function does nothing (no contact has this id: ids are ULIDs).
TEST_SUBJECT_PREFIX = "[Test] "
SAMPLE_CONTACT: dict[str, Any] = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "title": "Analyst",
    "country": "GB",
    "lifecycle_stage": "lead",
    "attributes": {},
}
# A schedule write that loses to a concurrent change of the campaign is tried again this
# many times (when the client sent no If-Match) before the client is asked to retry.
_SCHEDULE_ATTEMPTS = 3
# SESv2 errors that are the request's to fix, and where.
_SES_REFUSALS = {
    "MessageRejected": ["body", "to"],
    "MailFromDomainNotVerifiedException": ["campaign", "from_address"],
    "BadRequestException": ["body", "to"],
}
_SES_THROTTLES = {"TooManyRequestsException", "LimitExceededException", "Throttling"}


class TestSendResult(BaseModel):
    """The test email SES accepted."""

    __test__ = False  # not a pytest class
    model_config = OUTPUT_MODEL

    message_id: str


_RECIPIENT_FIELDS = tuple(Recipient.model_fields)


def to_recipient(item: Item) -> Recipient:
    return Recipient.model_validate({k: item[k] for k in _RECIPIENT_FIELDS if k in item})


# Drafts ------------------------------------------------------------------------------------
@router.post(
    "/campaigns",
    summary="Draft a campaign (admin, marketing)",
    responses=http.returns(201, "Created", Campaign),
)
def create_campaign(body: CampaignCreate) -> Response[str]:
    caller = http.caller(app)
    caller.require(Action.CAMPAIGN_WRITE)

    def run() -> Response[str]:
        errors = _segment_errors(caller.tenant_id, body.segment_id, ["body", "segment_id"])
        errors += _sender_errors(caller.tenant_id, body.from_address, ["body", "from_address"])
        errors += _template_errors(body.subject, body.html, body.text, "body")
        _refuse(errors, "the campaign cannot be saved")
        campaign = to_campaign(campaigns.create(caller.tenant_id, body, http.origin(app, caller)))
        metrics.add_metric(name="CampaignCreated", unit=MetricUnit.Count, value=1)
        logger.info("campaign created", extra={"campaign_id": campaign.id})
        return http.json_response(
            201, campaign, version=campaign.version, location=f"/campaigns/{campaign.id}"
        )

    return http.once_per_key(app, table, caller, run)


@router.get(
    "/campaigns",
    summary="The tenant's campaigns, newest first (without their bodies)",
    responses=http.returns(200, "A page", CampaignPage),
)
def list_campaigns(limit: http.Limit = DEFAULT_LIMIT, cursor: http.Cursor = None) -> Response[str]:
    caller = http.caller(app)
    caller.require(Action.CAMPAIGN_READ)
    page = campaigns.list(caller.tenant_id, limit, cursor)
    result = CampaignPage(items=[to_summary(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)


@router.get(
    "/campaigns/<campaign_id>",
    summary="Read a campaign, with its stats",
    responses=http.returns(200, "The campaign", Campaign),
)
def get_campaign(campaign_id: CampaignId) -> Response[str]:
    caller = http.caller(app)
    caller.require(Action.CAMPAIGN_READ)
    return _reply(200, campaigns.load(caller.tenant_id, campaign_id))


@router.patch(
    "/campaigns/<campaign_id>",
    summary="Change a draft or scheduled campaign (admin, marketing); a schedule is kept",
    responses=http.returns(200, "The campaign", Campaign),
)
def patch_campaign(campaign_id: CampaignId, body: CampaignPatch) -> Response[str]:
    caller = http.caller(app)
    caller.require(Action.CAMPAIGN_WRITE)
    expected = http.if_match(app)
    current = _editable(caller.tenant_id, campaign_id, expected, "changed")
    changes = body.changes()
    errors: list[dict[str, Any]] = []
    if "segment_id" in changes:
        errors += _segment_errors(caller.tenant_id, changes["segment_id"], ["body", "segment_id"])
    if "from_address" in changes:
        errors += _sender_errors(
            caller.tenant_id, changes["from_address"], ["body", "from_address"]
        )
    if {"subject", "html", "text"} & changes.keys():
        content = {**{k: current[k] for k in ("subject", "html", "text")}, **changes}
        errors += _template_errors(content["subject"], content["html"], content["text"], "body")
    _refuse(errors, "the campaign cannot be saved")
    item = campaigns.update(
        caller.tenant_id, campaign_id, changes, expected, http.origin(app, caller)
    )
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
def schedule_campaign(campaign_id: CampaignId, body: ScheduleRequest) -> Response[str]:
    caller = http.caller(app)
    caller.require(Action.CAMPAIGN_WRITE)

    def run() -> Response[str]:
        origin = http.origin(app, caller)
        item = _schedule(caller.tenant_id, campaign_id, body, http.if_match(app), origin)
        campaign = to_campaign(item)
        metrics.add_metric(name="CampaignScheduled", unit=MetricUnit.Count, value=1)
        logger.info(
            "campaign scheduled",
            extra={"campaign_id": campaign_id, "send_at": campaign.send_at},
        )
        return http.json_response(200, campaign, version=campaign.version)

    return http.once_per_key(app, table, caller, run)


@router.post(
    "/campaigns/<campaign_id>/send",
    summary="Send a draft or scheduled campaign now (admin, marketing)",
    responses=http.returns(202, "Sending", Campaign),
)
def send_campaign(campaign_id: CampaignId) -> Response[str]:
    caller = http.caller(app)
    caller.require(Action.CAMPAIGN_WRITE)

    def run() -> Response[str]:
        expected = http.if_match(app)
        current = _editable(caller.tenant_id, campaign_id, expected, "sent")
        _refuse(_readiness_errors(caller.tenant_id, current), "the campaign cannot be sent")
        item = campaigns.send_now(caller.tenant_id, campaign_id, expected, http.origin(app, caller))
        # After the write: a schedule that fires meanwhile carries the old dispatch id, and
        # the dispatcher ignores it.
        schedules.delete(campaign_id)
        metrics.add_metric(name="CampaignSendRequested", unit=MetricUnit.Count, value=1)
        logger.info("campaign send requested", extra={"campaign_id": campaign_id})
        return _reply(202, item)

    return http.once_per_key(app, table, caller, run)


@router.post(
    "/campaigns/<campaign_id>/cancel",
    summary="Cancel a campaign before or while it sends (admin, marketing)",
    responses=http.returns(200, "The cancelled campaign", Campaign),
)
def cancel_campaign(campaign_id: CampaignId) -> Response[str]:
    caller = http.caller(app)
    caller.require(Action.CAMPAIGN_WRITE)

    def run() -> Response[str]:
        origin = http.origin(app, caller)
        item = campaigns.cancel(caller.tenant_id, campaign_id, origin, http.if_match(app))
        schedules.delete(campaign_id)
        logger.info("campaign cancelled", extra={"campaign_id": campaign_id})
        return _reply(200, item)

    return http.once_per_key(app, table, caller, run)


@router.post(
    "/campaigns/<campaign_id>/pause",
    summary="Pause a sending campaign (admin, marketing)",
    responses=http.returns(200, "The paused campaign", Campaign),
)
def pause_campaign(campaign_id: CampaignId) -> Response[str]:
    caller = http.caller(app)
    caller.require(Action.CAMPAIGN_WRITE)

    def run() -> Response[str]:
        item = campaigns.pause(
            caller.tenant_id,
            campaign_id,
            f"paused by {caller.user_id}",
            http.origin(app, caller),
            http.if_match(app),
        )
        logger.info("campaign paused", extra={"campaign_id": campaign_id})
        return _reply(200, item)

    return http.once_per_key(app, table, caller, run)


@router.post(
    "/campaigns/<campaign_id>/resume",
    summary="Resume a paused campaign (admin, marketing)",
    responses=http.returns(200, "The sending campaign", Campaign),
)
def resume_campaign(campaign_id: CampaignId) -> Response[str]:
    caller = http.caller(app)
    caller.require(Action.CAMPAIGN_WRITE)

    def run() -> Response[str]:
        origin = http.origin(app, caller)
        item = campaigns.resume(caller.tenant_id, campaign_id, origin, http.if_match(app))
        logger.info("campaign resumed", extra={"campaign_id": campaign_id})
        return _reply(200, item)

    return http.once_per_key(app, table, caller, run)


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
def send_test(campaign_id: CampaignId, body: TestSendRequest) -> Response[str]:
    caller = http.caller(app)
    caller.require(Action.CAMPAIGN_WRITE)

    def run() -> Response[str]:
        message_id = _send_test(caller.tenant_id, campaign_id, body)
        metrics.add_metric(name="CampaignTestSent", unit=MetricUnit.Count, value=1)
        logger.info(
            "campaign test sent", extra={"campaign_id": campaign_id, "message_id": message_id}
        )
        return http.json_response(202, TestSendResult(message_id=message_id))

    try:
        return http.once_per_key(app, table, caller, run)
    except test_sends.TestSendQuotaExceeded as exceeded:
        # Raised, not returned, inside once_per_key: an Idempotency-Key keeps no record of
        # it, so the same request may be made again after Retry-After.
        response = http.error_response(exceeded)
        response.headers["Retry-After"] = str(exceeded.retry_after)
        return response


@router.get(
    "/campaigns/<campaign_id>/recipients",
    summary="A campaign's recipients, by contact id; `status` for those in one status",
    responses=http.returns(200, "A page", RecipientPage),
)
def list_recipients(
    campaign_id: CampaignId,
    status: StatusFilter = None,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
) -> Response[str]:
    caller = http.caller(app)
    caller.require(Action.CAMPAIGN_READ)
    tenant_id = caller.tenant_id
    campaigns.load(tenant_id, campaign_id, consistent=False)
    if status is None:
        listing = ListQuery("recipients", keys.campaign_partition(tenant_id, campaign_id))
        page = table.query(
            listing, limit, cursor, newest_first=False, sort_prefix=keys.RECIPIENT_PREFIX
        )
    else:
        partition = keys.recipients_in_status(tenant_id, campaign_id, status.value)
        listing = ListQuery("recipients", partition, index="GSI3")
        page = table.query(listing, limit, cursor, newest_first=False)
    result = RecipientPage(
        items=[to_recipient(i) for i in page.items], next_cursor=page.next_cursor
    )
    return http.json_response(200, result)


# The work of the routes ---------------------------------------------------------------------
def _reply(status: int, item: Item) -> Response[str]:
    campaign = to_campaign(item)
    return http.json_response(status, campaign, version=campaign.version)


def _editable(tenant_id: str, campaign_id: str, expected: int | None, verb: str) -> Item:
    """The campaign, if it may still be changed or sent: 404, 412 (a stale If-Match) or
    409 (a state past draft and scheduled) otherwise, before anything else is checked."""
    item = campaigns.load(tenant_id, campaign_id)
    if expected is not None and item["version"] != expected:
        raise PreconditionFailed(f"the campaign is at version {item['version']}, not {expected}")
    if CampaignState(item["state"]) not in EDITABLE:
        raise Conflict(
            f"the campaign is {item['state']}: only a draft or scheduled campaign can be {verb}"
        )
    return item


def _schedule(
    tenant_id: str, campaign_id: str, body: ScheduleRequest, expected: int | None, origin: Origin
) -> Item:
    """Write the schedule, then the campaign (with the schedule's dispatch id).

    The campaign is written on the version the checks read: if another change lands in
    between, the schedule is put back as the campaign now says, and (without If-Match) the
    whole is tried again on fresh data, so the schedule and the campaign agree."""
    moment = body.moment()
    for attempt in range(1, _SCHEDULE_ATTEMPTS + 1):
        current = _editable(tenant_id, campaign_id, expected, "scheduled")
        _refuse(_readiness_errors(tenant_id, current, moment), "the campaign cannot be scheduled")
        dispatch_id = new_ulid()
        schedules.put(tenant_id, campaign_id, dispatch_id, moment, body.timezone)
        try:
            return campaigns.schedule(
                tenant_id,
                campaign_id,
                format_iso(moment),
                body.timezone,
                dispatch_id,
                current["version"],
                origin,
            )
        except PreconditionFailed:
            _restore_schedule(tenant_id, campaign_id)
            if expected is not None or attempt == _SCHEDULE_ATTEMPTS:
                break
        except Exception:
            _restore_schedule(tenant_id, campaign_id)
            raise
    if expected is not None:
        raise PreconditionFailed("the campaign changed meanwhile: read it again")
    raise TooManyRequests("the campaign is changing fast; try again")


def _restore_schedule(tenant_id: str, campaign_id: str) -> None:
    """Make the schedule what the campaign says again, after a campaign write failed."""
    try:
        item = campaigns.load(tenant_id, campaign_id)
        if item["state"] == CampaignState.SCHEDULED and item.get("dispatch_id"):
            moment = datetime.fromisoformat(item["send_at"])
            zone = item.get("timezone") or "UTC"
            schedules.put(tenant_id, campaign_id, item["dispatch_id"], moment, zone)
        else:
            schedules.delete(campaign_id)
    except Exception:
        # The campaign's own write already failed and is reported; a schedule left behind
        # carries a dispatch id the campaign does not have, so its firing changes nothing.
        logger.exception("could not restore the schedule", extra={"campaign_id": campaign_id})


def _send_test(tenant_id: str, campaign_id: str, body: TestSendRequest) -> str:
    # Imported here: the MIME modules cost every cold start time only test sends need.
    from crm_core.campaigns import messages

    item = campaigns.load(tenant_id, campaign_id)
    settings_found = email_settings.find(tenant_id)
    errors = [] if settings_found else _settings_errors()
    errors += _sender_errors(tenant_id, item["from_address"], ["campaign", "from_address"])
    errors += _test_recipient_errors(tenant_id, body.to)
    if errors or settings_found is None:
        raise _refusal(errors, "the test email cannot be sent")
    contact = _test_contact(tenant_id, body)
    token = unsubscribe_tokens.issue(token_key.secret, tenant_id, TEST_CONTACT_ID, campaign_id)
    url = unsubscribe_tokens.unsubscribe_url(_unsubscribe_base(), token)
    footer = templates.Footer(settings_found.postal_address, url, settings_found.company_name)
    try:
        rendered = templates.render(item["subject"], item["html"], item["text"], contact, footer)
    except Unprocessable as refused:
        raise Unprocessable(
            f"the campaign does not render for this contact: {refused.detail}",
            [{"loc": ["campaign", *e["loc"][1:]], "msg": e["msg"]} for e in refused.errors],
        ) from None
    rendered = dataclasses.replace(rendered, subject=TEST_SUBJECT_PREFIX + rendered.subject)
    envelope = messages.Envelope(
        from_address=item["from_address"],
        to_address=body.to,
        from_name=item.get("from_name"),
        reply_to=item.get("reply_to"),
    )
    raw = messages.build(envelope, rendered, url, tenant_id, campaign_id)
    # No contact_id tag: email_events ignores the events of a test email.
    tags = {"tenant_id": tenant_id, "campaign_id": campaign_id, "test": "true"}
    request = messages.send_request(raw, envelope, campaign_settings.ses_configuration_set, tags)
    window = test_send_quota.take(tenant_id)
    try:
        response = ses().send_email(**request)
    except ClientError as exc:
        test_send_quota.give_back(tenant_id, window)
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", "refused"))
        if code in _SES_THROTTLES:
            raise TooManyRequests("SES is throttling sends; try again shortly") from None
        if code in _SES_REFUSALS:
            raise Unprocessable(
                f"SES refused the test email: {message}",
                [{"loc": _SES_REFUSALS[code], "msg": message}],
            ) from None
        raise
    return str(response["MessageId"])


def _test_contact(tenant_id: str, body: TestSendRequest) -> dict[str, Any]:
    if body.contact_id is None:
        return {**SAMPLE_CONTACT, "email": body.to}
    # A merged contact's survivor has its fields now.
    found = ContactStore(table).survivor(tenant_id, body.contact_id)
    if found is None or found.get("type") != keys.CONTACT_ITEM:
        raise NotFound("no such contact")
    return found


def _unsubscribe_base() -> str:
    """The unsubscribe route of the API this request came through (the function cannot be
    given the API's URL: template.yaml explains the circular reference)."""
    event = app.current_event
    proto = (event.headers.get("x-forwarded-proto") or "https").split(",")[0].strip().lower()
    scheme = proto if proto in ("http", "https") else "https"
    return f"{scheme}://{event.request_context.domain_name}/unsubscribe"


# Checks -----------------------------------------------------------------------------------
Errors = list[dict[str, Any]]


def _refusal(errors: Errors, what: str) -> Unprocessable:
    return Unprocessable(f"{what}: " + "; ".join(e["msg"] for e in errors), errors)


def _refuse(errors: Errors, what: str) -> None:
    if errors:
        raise _refusal(errors, what)


def _segment_errors(tenant_id: str, segment_id: str, loc: list[str]) -> Errors:
    try:
        segments.load(tenant_id, segment_id)
    except NotFound:
        return [{"loc": loc, "msg": f"no segment {segment_id}: choose one of GET /segments"}]
    return []


def _sender_errors(tenant_id: str, address: str, loc: list[str]) -> Errors:
    refusal = senders.refusal(tenant_id, address)
    return [] if refusal is None else [{"loc": loc, "msg": refusal}]


def _test_recipient_errors(tenant_id: str, to: str) -> Errors:
    """The caller's own verified address, or a user of the tenant; never a suppressed one."""
    loc = ["body", "to"]
    authorizer = app.current_event.request_context.authorizer
    own = test_sends.own_verified_address(authorizer.jwt_claim if authorizer else None)
    if to != own and not teammates.includes(tenant_id, to):
        return [
            {
                "loc": loc,
                "msg": f"{to} may not receive test emails: they go only to your own verified "
                "address or to another user of your tenant",
            }
        ]
    if test_sends.is_suppressed(table, tenant_id, to):
        return [
            {
                "loc": loc,
                "msg": f"{to} is on your tenant's suppression list (a bounce or a complaint): "
                "no email goes to it, tests included; send the test to another of your users",
            }
        ]
    return []


def _template_errors(subject: str, html: str, text: str, root: str) -> Errors:
    try:
        templates.check(subject, html, text)
    except Unprocessable as refused:
        errors = [{"loc": [root, *e["loc"][1:]], "msg": e["msg"]} for e in refused.errors]
        return errors or [{"loc": [root], "msg": refused.detail}]
    return []


def _settings_errors() -> Errors:
    return [{"loc": ["settings", "email", "postal_address"], "msg": MISSING_DETAIL}]


def _readiness_errors(tenant_id: str, item: Item, moment: datetime | None = None) -> Errors:
    """Everything that stops the campaign from going out now (or at `moment`)."""
    errors: Errors = []
    if moment is not None:
        now = datetime.now(UTC)
        if moment <= now:
            errors.append(
                {
                    "loc": ["body", "send_at"],
                    "msg": f"{format_iso(moment)} is not in the future (it is now "
                    f"{format_iso(now)}): choose a later time, or POST .../send to send now",
                }
            )
        elif moment > now + MAX_SCHEDULE_AHEAD:
            errors.append(
                {
                    "loc": ["body", "send_at"],
                    "msg": "a campaign can be scheduled at most a year ahead: choose an "
                    f"earlier time than {format_iso(now + MAX_SCHEDULE_AHEAD)}",
                }
            )
    if email_settings.find(tenant_id) is None:
        errors += _settings_errors()
    errors += _sender_errors(tenant_id, item["from_address"], ["campaign", "from_address"])
    errors += _template_errors(item["subject"], item["html"], item["text"], "campaign")
    errors += _audience_errors(tenant_id, item["segment_id"])
    return errors


def _audience_errors(tenant_id: str, segment_id: str) -> Errors:
    loc = ["campaign", "segment_id"]
    try:
        segment = segments.load(tenant_id, segment_id)
    except NotFound:
        msg = f"the campaign's segment {segment_id} no longer exists: PATCH the campaign "
        return [{"loc": loc, "msg": msg + "with another segment_id"}]
    if audience.is_empty(tenant_id, SegmentFilter.model_validate(segment["filter"])):
        return [
            {
                "loc": loc,
                "msg": f"the segment {segment_id} matches no contact now: change its filter "
                f"(PATCH /segments/{segment_id}) or PATCH the campaign with another segment_id",
            }
        ]
    return []
