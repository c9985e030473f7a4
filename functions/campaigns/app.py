"""The campaigns function over the HTTP API: segments, email campaigns and the tenant's
email settings."""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

# Powertools' event handler and data classes without their package-wide imports (decision 68).
from crm_core import lean_imports  # noqa: E402

lean_imports.install()

from campaigns_api import campaigns, email_settings, segments  # noqa: E402
from campaigns_api.context import app, logger, metrics, table, tracer  # noqa: E402
from crm_core import http, tenant_quota  # noqa: E402

http.install(app, logger)
app.include_router(segments.router)
app.include_router(campaigns.router)
app.include_router(email_settings.router)

handler = http.api_handler(app, logger, tracer, metrics, quota=tenant_quota.from_environment(table))

gc.enable()
gc.freeze()
