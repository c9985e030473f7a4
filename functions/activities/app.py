"""The activities function: a contact's activities and timeline, and tasks, over the HTTP API."""

from __future__ import annotations

import gc

# Cold start: botocore builds many objects while loading service models, and collecting
# them mid-import costs tens of milliseconds. Collect once after init instead
# (docs/decisions.md, "Cold start").
gc.disable()

from typing import Any  # noqa: E402

from aws_lambda_powertools.logging import correlation_paths  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from activities_api import activities, tasks  # noqa: E402
from activities_api.context import app, logger, metrics, tracer  # noqa: E402
from crm_core import http  # noqa: E402

http.install(app, logger)
app.include_router(activities.router)
app.include_router(tasks.router)

gc.enable()
gc.freeze()


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(**http.log_keys(event))
    refused = http.screen(event)
    if refused is not None:
        return http.raw_response(refused)
    response: dict[str, Any] = app.resolve(event, context)
    return response
