"""A re-score job holds its scope until it stalls (crm_core/scoring/jobs.py): the stall
window must outlast every attempt of one run as template.yaml configures lead_scoring, or
a live job's scope would be given to a second job."""

from __future__ import annotations

from datetime import timedelta

from crm_core.scoring.jobs import STALLED_AFTER
from infra.cfn import load_template, resources

# Lambda retries an asynchronous invocation about 1 minute, then 2 minutes, after a failure.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=2))


def test_a_job_is_stalled_only_after_every_attempt_of_a_run() -> None:
    template = load_template()
    props = resources(template)["LeadScoringFunction"]["Properties"]
    timeout = timedelta(seconds=props.get("Timeout", template["Globals"]["Function"]["Timeout"]))
    retries = props["EventInvokeConfig"]["MaximumRetryAttempts"]
    every_attempt = timeout * (1 + retries) + sum(RETRY_DELAYS[:retries], timedelta())
    assert every_attempt < STALLED_AFTER
