"""The reports function: reports answered from the aggregates, and the tenant's report
settings, over the HTTP API."""

from __future__ import annotations

import gc

# Cold start: collect once after init, not while botocore loads its models (decision 68).
gc.disable()

from crm_core import lean_imports  # noqa: E402

lean_imports.install()

from crm_core import http, tenant_quota  # noqa: E402
from reports_api import reports, settings  # noqa: E402
from reports_api.context import app, logger, metrics, table, tracer  # noqa: E402

http.install(app, logger)
app.include_router(reports.router)
app.include_router(settings.router)

handler = http.api_handler(app, logger, tracer, metrics, quota=tenant_quota.from_environment(table))

gc.enable()
gc.freeze()
