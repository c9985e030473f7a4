"""task_overdue: once a day, a TaskOverdue event for every open task whose due time passed
(task_overdue_consumer/handlers.py)."""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

from typing import Any  # noqa: E402

from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from crm_core.runtime import entry  # noqa: E402
from task_overdue_consumer.context import logger, metrics, tracer  # noqa: E402
from task_overdue_consumer.handlers import report_overdue  # noqa: E402

gc.enable()
gc.freeze()


@entry(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return report_overdue(event, context)
