"""What the routes share for the life of the process: settings, the table, the resolver."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from crm_core.companies.store import CompanyStore
from crm_core.contacts.store import ContactStore
from crm_core.dynamo import dynamodb_client
from crm_core.settings import FunctionSettings
from crm_core.table import Table

settings = FunctionSettings.from_env()
table = Table(dynamodb_client(), settings.table_name)
contact_store = ContactStore(table)
company_store = CompanyStore(table)
app = APIGatewayHttpResolver(enable_validation=True)
