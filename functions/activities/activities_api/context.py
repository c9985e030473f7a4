"""What the routes share for the life of the process: settings, the table, the resolver,
and the Powertools logger, tracer and metrics."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from crm_core.activities.store import ActivityStore
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
activity_store = ActivityStore(table)
app = APIGatewayHttpResolver(enable_validation=True)
