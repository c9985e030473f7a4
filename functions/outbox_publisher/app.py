"""outbox_publisher: domain events from the table's stream onto the stage's bus.

The event source mapping's FilterCriteria delivers only new outbox items (template.yaml).
Each batch is put on the bus in PutEvents requests of at most 10 entries and 256 KB;
entries EventBridge refuses are sent again. Those that still fail are reported as batch
item failures, so the stream retries from the first of them (events after it may be sent
twice: consumers deduplicate on metadata.event_id). Past the retries, the batch goes to
the on-failure queue, which `crm events replay --dlq` re-publishes.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm_core.clients import client
from crm_core.events.forwarding import Outgoing, is_outbox_insert, outgoing_from_record, publish
from crm_core.runtime import entry

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()
events = client("events")
BUS_NAME = os.environ["EVENT_BUS_NAME"]


@entry(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    outgoing: list[Outgoing] = []
    for record in records:
        if not is_outbox_insert(record):
            # The filter should have kept it out; it is not an event, so nothing is lost.
            logger.warning("skipped a stream record that is not an outbox insert")
            continue
        outgoing.append(outgoing_from_record(record, BUS_NAME))
    failures = publish(events, outgoing)
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
