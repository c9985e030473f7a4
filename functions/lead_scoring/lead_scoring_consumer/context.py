"""What every invocation of lead_scoring shares, made once per cold start."""

from __future__ import annotations

from crm_core.events.consumer import EventConsumer
from crm_core.invocation import Invocation
from crm_core.runtime import function_runtime
from crm_core.scoring.jobs import JobStore
from crm_core.scoring.rescore import Rescorer
from crm_core.scoring.scorer import PRODUCER, Scorer

logger, tracer, metrics, settings, table = function_runtime()
scorer = Scorer(table)
jobs = JobStore(table)
rescorer = Rescorer(table, scorer)
consumer = EventConsumer(PRODUCER, table, logger)
invocation = Invocation(default_ms=60_000)  # a job run stops when time runs low
