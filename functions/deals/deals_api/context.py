"""What the routes share for the life of the process: settings, the table, the stores, the
resolver, and the Powertools logger, tracer and metrics."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from crm_core.deals.board import BoardReader
from crm_core.deals.deal_store import DealStore
from crm_core.deals.forecast import ForecastReader
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
deal_store = DealStore(table)
pipeline_store = deal_store.pipelines
currency_store = deal_store.currencies
settings_store = deal_store.settings
boards = BoardReader(table, pipeline_store, currency_store)
forecasts = ForecastReader(table, pipeline_store, currency_store)
app = APIGatewayHttpResolver(enable_validation=True)
