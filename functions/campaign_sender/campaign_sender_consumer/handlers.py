"""campaign_sender: the send queue's messages, each up to 50 recipients of one campaign,
mailed through SES at the stage's rate (crm_core/campaigns/sending.py).

SQS batches (BatchSize 5) with partial batch responses: a message that fails (SES
throttling, time running out, no email settings) is reported alone and delivered again
after the queue's visibility timeout, when only its recipients still `queued` are sent; 5
failed receives move it to the send DLQ. Each recipient is mailed at most once, however
often its message arrives. Logs carry ids, counts and error codes, never an address.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from campaign_sender_consumer.context import invocation, logger, metrics, processor, sender
from crm_core.campaigns.recipients import SendBatch
from crm_core.campaigns.sending import SendLater
from crm_core.invocation import OutOfTime

_METRICS = {"sent": "EmailsSent", "skipped": "EmailsSkipped", "failed": "EmailsFailed"}


def send_message(record: SQSRecord) -> dict[str, Any]:
    logger.append_keys(sqs_message_id=record.message_id)
    batch = SendBatch.model_validate_json(record.body)
    logger.append_keys(tenant_id=batch.tenant_id, campaign_id=batch.campaign_id)
    try:
        result = sender.send(batch, invocation.time_left_ms)
    except (SendLater, OutOfTime) as later:
        metrics.add_metric(name="SendBatchesDeferred", unit=MetricUnit.Count, value=1)
        logger.warning("the message waits for its redelivery", extra={"why": str(later)})
        raise
    except Exception:
        logger.exception("the message failed")
        raise
    summary = result.summary()
    for name, metric in _METRICS.items():
        if summary[name]:
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=summary[name])
    logger.info("message handled", extra=summary)
    return summary


def handle_batch(event: dict[str, Any], context: LambdaContext) -> Any:
    """One invocation: each message on its own, failures reported per message."""
    invocation.begin(context)
    sender.begin()
    return process_partial_response(
        event=event, record_handler=send_message, processor=processor, context=context
    )
