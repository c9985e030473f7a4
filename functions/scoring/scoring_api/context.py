"""What the routes share for the life of the process: settings, the table, the resolver,
and the Powertools logger, tracer and metrics."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from crm_core.dynamo import dynamodb_client
from crm_core.scoring.store import ModelStore
from crm_core.settings import FunctionSettings
from crm_core.table import Table

# A read emits no metric, and Powertools would warn about it on every such request.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()
settings = FunctionSettings.from_env()
table = Table(dynamodb_client(), settings.table_name)
models = ModelStore(table)
app = APIGatewayHttpResolver(enable_validation=True)
