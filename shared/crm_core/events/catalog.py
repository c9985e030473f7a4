"""Every event type the CRM publishes, in one place.

`make schemas` writes a JSON Schema and a sample of each into events/, and docs/events.md
lists them with their producer and consumers; tests fail when those files drift.
Producers import only their own event modules (cold start); tools and tests import this.
"""

from __future__ import annotations

from crm_core.events import activities, campaigns, cases, contacts, deals, leads, scoring
from crm_core.events.envelope import DomainEvent

EVENT_TYPES: tuple[type[DomainEvent], ...] = (
    contacts.ContactCreated,
    contacts.ContactUpdated,
    contacts.ContactMerged,
    contacts.ContactDeleted,
    contacts.CompanyCreated,
    contacts.CompanyUpdated,
    contacts.CompanyDeleted,
    contacts.ContactUnsubscribed,
    activities.ActivityLogged,
    activities.ActivityUpdated,
    activities.ActivityDeleted,
    activities.TaskOverdue,
    leads.LeadReceived,
    scoring.ScoringModelChanged,
    scoring.LeadScoreChanged,
    scoring.LeadQualified,
    scoring.ScoringJobProgressed,
    campaigns.SegmentCreated,
    campaigns.SegmentUpdated,
    campaigns.SegmentDeleted,
    campaigns.CampaignCreated,
    campaigns.CampaignUpdated,
    campaigns.CampaignScheduled,
    campaigns.CampaignSendRequested,
    campaigns.CampaignSendingStarted,
    campaigns.CampaignPaused,
    campaigns.CampaignResumed,
    campaigns.CampaignCancelled,
    campaigns.CampaignSent,
    campaigns.CampaignFailed,
    deals.DealCreated,
    deals.DealUpdated,
    deals.DealStageChanged,
    deals.DealWon,
    deals.DealLost,
    deals.DealDeleted,
    deals.DealRotting,
    cases.CaseOpened,
    cases.CaseUpdated,
    cases.CaseAssigned,
    cases.CaseReplied,
    cases.CaseStatusChanged,
    cases.CaseSlaWarning,
    cases.CaseSlaBreached,
    cases.CaseSolved,
    cases.CaseReopened,
    cases.CaseRated,
)

_BY_NAME = {(t.SOURCE, t.DETAIL_TYPE): t for t in EVENT_TYPES}


def event_type(source: str, detail_type: str) -> type[DomainEvent] | None:
    return _BY_NAME.get((source, detail_type))
