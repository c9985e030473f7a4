"""campaign_dispatcher: a campaign's send starts here; its audience becomes its recipients,
enqueued in batches for the sender (campaign_dispatcher_consumer/handlers.py)."""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

from typing import Any  # noqa: E402

from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from campaign_dispatcher_consumer import handlers  # noqa: E402, F401 - registers the event handlers
from campaign_dispatcher_consumer.context import consumer, invocation, logger, metrics, tracer  # noqa: E402
from crm_core.runtime import entry  # noqa: E402

gc.enable()
gc.freeze()


@entry(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    invocation.begin(context)
    return consumer.handle(event, context)
