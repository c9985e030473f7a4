"""What every invocation of deal_rotting shares, made once per cold start."""

from __future__ import annotations

import os

from crm_core.deals.rot_keeper import RotKeeper
from crm_core.deals.rotting import RotSchedules, RotTarget
from crm_core.events.consumer import EventConsumer
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
schedules = RotSchedules(
    RotTarget(
        group=os.environ["ROT_SCHEDULE_GROUP"],
        function_arn=os.environ["ROT_TARGET_ARN"],
        role_arn=os.environ["ROT_SCHEDULER_ROLE_ARN"],
        dlq_arn=os.environ["ROT_DLQ_ARN"],
    )
)
keeper = RotKeeper(table, schedules)
consumer = EventConsumer("deal_rotting", table, logger)
