"""A campaign's way from draft to sent: what each step checks, and the steps that change
more than the campaign item (its schedule in EventBridge Scheduler).

Saving a campaign checks what can be checked then: its segment exists, its sender is one of
the tenant's addresses (sender_rules.py), its templates render. Scheduling and sending check
again, and that the segment is not empty now and that the tenant has its email settings (the
postal address every email shows). Every refusal is a 422 whose errors say what to fix and
where (`loc`): `body` for the request, `campaign` for the stored campaign, `settings` for
the tenant's email settings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from crm_core.campaigns import templates
from crm_core.campaigns.audience import Audience
from crm_core.campaigns.campaign_models import (
    EDITABLE,
    CampaignCreate,
    CampaignPatch,
    CampaignState,
    ScheduleRequest,
)
from crm_core.campaigns.campaign_store import CampaignStore
from crm_core.campaigns.email_settings import MISSING_DETAIL, EmailSettingsStore
from crm_core.campaigns.scheduling import CampaignSchedules
from crm_core.campaigns.segment_store import SegmentStore
from crm_core.campaigns.segments import SegmentFilter
from crm_core.campaigns.sender_rules import SenderRules
from crm_core.clock import format_iso
from crm_core.dynamo import Item
from crm_core.errors import Conflict, NotFound, PreconditionFailed, TooManyRequests, Unprocessable
from crm_core.events.envelope import Origin
from crm_core.ids import new_ulid

Errors = list[dict[str, Any]]
MAX_SCHEDULE_AHEAD = timedelta(days=365)
# A schedule write that loses to a concurrent change of the campaign is tried again this
# many times (when the client sent no If-Match) before the client is asked to retry.
SCHEDULE_ATTEMPTS = 3


# Pure checks --------------------------------------------------------------------------------
def refusal(errors: Errors, what: str) -> Unprocessable:
    return Unprocessable(f"{what}: " + "; ".join(e["msg"] for e in errors), errors)


def refuse(errors: Errors, what: str) -> None:
    if errors:
        raise refusal(errors, what)


def send_time_errors(moment: datetime, now: datetime) -> Errors:
    """A scheduled send must be in the future and at most MAX_SCHEDULE_AHEAD away."""
    if moment <= now:
        return [
            {
                "loc": ["body", "send_at"],
                "msg": f"{format_iso(moment)} is not in the future (it is now "
                f"{format_iso(now)}): choose a later time, or POST .../send to send now",
            }
        ]
    if moment > now + MAX_SCHEDULE_AHEAD:
        return [
            {
                "loc": ["body", "send_at"],
                "msg": "a campaign can be scheduled at most a year ahead: choose an "
                f"earlier time than {format_iso(now + MAX_SCHEDULE_AHEAD)}",
            }
        ]
    return []


def settings_errors() -> Errors:
    """The tenant has no email settings (the postal address every email must show)."""
    return [{"loc": ["settings", "email", "postal_address"], "msg": MISSING_DETAIL}]


def template_errors(subject: str, html: str, text: str, root: str) -> Errors:
    """What stops the templates from rendering, located under `root` (`body`, `campaign`)."""
    try:
        templates.check(subject, html, text)
    except Unprocessable as refused:
        errors = [{"loc": [root, *e["loc"][1:]], "msg": e["msg"]} for e in refused.errors]
        return errors or [{"loc": [root], "msg": refused.detail}]
    return []


def sender_errors(senders: SenderRules, tenant_id: str, address: str, loc: list[str]) -> Errors:
    """`address` is not one of the tenant's senders (sender_rules.py says why)."""
    found = senders.refusal(tenant_id, address)
    return [] if found is None else [{"loc": loc, "msg": found}]


def editable(item: Item, expected: int | None, verb: str) -> Item:
    """`item`, if it may still be changed or sent: 412 (a stale If-Match) or 409 (a state
    past draft and scheduled) otherwise."""
    if expected is not None and item["version"] != expected:
        raise PreconditionFailed(f"the campaign is at version {item['version']}, not {expected}")
    if CampaignState(item["state"]) not in EDITABLE:
        raise Conflict(
            f"the campaign is {item['state']}: only a draft or scheduled campaign can be {verb}"
        )
    return item


