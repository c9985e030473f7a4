"""campaign_sender: the send queue's messages, each up to 50 recipients of one campaign,
mailed through SES at the stage's rate (crm_core/campaigns/sending.py).

SQS batches (BatchSize 5) with partial batch responses: a message that fails (SES
throttling, time running out, no email settings) is reported alone and delivered again
after the queue's visibility timeout, when only its recipients still `queued` are sent; 5
failed receives move it to the send DLQ. Each recipient is mailed at most once, however
often its message arrives. Logs carry ids, counts and error codes, never an address.
"""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

# Powertools' event handler and data classes without their package-wide imports (decision 68).
from crm_core import lean_imports  # noqa: E402

lean_imports.install()

import os  # noqa: E402
from typing import Any  # noqa: E402

from aws_lambda_powertools.metrics import MetricUnit  # noqa: E402
from aws_lambda_powertools.utilities.batch import (  # noqa: E402
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from crm_core.campaigns import send_rate  # noqa: E402
from crm_core.campaigns.recipients import SendBatch  # noqa: E402
from crm_core.campaigns.sending import Sender, SendLater  # noqa: E402
from crm_core.campaigns.unsubscribe_tokens import TokenKey  # noqa: E402
from crm_core.clients import NO_RETRY_CONFIG, client  # noqa: E402
from crm_core.invocation import Invocation, OutOfTime  # noqa: E402
from crm_core.runtime import entry, function_runtime  # noqa: E402

logger, tracer, metrics, settings, table = function_runtime()
token_key = TokenKey(lambda: client("kms"), os.environ["UNSUBSCRIBE_KEY_ID"])
sender = Sender(
    table,
    # Never retried by botocore: a retry after a lost answer would mail the person twice.
    client("sesv2", NO_RETRY_CONFIG),
    lambda: token_key.secret,
    send_rate.from_environment(),
    configuration_set=os.environ["SES_CONFIGURATION_SET"],
    unsubscribe_base_url=os.environ["UNSUBSCRIBE_URL"],
    logger=logger,
)
# Every message is reported on its own, even when all of them fail (the same retries as a
# failed invocation, with the reasons logged per message).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
invocation = Invocation(default_ms=120_000)

gc.enable()
gc.freeze()


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


@entry(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    invocation.begin(context)
    sender.begin()
    return process_partial_response(
        event=event, record_handler=send_message, processor=processor, context=context
    )
