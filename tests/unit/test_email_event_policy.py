"""The email events' pure parts, without moto: when complaints pause a campaign
(crm_core/campaigns/complaint_rate.py), and what an SES event record names
(crm_core/campaigns/ses_events.py)."""

from __future__ import annotations

from typing import Any

import pytest

from crm_core.campaigns.campaign_models import counter
from crm_core.campaigns.complaint_rate import complaint_rate_exceeded, pause_reason
from crm_core.campaigns.ses_events import parse_ses, reported_addresses, target_of
from crm_core.events.consumer import PoisonEvent

CAMPAIGN = "01HZY8Q5B2N4V6X8Z0C2E4G6J8"
CONTACT = "01HZY8Q5B2N4V6X8Z0C2E4G6K9"


def campaign(delivered: int, complained: int) -> dict[str, Any]:
    return {counter("delivered"): delivered, counter("complained"): complained}


@pytest.mark.parametrize(
    ("delivered", "complained", "paused"),
    [
        (999, 999, False),  # too few deliveries to judge
        (1000, 3, False),  # exactly 0.3%: at the limit, not above it
        (1000, 4, True),
        (100_000, 300, False),
        (100_000, 301, True),
    ],
)
def test_complaints_pause_only_above_the_rate_once_enough_were_delivered(
    delivered: int, complained: int, paused: bool
) -> None:
    assert complaint_rate_exceeded(campaign(delivered, complained)) is paused


def test_the_pause_reason_says_the_rate_and_the_counts() -> None:
    reason = pause_reason(campaign(1000, 4))
    assert reason.startswith("complaint rate 0.4% (4 of 1,000 delivered) is above 0.3%")


def ses(tags: dict[str, Any], **parts: Any) -> dict[str, Any]:
    mail = {"messageId": "m-1", "destination": ["Ann <ANN@example.com>"], "tags": tags}
    return {"eventType": "Delivery", "mail": mail, **parts}


def test_the_recipient_is_named_by_the_emails_tags_only_when_they_are_ours() -> None:
    ours = {"tenant_id": ["acme"], "campaign_id": [CAMPAIGN], "contact_id": [CONTACT]}
    target = target_of(parse_ses(ses(ours)).mail)
    assert target is not None
    assert (target.tenant_id, target.campaign_id, target.contact_id) == ("acme", CAMPAIGN, CONTACT)
    assert target_of(parse_ses(ses({})).mail) is None  # a test send carries no tags
    forged = {**ours, "contact_id": ["../../other"]}
    assert target_of(parse_ses(ses(forged)).mail) is None


def test_a_bounce_without_its_bounce_object_is_poison() -> None:
    with pytest.raises(PoisonEvent, match="without its bounce object"):
        parse_ses({**ses({}), "eventType": "Bounce"})


def test_reported_addresses_are_plain_normalized_and_once() -> None:
    record = parse_ses(
        ses(
            {},
            eventType="Bounce",
            bounce={
                "bounceType": "Permanent",
                "bouncedRecipients": [
                    {"emailAddress": "Bob <BOB@Example.com>"},
                    {"emailAddress": "bob@example.com"},
                    {"emailAddress": "not an address"},
                ],
            },
        )
    )
    assert record.bounce is not None
    assert reported_addresses(record.bounce.bounced_recipients, []) == ["bob@example.com"]
    assert reported_addresses([], record.mail.destination) == ["ann@example.com"]
