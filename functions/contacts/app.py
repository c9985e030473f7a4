"""The contacts function: contacts, companies and merge over the HTTP API."""

from __future__ import annotations

import gc

# Cold start: botocore builds many objects while loading service models, and collecting
# them mid-import costs tens of milliseconds. Collect once after init instead
# (docs/decisions.md, "Cold start").
gc.disable()

# Powertools' event handler and data classes without their package-wide imports (decision 68).
from crm_core import lean_imports  # noqa: E402

lean_imports.install()

from contacts_api import companies, contacts  # noqa: E402
from contacts_api.context import app, logger, metrics, table, tracer  # noqa: E402
from crm_core import http, tenant_quota  # noqa: E402

http.install(app, logger)
app.include_router(contacts.router)
app.include_router(companies.router)

handler = http.api_handler(app, logger, tracer, metrics, quota=tenant_quota.from_environment(table))

gc.enable()
gc.freeze()
