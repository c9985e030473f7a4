"""What every invocation of case_timers shares, made once per cold start."""

from __future__ import annotations

import os

from crm_core.cases.timers import SlaSchedules, TimerKeeper
from crm_core.events.consumer import EventConsumer
from crm_core.runtime import function_runtime
from crm_core.schedules import FunctionTarget

logger, tracer, metrics, settings, table = function_runtime()
schedules = SlaSchedules(
    FunctionTarget(
        group=os.environ["SLA_SCHEDULE_GROUP"],
        function_arn=os.environ["SLA_TARGET_ARN"],
        role_arn=os.environ["SLA_SCHEDULER_ROLE_ARN"],
        dlq_arn=os.environ["SLA_DLQ_ARN"],
    )
)
keeper = TimerKeeper(table, schedules)
consumer = EventConsumer("case_timers", table, logger)
