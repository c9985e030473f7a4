"""SES's event records (the `detail` of the EventBridge events SES publishes for a
configuration set), as much as the CRM reads of them, and what they name: the campaign
recipient in the email's tags, the addresses reported, the time. Parsing only, no I/O
(`engagement.py` applies them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crm_core import keys
from crm_core.auth import is_tenant_id
from crm_core.campaigns.suppression import normal
from crm_core.events.consumer import PoisonEvent
from crm_core.ids import is_ulid

SES_SOURCE = "aws.ses"
# Addresses suppressed from one event (an SES event names the message's recipients: one).
MAX_ADDRESSES = 10


class SesEventType(StrEnum):
    SEND = "Send"
    DELIVERY = "Delivery"
    BOUNCE = "Bounce"
    COMPLAINT = "Complaint"
    OPEN = "Open"
    CLICK = "Click"
    REJECT = "Reject"
    DELIVERY_DELAY = "DeliveryDelay"
    RENDERING_FAILURE = "Rendering Failure"
    SUBSCRIPTION = "Subscription"


# SES's event record (the EventBridge event's `detail`), as much as we read of it. A
# tolerant reader: SES adds fields over time.
_SES_MODEL = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class Addressee(BaseModel):
    model_config = _SES_MODEL
    email_address: str = Field(alias="emailAddress", max_length=998)


class CommonHeaders(BaseModel):
    model_config = _SES_MODEL
    subject: str | None = None


class Mail(BaseModel):
    model_config = _SES_MODEL
    message_id: str = Field(alias="messageId", min_length=1, max_length=256)
    timestamp: str | None = None
    destination: list[str] = Field(default_factory=list)
    tags: dict[str, Any] = Field(default_factory=dict)
    common_headers: CommonHeaders | None = Field(default=None, alias="commonHeaders")


class Bounce(BaseModel):
    model_config = _SES_MODEL
    bounce_type: str = Field(alias="bounceType")
    bounce_sub_type: str | None = Field(default=None, alias="bounceSubType")
    bounced_recipients: list[Addressee] = Field(default_factory=list, alias="bouncedRecipients")
    timestamp: str | None = None


class Complaint(BaseModel):
    model_config = _SES_MODEL
    complained_recipients: list[Addressee] = Field(
        default_factory=list, alias="complainedRecipients"
    )
    complaint_feedback_type: str | None = Field(default=None, alias="complaintFeedbackType")
    timestamp: str | None = None


class Stamp(BaseModel):
    model_config = _SES_MODEL
    timestamp: str | None = None


class Click(Stamp):
    link: str | None = None


class Reject(BaseModel):
    model_config = _SES_MODEL
    reason: str | None = None


class SesEvent(BaseModel):
    model_config = _SES_MODEL
    event_type: str = Field(alias="eventType", min_length=1, max_length=64)
    mail: Mail
    bounce: Bounce | None = None
    complaint: Complaint | None = None
    delivery: Stamp | None = None
    open: Stamp | None = None
    click: Click | None = None
    reject: Reject | None = None

    @model_validator(mode="after")
    def _carries_its_part(self) -> SesEvent:
        if self.event_type == SesEventType.BOUNCE and self.bounce is None:
            raise ValueError("a Bounce event without its bounce object")
        if self.event_type == SesEventType.COMPLAINT and self.complaint is None:
            raise ValueError("a Complaint event without its complaint object")
        return self


def parse_ses(detail: Any) -> SesEvent:
    """The SES event record of an EventBridge event's detail, or PoisonEvent (it can never
    be applied as it is: the DLQ keeps it, visibly)."""
    try:
        return SesEvent.model_validate(detail)
    except ValidationError as error:
        raise PoisonEvent(
            f"not an SES event record: {error.error_count()} error(s): "
            + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        ) from None


@dataclass(frozen=True)
class Target:
    """The recipient an event is about: the email's tags."""

    tenant_id: str
    campaign_id: str
    contact_id: str

    def key(self) -> dict[str, str]:
        return keys.recipient(self.tenant_id, self.campaign_id, self.contact_id)


def _tag(tags: Mapping[str, Any], name: str) -> str | None:
    values = tags.get(name)
    if isinstance(values, list) and values and isinstance(values[0], str):
        return values[0]
    return values if isinstance(values, str) else None


def target_of(mail: Mail) -> Target | None:
    """The recipient named by the email's tags; None when the email is not a campaign's
    (no tags, or not ours: a test send carries no campaign recipient)."""
    tenant = _tag(mail.tags, "tenant_id")
    campaign = _tag(mail.tags, "campaign_id")
    contact = _tag(mail.tags, "contact_id")
    if not (tenant and campaign and contact):
        return None
    if not (is_tenant_id(tenant) and is_ulid(campaign) and is_ulid(contact)):
        return None
    return Target(tenant, campaign, contact)


def moment(*texts: str | None) -> datetime:
    """The first of `texts` that is an ISO 8601 time, in UTC (now if none is)."""
    for text in texts:
        if not text:
            continue
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            continue
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.now(UTC)


def reported_addresses(reported: Sequence[Addressee], fallback: Sequence[str]) -> list[str]:
    """The addresses an event reports (else the message's destination), plain and
    normalized, each once."""
    raw = [r.email_address for r in reported] or list(fallback)
    found = []
    for text in raw:
        address = normal(parseaddr(text)[1])
        if "@" in address and len(address) <= 254 and address not in found:
            found.append(address)
    return found[:MAX_ADDRESSES]
