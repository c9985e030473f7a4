"""What the routes share for the life of the process: settings, the table, the resolver,
and the Powertools logger, tracer and metrics."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from crm_core.companies.store import CompanyStore
from crm_core.contacts.store import ContactStore
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
contact_store = ContactStore(table)
company_store = CompanyStore(table)
app = APIGatewayHttpResolver(enable_validation=True)
