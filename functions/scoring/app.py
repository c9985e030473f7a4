"""The scoring function over the HTTP API: the tenant's scoring model, a contact's score
explained, and the progress of re-score jobs."""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

# Powertools' event handler and data classes without their package-wide imports (decision 68).
from crm_core import lean_imports  # noqa: E402

lean_imports.install()

from crm_core import http, tenant_quota  # noqa: E402
from scoring_api import model, scores  # noqa: E402
from scoring_api.context import app, logger, metrics, table, tracer  # noqa: E402

http.install(app, logger)
app.include_router(model.router)
app.include_router(scores.router)

handler = http.api_handler(app, logger, tracer, metrics, quota=tenant_quota.from_environment(table))

gc.enable()
gc.freeze()
