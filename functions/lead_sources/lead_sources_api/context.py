"""What the routes share for the life of the process: settings, the table, the KMS key that
seals secrets, the resolver, and the Powertools logger, tracer and metrics."""

from __future__ import annotations

import os

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from crm_core.clients import client
from crm_core.leads.secret_box import SecretBox
from crm_core.leads.sources import LeadSourceStore
from crm_core.leads.store import LeadStore
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
box = SecretBox(lambda: client("kms"), os.environ["LEAD_SECRETS_KEY_ID"])
sources = LeadSourceStore(table, box)
leads = LeadStore(table)
app = APIGatewayHttpResolver(enable_validation=True)
