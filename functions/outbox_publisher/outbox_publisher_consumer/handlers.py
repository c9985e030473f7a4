"""outbox_publisher: domain events from the table's stream onto the stage's bus.

The event source mapping's FilterCriteria delivers only new outbox items (template.yaml).
Each batch is put on the bus in PutEvents requests of at most 10 entries and 256 KB;
entries EventBridge refuses are sent again. Those that still fail are reported as batch
item failures, so the stream retries from the first of them (events after it may be sent
twice: consumers deduplicate on metadata.event_id). Past the retries, the batch goes to
the on-failure queue, which `crm events replay --dlq` re-publishes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from crm_core.events.forwarding import Outgoing, is_outbox_insert, outgoing_from_record, publish
from outbox_publisher_consumer import context
from outbox_publisher_consumer.context import logger, metrics


def publish_records(event: dict[str, Any]) -> dict[str, Any]:
    """The batch's outbox items onto the bus; the ones that could not go, as batch item
    failures. The client and the bus are read from `context` at each call."""
    records = event.get("Records") or []
    outgoing: list[Outgoing] = []
    for record in records:
        if not is_outbox_insert(record):
            # The filter should have kept it out; it is not an event, so nothing is lost.
            logger.warning("skipped a stream record that is not an outbox insert")
            continue
        outgoing.append(outgoing_from_record(record, context.BUS_NAME))
    failures = publish(context.events, outgoing)
    published = len(outgoing) - len(failures)
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=published)
    if not failures:
        logger.info("published", extra={"events": published})
        return {"batchItemFailures": []}
    metrics.add_metric(name="EventsNotPublished", unit=MetricUnit.Count, value=len(failures))
    for failure in failures:
        logger.error(
            "event not published",
            extra={
                "sequence_number": failure.outgoing.key,
                "detail_type": failure.outgoing.entry["DetailType"],
                "error_code": failure.code,
                "error_message": failure.message,
            },
        )
    # The stream retries from the lowest sequence number reported.
    return {"batchItemFailures": [{"itemIdentifier": f.outgoing.key} for f in failures]}
