"""email_events: what happens to campaign emails after they are sent, onto the CRM.

Two rules deliver here:
- the DEFAULT bus, `source: aws.ses` (SES publishes only there), for the events of the
  stage's configuration set: Delivery, Open, Click, Bounce, Complaint, Reject (and Send,
  kept nothing of). Each becomes the recipient's step, the campaign's counter, the
  contact's activity, a suppression, an unsubscribe or a pause, exactly once however often
  it is delivered (crm_core/campaigns/engagement.py: the recipient's `<status>_at` guards
  it, no idempotency record needed);
- the stage's bus, ContactUnsubscribed: the contact's `unsubscribed` activity and the
  campaign's recipient (EventConsumer, idempotent on the event's id).

An SES event that is not an SES event record is refused (PoisonEvent): it lands in the DLQ
where it can be seen. One without our tags (a test send) or about a recipient that does not
exist (a deleted campaign, say) is dropped with a log line; a transient failure raises, and
Lambda retries it, then the DLQ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from crm_core.campaigns.engagement import EmailEventOutcome
from crm_core.campaigns.ses_events import SES_SOURCE, SesEvent, parse_ses
from crm_core.events.contacts import ContactUnsubscribed
from email_events_consumer.context import consumer, engagement, logger, metrics

_METRICS = {
    EmailEventOutcome.RECORDED: "EmailEventRecorded",
    EmailEventOutcome.DUPLICATE: "EmailEventDuplicate",
    EmailEventOutcome.MISSING: "EmailEventOfNoRecipient",
}


@consumer.on(ContactUnsubscribed)
def contact_unsubscribed(event: ContactUnsubscribed) -> dict[str, Any]:
    applied = engagement.unsubscribed(event)
    summary = applied.summary()
    metrics.add_metric(name="UnsubscribeLogged", unit=MetricUnit.Count, value=1)
    logger.info("unsubscribe recorded", extra=summary)
    return summary


def _is_ses(event: Mapping[str, Any]) -> bool:
    return event.get("source") == SES_SOURCE


def _ses_record(event: Mapping[str, Any]) -> SesEvent:
    return parse_ses(event.get("detail"))


@consumer.on_outside("SES event", _is_ses, _ses_record)
def ses_event(ses: SesEvent) -> dict[str, Any]:
    # Every event of one email shares its message id: the correlation id of its lines.
    logger.set_correlation_id(ses.mail.message_id)
    logger.append_keys(ses_event_type=ses.event_type)
    applied = engagement.apply(ses, correlation_id=ses.mail.message_id)
    summary = applied.summary()
    if applied.outcome == EmailEventOutcome.NOT_OURS:
        logger.info("not a campaign email (no campaign tags): ignored", extra=summary)
    elif applied.outcome == EmailEventOutcome.NOT_TRACKED:
        logger.info("an SES event kept nothing of", extra=summary)
    elif applied.outcome == EmailEventOutcome.MISSING:
        logger.warning("no such recipient (tenant, campaign or contact): ignored", extra=summary)
    else:
        logger.info("SES event applied", extra=summary)
    name = _METRICS.get(applied.outcome)
    if name:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if applied.suppressed:
        metrics.add_metric(
            name="AddressesSuppressed", unit=MetricUnit.Count, value=applied.suppressed
        )
    if applied.paused:
        metrics.add_metric(name="CampaignPausedForComplaints", unit=MetricUnit.Count, value=1)
    return summary
