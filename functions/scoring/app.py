"""The scoring function: the tenant's scoring model over the HTTP API."""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

from crm_core import http  # noqa: E402
from scoring_api import model  # noqa: E402
from scoring_api.context import app, logger, metrics, tracer  # noqa: E402

http.install(app, logger)
app.include_router(model.router)

handler = http.api_handler(app, logger, tracer, metrics)

gc.enable()
gc.freeze()
