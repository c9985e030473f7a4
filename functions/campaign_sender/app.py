"""campaign_sender: the send queue's messages, each up to 50 recipients of one campaign,
mailed through SES at the stage's rate (campaign_sender_consumer/handlers.py)."""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

# Powertools' event handler and data classes without their package-wide imports (decision 68).
from crm_core import lean_imports  # noqa: E402

lean_imports.install()

from typing import Any  # noqa: E402

from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from campaign_sender_consumer.context import logger, metrics, tracer  # noqa: E402
from campaign_sender_consumer.handlers import handle_batch  # noqa: E402
from crm_core.runtime import entry  # noqa: E402

gc.enable()
gc.freeze()


@entry(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return handle_batch(event, context)
