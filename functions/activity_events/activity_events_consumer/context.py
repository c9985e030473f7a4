"""What every invocation of activity_events shares, made once per cold start."""

from __future__ import annotations

from crm_core.activities.store import ActivityStore
from crm_core.events.consumer import EventConsumer
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
store = ActivityStore(table)
consumer = EventConsumer("activity_events", table, logger)
