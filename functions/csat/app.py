"""The satisfaction function: `GET` and `POST /csat?token=...`, with no authorizer.

The signed token of the solved email's link (crm_core/cases/csat_tokens.py) is the only
authority: it names the tenant and the case, and nothing else in the request does. A plain
handler, as unsubscribe is: two routes need no resolver (csat_api/).
"""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

from typing import Any  # noqa: E402

from aws_lambda_powertools.logging import correlation_paths  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from crm_core.runtime import entry  # noqa: E402
from csat_api.context import logger, metrics, ratings, table, token_key, tracer  # noqa: E402, F401
from csat_api.routes import answer  # noqa: E402

gc.enable()
gc.freeze()


@entry(logger, tracer, metrics, correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return answer(event)
