"""lead_processor: each received lead becomes a contact (created, or the existing one with
its email, blanks filled) and a form_submission activity on it, or is kept `rejected`.

The lead's item is the state machine that makes this exactly once, even past the
consumer's idempotency record (crm_core/leads/processor.py). Logs carry ids and statuses
only: a lead's payload and the person's data never reach them.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from crm_core.events.leads import LeadReceived
from crm_core.leads.models import LeadStatus
from lead_processor_consumer.context import consumer, logger, metrics, processor

_METRICS = {LeadStatus.PROCESSED: "LeadsProcessed", LeadStatus.REJECTED: "LeadsRejected"}


@consumer.on(LeadReceived)
def process_lead(event: LeadReceived) -> dict[str, Any]:
    outcome = processor.process(event)
    name = _METRICS.get(outcome.status) if outcome.status else None
    if name and not outcome.replayed:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if outcome.status is None:
        # Its event outlived it (a replay after the lead was deleted): nothing to do.
        logger.warning("no such lead", extra={"lead_id": outcome.lead_id})
    else:
        logger.info(
            f"lead {outcome.status.value}",
            extra={
                **outcome.summary(),
                "source_id": event.data.source_id,
                "replayed": outcome.replayed,
            },
        )
    return outcome.summary()
