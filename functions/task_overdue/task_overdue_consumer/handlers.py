"""task_overdue: once a day, a TaskOverdue event for every open task whose due time passed.

Each report takes its task out of the overdue watch (GSI4) in the same transaction as its
event (crm_core/activities/store.py, `report_overdue`), so a run that stops anywhere, or
runs twice, reports no task twice. A run that sees its time running out stops between two
tasks and fails: Lambda retries the scheduled event (EventInvokeConfig), and the retry
reports the rest. A run that still cannot finish lands in the DLQ, and the next day's run
reports what is left anyway.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm_core.clock import now_iso
from crm_core.invocation import OutOfTime
from task_overdue_consumer.context import logger, metrics, store

# Stop reporting while this much time is left: enough to finish the task at hand (one
# transaction) and flush logs and metrics, far from the function's timeout.
TIME_RESERVE_MS = 15_000


def report_overdue(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    logger.append_keys(scheduled_time=event.get("time"), rule=(event.get("resources") or [None])[0])
    stopped = False

    def keep_going() -> bool:
        nonlocal stopped
        if context.get_remaining_time_in_millis() > TIME_RESERVE_MS:
            return True
        stopped = True
        return False

    reported = store.report_overdue(now_iso(), keep_going=keep_going)
    metrics.add_metric(name="TasksReportedOverdue", unit=MetricUnit.Count, value=reported)
    if stopped:
        logger.warning("out of time: the retry reports the rest", extra={"reported": reported})
        raise OutOfTime(f"reported {reported} overdue tasks, then ran out of time")
    logger.info("overdue tasks reported", extra={"reported": reported})
    return {"reported": reported}
