"""What the routes share for the life of the process: settings, the table, the stores, the
resolver, and the Powertools logger, tracer and metrics."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from crm_core.campaigns.audience import Audience
from crm_core.campaigns.segment_store import SegmentStore
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
segments = SegmentStore(table)
audience = Audience(table)
app = APIGatewayHttpResolver(enable_validation=True)
