"""Who of a send message's recipients gets an email (crm_core/campaigns/send_policy.py),
decided without moto."""

from __future__ import annotations

from typing import Any

from crm_core.campaigns.campaign_models import SkipReason
from crm_core.campaigns.send_policy import skip_reason, triage, why_dropped


def contact(**fields: Any) -> dict[str, Any]:
    base = {"type": "contact", "email": "ann@example.com", "email_consent": "subscribed"}
    return {**base, **fields}


def recipient(contact_id: str, status: str) -> dict[str, Any]:
    return {"contact_id": contact_id, "status": status}


def test_a_message_of_a_campaign_no_longer_sending_is_dropped() -> None:
    sending = {"state": "sending", "dispatch_id": "d1"}
    assert why_dropped(sending, "d1") is None
    assert why_dropped(None, "d1") == "no such campaign"
    assert why_dropped({**sending, "state": "paused"}, "d1") == "the campaign is paused"
    assert why_dropped(sending, "d0") == "the message is of another send of the campaign"


def test_only_a_subscribed_contact_with_an_email_is_mailed() -> None:
    assert skip_reason(contact()) is None
    assert skip_reason(None) == SkipReason.MISSING
    assert skip_reason(contact(type="redirect")) == SkipReason.MISSING  # merged away
    assert skip_reason(contact(email=None)) == SkipReason.NO_EMAIL
    assert skip_reason(contact(email_consent="unknown")) == SkipReason.CONSENT
    assert skip_reason(contact(email_consent="unsubscribed")) == SkipReason.CONSENT


def test_each_recipient_is_sorted_by_its_status_and_its_contact() -> None:
    ids = ["queued", "gone", "claimed", "sent", "no-consent", "suppressed", "absent"]
    recipients = {
        "queued": recipient("queued", "queued"),
        "gone": recipient("gone", "queued"),
        "claimed": recipient("claimed", "sending"),
        "sent": recipient("sent", "sent"),
        "no-consent": recipient("no-consent", "queued"),
        "suppressed": recipient("suppressed", "queued"),
    }
    contacts = {
        "queued": contact(),
        "claimed": contact(),
        "sent": contact(),
        "no-consent": contact(email_consent="unknown"),
        "suppressed": contact(email="Bob@Example.com"),
    }

    triaged = triage(ids, recipients, contacts)
    triaged.suppress({"bob@example.com"})

    assert triaged.absent == ["absent"]
    assert [r["contact_id"] for r in triaged.claimed] == ["claimed"]
    assert triaged.handled_before == 1
    assert triaged.skips == {
        "gone": SkipReason.MISSING,
        "no-consent": SkipReason.CONSENT,
        "suppressed": SkipReason.SUPPRESSED,
    }
    assert [c.contact_id for c in triaged.to_send()] == ["queued"]
