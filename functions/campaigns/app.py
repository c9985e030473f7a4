"""The campaigns function over the HTTP API: segments (campaigns come next, issue 8)."""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

from campaigns_api import segments  # noqa: E402
from campaigns_api.context import app, logger, metrics, tracer  # noqa: E402
from crm_core import http  # noqa: E402

http.install(app, logger)
app.include_router(segments.router)

handler = http.api_handler(app, logger, tracer, metrics)

gc.enable()
gc.freeze()
