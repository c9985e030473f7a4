"""What every invocation of campaign_sender shares, made once per cold start."""

from __future__ import annotations

import os

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from crm_core.campaigns import send_rate
from crm_core.campaigns.sending import Sender
from crm_core.campaigns.unsubscribe_tokens import TokenKey
from crm_core.clients import NO_RETRY_CONFIG, client
from crm_core.invocation import Invocation
from crm_core.runtime import function_runtime

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
