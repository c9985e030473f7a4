"""What the routes share for the life of the process: the table, the aggregates, the
resolver, and the Powertools logger, tracer and metrics."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from crm_core.reports.aggregates import ReportAggregates
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
aggregates = ReportAggregates(table)
app = APIGatewayHttpResolver(enable_validation=True)
