"""campaign_dispatcher: a campaign's send starts here. Its audience, as it is now, becomes
its recipients, enqueued in batches for the sender (crm_core/campaigns/dispatch.py).

- The campaign's one-time schedule fires (the Scheduler invokes this function with
  `{"kind": "campaign_due", ...}`): scheduled -> sending, then the dispatch;
- CampaignSendRequested (send now): the dispatch;
- CampaignResumed: the recipients still `queued` enqueued again (or the rest of the
  dispatch, if the pause came before it was done).

Every run may be repeated: it writes only the recipients missing and enqueues the ones
still `queued`. A run that finds another holding the campaign's lease, or that runs short
of time, fails so that Lambda retries it (2 retries, then the dispatcher's DLQ).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from campaign_dispatcher_consumer.context import consumer, dispatcher, invocation, logger, metrics
from crm_core.campaigns.dispatch import CampaignDue, DispatchOutcome, Run
from crm_core.events.campaigns import CampaignResumed, CampaignSendRequested


def _report(outcome: DispatchOutcome) -> dict[str, Any]:
    summary = outcome.summary()
    if outcome.written:
        metrics.add_metric(name="RecipientsWritten", unit=MetricUnit.Count, value=outcome.written)
    if outcome.enqueued:
        metrics.add_metric(name="RecipientsEnqueued", unit=MetricUnit.Count, value=outcome.enqueued)
    logger.info(f"dispatch {outcome.result}", extra=summary)
    return summary


@consumer.on(CampaignSendRequested)
def send_requested(event: CampaignSendRequested) -> dict[str, Any]:
    data = event.data
    return _report(dispatcher.dispatch(event.tenant_id, data.campaign_id, data.dispatch_id, _run()))


@consumer.on(CampaignResumed)
def resumed(event: CampaignResumed) -> dict[str, Any]:
    data = event.data
    outcome = dispatcher.dispatch(
        event.tenant_id, data.campaign_id, data.dispatch_id, _run(), resume=True
    )
    return _report(outcome)


def _run() -> Run:
    """This invocation's run: the request id (kept across Lambda's retries) and time left."""
    return Run(run_id=invocation.request_id(), time_left_ms=invocation.time_left_ms)


def _is_due(event: Mapping[str, Any]) -> bool:
    return event.get("kind") == "campaign_due"


@consumer.on_outside("campaign schedule", _is_due, CampaignDue.model_validate)
def campaign_due(due: CampaignDue) -> dict[str, Any]:
    logger.append_keys(tenant_id=due.tenant_id, campaign_id=due.campaign_id)
    return _report(dispatcher.due(due, _run()))
