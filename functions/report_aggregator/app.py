"""report_aggregator: the report aggregates follow the records they count
(report_aggregator_consumer/handlers.py)."""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

from typing import Any  # noqa: E402

from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from crm_core.runtime import entry  # noqa: E402
from report_aggregator_consumer import handlers  # noqa: E402, F401 - registers the event handlers
from report_aggregator_consumer.context import consumer, logger, metrics, tracer  # noqa: E402

gc.enable()
gc.freeze()


@entry(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return consumer.handle(event, context)