# The use-cases ------------------------------------------------------------------------------
class CampaignLifecycle:
    """Drafting, scheduling, sending and stopping a campaign, each with its checks."""

    def __init__(
        self,
        campaigns: CampaignStore,
        segments: SegmentStore,
        audience: Audience,
        senders: SenderRules,
        email_settings: EmailSettingsStore,
        schedules: CampaignSchedules,
        logger: Logger,
    ) -> None:
        self.campaigns = campaigns
        self.segments = segments
        self.audience = audience
        self.senders = senders
        self.email_settings = email_settings
        self.schedules = schedules
        self.logger = logger

    def create(self, tenant_id: str, body: CampaignCreate, origin: Origin) -> Item:
        errors = self.segment_errors(tenant_id, body.segment_id, ["body", "segment_id"])
        errors += self.sender_errors(tenant_id, body.from_address, ["body", "from_address"])
        errors += template_errors(body.subject, body.html, body.text, "body")
        refuse(errors, "the campaign cannot be saved")
        return self.campaigns.create(tenant_id, body, origin)

    def update(
        self,
        tenant_id: str,
        campaign_id: str,
        body: CampaignPatch,
        expected: int | None,
        origin: Origin,
    ) -> Item:
        """Change a draft or scheduled campaign; a schedule is kept."""
        current = self.editable(tenant_id, campaign_id, expected, "changed")
        changes = body.changes()
        errors: Errors = []
        if "segment_id" in changes:
            errors += self.segment_errors(tenant_id, changes["segment_id"], ["body", "segment_id"])
        if "from_address" in changes:
            loc = ["body", "from_address"]
            errors += self.sender_errors(tenant_id, changes["from_address"], loc)
        if {"subject", "html", "text"} & changes.keys():
            content = {**{k: current[k] for k in ("subject", "html", "text")}, **changes}
            errors += template_errors(content["subject"], content["html"], content["text"], "body")
        refuse(errors, "the campaign cannot be saved")
        return self.campaigns.update(tenant_id, campaign_id, changes, expected, origin)

    def schedule(
        self,
        tenant_id: str,
        campaign_id: str,
        body: ScheduleRequest,
        expected: int | None,
        origin: Origin,
    ) -> Item:
        """Write the schedule, then the campaign (with the schedule's dispatch id).

        The campaign is written on the version the checks read: if another change lands in
        between, the schedule is put back as the campaign now says, and (without If-Match)
        the whole is tried again on fresh data, so the schedule and the campaign agree."""
        moment = body.moment()
        for attempt in range(1, SCHEDULE_ATTEMPTS + 1):
            current = self.editable(tenant_id, campaign_id, expected, "scheduled")
            errors = self.readiness_errors(tenant_id, current, moment)
            refuse(errors, "the campaign cannot be scheduled")
            dispatch_id = new_ulid()
            self.schedules.put(tenant_id, campaign_id, dispatch_id, moment, body.timezone)
            try:
                return self.campaigns.schedule(
                    tenant_id,
                    campaign_id,
                    format_iso(moment),
                    body.timezone,
                    dispatch_id,
                    current["version"],
                    origin,
                )
            except PreconditionFailed:
                self._restore_schedule(tenant_id, campaign_id)
                if expected is not None or attempt == SCHEDULE_ATTEMPTS:
                    break
            except Exception:
                self._restore_schedule(tenant_id, campaign_id)
                raise
        if expected is not None:
            raise PreconditionFailed("the campaign changed meanwhile: read it again")
        raise TooManyRequests("the campaign is changing fast; try again")

    def send_now(
        self, tenant_id: str, campaign_id: str, expected: int | None, origin: Origin
    ) -> Item:
        current = self.editable(tenant_id, campaign_id, expected, "sent")
        refuse(self.readiness_errors(tenant_id, current), "the campaign cannot be sent")
        item = self.campaigns.send_now(tenant_id, campaign_id, expected, origin)
        # After the write: a schedule that fires meanwhile carries the old dispatch id, and
        # the dispatcher ignores it.
        self.schedules.delete(campaign_id)
        return item

    def cancel(
        self, tenant_id: str, campaign_id: str, expected: int | None, origin: Origin
    ) -> Item:
        item = self.campaigns.cancel(tenant_id, campaign_id, origin, expected)
        self.schedules.delete(campaign_id)
        return item

    def editable(self, tenant_id: str, campaign_id: str, expected: int | None, verb: str) -> Item:
        """The campaign, if it may still be changed or sent: 404, 412 or 409 otherwise,
        before anything else is checked."""
        return editable(self.campaigns.load(tenant_id, campaign_id), expected, verb)

    def _restore_schedule(self, tenant_id: str, campaign_id: str) -> None:
        """Make the schedule what the campaign says again, after a campaign write failed."""
        try:
            item = self.campaigns.load(tenant_id, campaign_id)
            if item["state"] == CampaignState.SCHEDULED and item.get("dispatch_id"):
                moment = datetime.fromisoformat(item["send_at"])
                zone = item.get("timezone") or "UTC"
                self.schedules.put(tenant_id, campaign_id, item["dispatch_id"], moment, zone)
            else:
                self.schedules.delete(campaign_id)
        except Exception:
            # The campaign's own write already failed and is reported; a schedule left
            # behind carries a dispatch id the campaign does not have, so its firing
            # changes nothing.
            self.logger.exception(
                "could not restore the schedule", extra={"campaign_id": campaign_id}
            )

    # Checks that read the table -------------------------------------------------------------
    def segment_errors(self, tenant_id: str, segment_id: str, loc: list[str]) -> Errors:
        try:
            self.segments.load(tenant_id, segment_id)
        except NotFound:
            return [{"loc": loc, "msg": f"no segment {segment_id}: choose one of GET /segments"}]
        return []

    def sender_errors(self, tenant_id: str, address: str, loc: list[str]) -> Errors:
        return sender_errors(self.senders, tenant_id, address, loc)

    def readiness_errors(
        self, tenant_id: str, item: Item, moment: datetime | None = None
    ) -> Errors:
        """Everything that stops the campaign from going out now (or at `moment`)."""
        errors = [] if moment is None else send_time_errors(moment, datetime.now(UTC))
        if self.email_settings.find(tenant_id) is None:
            errors += settings_errors()
        loc = ["campaign", "from_address"]
        errors += self.sender_errors(tenant_id, item["from_address"], loc)
        errors += template_errors(item["subject"], item["html"], item["text"], "campaign")
        errors += self._audience_errors(tenant_id, item["segment_id"])
        return errors

    def _audience_errors(self, tenant_id: str, segment_id: str) -> Errors:
        loc = ["campaign", "segment_id"]
        try:
            segment = self.segments.load(tenant_id, segment_id)
        except NotFound:
            msg = f"the campaign's segment {segment_id} no longer exists: PATCH the campaign "
            return [{"loc": loc, "msg": msg + "with another segment_id"}]
        if self.audience.is_empty(tenant_id, SegmentFilter.model_validate(segment["filter"])):
            return [
                {
                    "loc": loc,
                    "msg": f"the segment {segment_id} matches no contact now: change its "
                    f"filter (PATCH /segments/{segment_id}) or PATCH the campaign with "
                    "another segment_id",
                }
            ]
        return []
