"""Email campaigns as the API shows them, and the states a campaign and a recipient move
through (issue 8).

A campaign mails one segment, as it is when the send starts, from an address on a verified
SES identity. Its subject and bodies are Jinja2 templates of merge fields
(`templates.py`). Its counters are kept on its item as top-level numbers (`count_<name>`),
each changed with an atomic ADD in the same write as the recipient change that causes it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from crm_core.fields import (
    INPUT_MODEL,
    LOCAL_DATE_TIME_PATTERN,
    NOT_BLANK,
    OUTPUT_MODEL,
    STRIPPED,
    VISIBLE,
    Email,
    OneLine,
    PatchBody,
    Ulid,
    in_utc,
    local_iso_text,
)
from crm_core.timezones import TimeZone, zone

MAX_SUBJECT_CHARS = 300
MAX_HTML_CHARS = 200_000
MAX_TEXT_CHARS = 100_000


class CampaignState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FAILED = "failed"


# Where each state may go (campaign_store enforces it with a condition on `state`).
TRANSITIONS: dict[CampaignState, frozenset[CampaignState]] = {
    CampaignState.DRAFT: frozenset(
        {CampaignState.SCHEDULED, CampaignState.SENDING, CampaignState.CANCELLED}
    ),
    CampaignState.SCHEDULED: frozenset(
        {CampaignState.SCHEDULED, CampaignState.SENDING, CampaignState.CANCELLED}
    ),
    CampaignState.SENDING: frozenset(
        {CampaignState.SENT, CampaignState.PAUSED, CampaignState.CANCELLED, CampaignState.FAILED}
    ),
    CampaignState.PAUSED: frozenset({CampaignState.SENDING, CampaignState.CANCELLED}),
    CampaignState.SENT: frozenset(),
    CampaignState.CANCELLED: frozenset(),
    CampaignState.FAILED: frozenset(),
}
EDITABLE = frozenset({CampaignState.DRAFT, CampaignState.SCHEDULED})


class RecipientStatus(StrEnum):
    QUEUED = "queued"  # in the audience, not yet handled by the sender
    SENDING = "sending"  # claimed by a sender (claim_id); SES not yet known to have it
    SENT = "sent"  # SES accepted it
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    FAILED = "failed"  # SES refused it for good, or a send was interrupted
    SKIPPED = "skipped"  # no consent, suppressed, no email, or the contact is gone


# A recipient's shown status only moves up this order (an Open arriving before its
# Delivery, say, leaves it `opened`); `<status>_at` timestamps record every step.
STATUS_RANK: dict[RecipientStatus, int] = {
    RecipientStatus.QUEUED: 0,
    RecipientStatus.SENDING: 1,
    RecipientStatus.SKIPPED: 2,
    RecipientStatus.FAILED: 2,
    RecipientStatus.SENT: 2,
    RecipientStatus.DELIVERED: 3,
    RecipientStatus.OPENED: 4,
    RecipientStatus.CLICKED: 5,
    RecipientStatus.UNSUBSCRIBED: 6,
    RecipientStatus.BOUNCED: 7,
    RecipientStatus.COMPLAINED: 8,
}


class SkipReason(StrEnum):
    CONSENT = "consent"  # email_consent is not `subscribed` (at send time)
    SUPPRESSED = "suppressed"  # the address bounced hard or complained
    NO_EMAIL = "no_email"
    MISSING = "missing"  # deleted or merged away since the audience was taken


# The campaign's counters: `count_<name>` on its item.
COUNTERS = (
    "audience",
    "sent",
    "delivered",
    "bounced",
    "complained",
    "opened",
    "clicked",
    "unsubscribed",
    "failed",
    "skipped",
)
COUNT_PREFIX = "count_"


def counter(name: str) -> str:
    if name not in COUNTERS:
        raise ValueError(f"no counter {name}")
    return f"{COUNT_PREFIX}{name}"


# The complaint rate that pauses a campaign, once it has this many deliveries.
COMPLAINT_RATE_LIMIT = 0.003
COMPLAINT_RATE_MIN_DELIVERIES = 1000

CampaignName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK), STRIPPED
]
Subject = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_SUBJECT_CHARS, pattern=VISIBLE)
]
HtmlBody = Annotated[str, StringConstraints(min_length=1, max_length=MAX_HTML_CHARS)]
TextBody = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
# A display name in the From header (and the company name, in the footer and the subject's
# merge values): one line, or every send of the campaign would fail on its header.
FromName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=NOT_BLANK),
    OneLine(),
    STRIPPED,
]
PostalAddress = Annotated[
    str, StringConstraints(min_length=10, max_length=500, pattern=NOT_BLANK), STRIPPED
]


class CampaignCreate(BaseModel):
    """POST /campaigns: a draft. The templates must render (422 otherwise)."""

    model_config = INPUT_MODEL

    name: CampaignName
    segment_id: Ulid
    from_address: Email = Field(description="On an SES identity verified for sending.")
    from_name: FromName | None = None
    reply_to: Email | None = None
    subject: Subject = Field(description="A template: merge fields, no HTML escaping.")
    html: HtmlBody = Field(description="A template, HTML-escaped merge fields.")
    text: TextBody = Field(description="A template for the plain-text part.")


class CampaignPatch(PatchBody):
    """PATCH /campaigns/{id}: the fields sent are replaced (a draft or scheduled campaign)."""

    NOT_NULL = ("name", "segment_id", "from_address", "subject", "html", "text")

    name: CampaignName | None = None
    segment_id: Ulid | None = None
    from_address: Email | None = None
    from_name: FromName | None = None
    reply_to: Email | None = None
    subject: Subject | None = None
    html: HtmlBody | None = None
    text: TextBody | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=self.model_fields_set, exclude_none=False)


class ScheduleRequest(BaseModel):
    """POST /campaigns/{id}/schedule: when, as a wall-clock time in a time zone (or an
    offset time); it must be in the future."""

    model_config = INPUT_MODEL

    send_at: Annotated[
        datetime,
        BeforeValidator(local_iso_text),
        WithJsonSchema({"type": "string", "pattern": LOCAL_DATE_TIME_PATTERN}),
    ] = Field(description="RFC 3339; without an offset it is read in `timezone`.")
    timezone: TimeZone = "UTC"

    @model_validator(mode="after")
    def _convertible(self) -> ScheduleRequest:
        # A time that does not convert to UTC (year 1 at +14:00) could never be sent, and
        # every later conversion would fail.
        in_utc(self.moment())
        return self

    def moment(self) -> datetime:
        """The send time as an aware datetime."""
        if self.send_at.tzinfo is None:
            return self.send_at.replace(tzinfo=zone(self.timezone))
        return self.send_at


class TestSendRequest(BaseModel):
    """POST /campaigns/{id}/test: one preview email, rendered for a sample contact (or a
    real one of the tenant), marked as a test in its subject."""

    model_config = INPUT_MODEL

    to: Email
    contact_id: Ulid | None = Field(
        default=None, description="Render with this contact's fields (default: a sample)."
    )


class EmailSettings(BaseModel):
    """PUT /settings/email: what every campaign of the tenant carries."""

    model_config = INPUT_MODEL

    postal_address: PostalAddress = Field(
        description="Shown in every campaign's footer, as anti-spam laws require."
    )
    company_name: FromName | None = None


class StoredEmailSettings(EmailSettings):
    model_config = OUTPUT_MODEL

    updated_at: str
    version: int


class CampaignStats(BaseModel):
    model_config = OUTPUT_MODEL

    audience: int = 0
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    failed: int = 0
    skipped: int = Field(default=0, description="Not mailed: no consent, suppressed, no email.")
    delivery_rate: float | None = Field(default=None, description="delivered / sent")
    bounce_rate: float | None = Field(default=None, description="bounced / sent")
    complaint_rate: float | None = Field(default=None, description="complained / delivered")
    open_rate: float | None = Field(default=None, description="opened / delivered")
    click_rate: float | None = Field(default=None, description="clicked / delivered")
    unsubscribe_rate: float | None = Field(default=None, description="unsubscribed / delivered")

    @classmethod
    def of(cls, item: dict[str, Any]) -> CampaignStats:
        counts = {name: int(item.get(counter(name), 0)) for name in COUNTERS}

        def rate(part: str, whole: str) -> float | None:
            return round(counts[part] / counts[whole], 4) if counts[whole] else None

        return cls(
            **counts,
            delivery_rate=rate("delivered", "sent"),
            bounce_rate=rate("bounced", "sent"),
            complaint_rate=rate("complained", "delivered"),
            open_rate=rate("opened", "delivered"),
            click_rate=rate("clicked", "delivered"),
            unsubscribe_rate=rate("unsubscribed", "delivered"),
        )


class Campaign(BaseModel):
    model_config = OUTPUT_MODEL

    id: str
    name: str
    segment_id: str
    from_address: str
    from_name: str | None = None
    reply_to: str | None = None
    subject: str
    html: str
    text: str
    state: CampaignState
    state_reason: str | None = Field(default=None, description="Why it paused or failed.")
    send_at: str | None = Field(default=None, description="When it is scheduled (UTC).")
    timezone: str | None = None
    sending_started_at: str | None = None
    sent_at: str | None = Field(default=None, description="When its last recipient was handled.")
    stats: CampaignStats
    created_at: str
    updated_at: str
    created_by: str
    version: int


class CampaignSummary(BaseModel):
    """A campaign in a list: without its bodies."""

    model_config = OUTPUT_MODEL

    id: str
    name: str
    segment_id: str
    subject: str
    state: CampaignState
    state_reason: str | None = None
    send_at: str | None = None
    stats: CampaignStats
    created_at: str
    updated_at: str
    version: int


class CampaignPage(BaseModel):
    model_config = OUTPUT_MODEL

    items: list[CampaignSummary]
    next_cursor: str | None


class Recipient(BaseModel):
    model_config = OUTPUT_MODEL

    contact_id: str
    email: str | None = None
    status: RecipientStatus
    skip_reason: SkipReason | None = None
    error: str | None = None
    message_id: str | None = None
    queued_at: str
    sent_at: str | None = None
    delivered_at: str | None = None
    opened_at: str | None = None
    clicked_at: str | None = None
    bounced_at: str | None = None
    complained_at: str | None = None
    unsubscribed_at: str | None = None
    failed_at: str | None = None
    rejected_at: str | None = Field(default=None, description="SES rejected it after sending.")
    soft_bounced_at: str | None = Field(
        default=None, description="A transient bounce (the address is not suppressed)."
    )
    bounce_type: str | None = None
    bounce_sub_type: str | None = None
    last_link: str | None = Field(default=None, description="The last link clicked.")
    last_clicked_at: str | None = None


class RecipientPage(BaseModel):
    model_config = OUTPUT_MODEL

    items: list[Recipient]
    next_cursor: str | None
