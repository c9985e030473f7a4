"""What the routes share for the life of the process: settings, the table, the resolver,
and the Powertools logger, tracer and metrics."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from crm_core.runtime import function_runtime
from crm_core.scoring.jobs import JobStore
from crm_core.scoring.store import ModelStore

logger, tracer, metrics, settings, table = function_runtime()
models = ModelStore(table)
jobs = JobStore(table)
app = APIGatewayHttpResolver(enable_validation=True)
