"""What every invocation of lead_processor shares, made once per cold start."""

from __future__ import annotations

from crm_core.events.consumer import EventConsumer
from crm_core.leads.processor import LeadProcessor
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
processor = LeadProcessor(table)
consumer = EventConsumer("lead_processor", table, logger)
