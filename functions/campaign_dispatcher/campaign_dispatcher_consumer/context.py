"""What every invocation of campaign_dispatcher shares, made once per cold start."""

from __future__ import annotations

import os

from crm_core.campaigns.dispatch import PRODUCER, Dispatcher
from crm_core.clients import client
from crm_core.events.consumer import EventConsumer
from crm_core.invocation import Invocation
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
sqs = client("sqs")
dispatcher = Dispatcher(table, sqs, os.environ["SEND_QUEUE_URL"], logger)
consumer = EventConsumer(PRODUCER, table, logger)
invocation = Invocation(default_ms=300_000)
