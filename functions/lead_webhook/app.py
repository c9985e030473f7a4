"""The lead_webhook function: `POST /webhooks/leads/{source_id}`, with no authorizer.

It verifies the delivery's signature itself (crm_core/leads/intake.py), stores the raw
payload with its LeadReceived event in one write, and answers `202 {"lead_id"}`. It is a
plain handler, not a Powertools resolver: one route needs no router, and the resolver's
imports would add to every cold start a sender waits for.
"""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

from typing import Any  # noqa: E402

from aws_lambda_powertools.logging import correlation_paths  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from crm_core.runtime import entry  # noqa: E402
from lead_webhook_api.context import intake, logger, metrics, table, tracer  # noqa: E402, F401
from lead_webhook_api.delivery import deliver  # noqa: E402

gc.enable()
gc.freeze()


@entry(logger, tracer, metrics, correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return deliver(event)
