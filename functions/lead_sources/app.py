"""The lead_sources function: lead sources, their secrets and deliveries, over the HTTP API."""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

# Powertools' event handler and data classes without their package-wide imports (decision 68).
from crm_core import lean_imports  # noqa: E402

lean_imports.install()

from crm_core import http, tenant_quota  # noqa: E402
from lead_sources_api import deliveries, sources  # noqa: E402
from lead_sources_api.context import app, logger, metrics, table, tracer  # noqa: E402

http.install(app, logger)
app.include_router(sources.router)
app.include_router(deliveries.router)

handler = http.api_handler(app, logger, tracer, metrics, quota=tenant_quota.from_environment(table))

gc.enable()
gc.freeze()
