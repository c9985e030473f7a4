"""Who of a send message's recipients gets an email, decided without I/O: a message of a
campaign no longer sending is dropped; a recipient another run holds, or one handled before,
is left alone; a contact gone, without an email, without consent or suppressed is skipped;
the rest are candidates (`Sender` in sending.py reads, asks this, then claims and mails)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from crm_core import keys
from crm_core.campaigns.campaign_models import CampaignState, RecipientStatus, SkipReason
from crm_core.campaigns.suppression import normal
from crm_core.dynamo import Item
from crm_core.records.contact import EmailConsent


@dataclass(frozen=True)
class Candidate:
    contact_id: str
    contact: Item


@dataclass
class Triage:
    """A message's recipients, sorted by what happens to each."""

    absent: list[str] = field(default_factory=list)  # no recipient item: logged, nothing more
    claimed: list[Item] = field(default_factory=list)  # `sending`: another run may hold it
    handled_before: int = 0  # sent, skipped or failed by an earlier delivery
    skips: dict[str, SkipReason] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)

    def suppress(self, suppressed: set[str]) -> None:
        """Skip the candidates whose address is on the suppression list."""
        for candidate in self.candidates:
            if normal(candidate.contact["email"]) in suppressed:
                self.skips[candidate.contact_id] = SkipReason.SUPPRESSED

    def to_send(self) -> list[Candidate]:
        return [c for c in self.candidates if c.contact_id not in self.skips]


def why_dropped(campaign: Item | None, dispatch_id: str) -> str | None:
    """Why a message of this campaign is dropped, or None."""
    if campaign is None:
        return "no such campaign"
    if campaign.get("state") != CampaignState.SENDING.value:
        return f"the campaign is {campaign.get('state')}"
    if campaign.get("dispatch_id") != dispatch_id:
        return "the message is of another send of the campaign"
    return None


def skip_reason(contact: Item | None) -> SkipReason | None:
    """Why a queued recipient's contact is not mailed, or None."""
    if contact is None or contact.get("type") != keys.CONTACT_ITEM:
        return SkipReason.MISSING  # deleted, or merged into another contact
    if not contact.get("email"):
        return SkipReason.NO_EMAIL
    if contact.get("email_consent") != EmailConsent.SUBSCRIBED.value:
        return SkipReason.CONSENT
    return None


def triage(
    contact_ids: Iterable[str],
    recipient_of: Mapping[str, Item],
    contact_of: Mapping[str, Item],
) -> Triage:
    """Each of `contact_ids` by its recipient item and its contact item (as read)."""
    triaged = Triage()
    for contact_id in contact_ids:
        recipient = recipient_of.get(contact_id)
        status = recipient.get("status") if recipient else None
        if recipient is None:
            triaged.absent.append(contact_id)
        elif status == RecipientStatus.SENDING.value:
            triaged.claimed.append(recipient)
        elif status != RecipientStatus.QUEUED.value:
            triaged.handled_before += 1
        else:
            contact = contact_of.get(contact_id)
            reason = skip_reason(contact)
            if reason is not None or contact is None:
                triaged.skips[contact_id] = reason or SkipReason.MISSING
            else:
                triaged.candidates.append(Candidate(contact_id, contact))
    return triaged
