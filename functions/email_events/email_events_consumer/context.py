"""What every invocation of email_events shares, made once per cold start."""

from __future__ import annotations

from crm_core.campaigns.engagement import PRODUCER, EngagementRecorder
from crm_core.events.consumer import EventConsumer
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
engagement = EngagementRecorder(table)
consumer = EventConsumer(PRODUCER, table, logger)
