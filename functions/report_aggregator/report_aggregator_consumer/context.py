"""What every invocation of report_aggregator shares, made once per cold start."""

from __future__ import annotations

from crm_core.events.consumer import EventConsumer
from crm_core.reports.aggregates import ReportAggregates
from crm_core.reports.report_settings import ReportZones
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
aggregates = ReportAggregates(table)
zones = ReportZones(table)
consumer = EventConsumer("report_aggregator", table, logger)
