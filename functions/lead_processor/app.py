"""lead_processor: each received lead becomes a contact (created, or the existing one with
its email, blanks filled) and a form_submission activity on it, or is kept `rejected`.

The lead's item is the state machine that makes this exactly once, even past the
consumer's idempotency record (crm_core/leads/processor.py). Logs carry ids and statuses
only: a lead's payload and the person's data never reach them.
"""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

from typing import Any  # noqa: E402

from aws_lambda_powertools.metrics import MetricUnit  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from crm_core.events.consumer import EventConsumer  # noqa: E402
from crm_core.events.leads import LeadReceived  # noqa: E402
from crm_core.leads.models import LeadStatus  # noqa: E402
from crm_core.leads.processor import LeadProcessor  # noqa: E402
from crm_core.runtime import entry, function_runtime  # noqa: E402

logger, tracer, metrics, settings, table = function_runtime()
processor = LeadProcessor(table)
consumer = EventConsumer("lead_processor", table, logger)

gc.enable()
gc.freeze()

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


@entry(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return consumer.handle(event, context)
