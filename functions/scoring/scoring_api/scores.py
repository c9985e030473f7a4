"""/contacts/{id}/score: a contact's score explained; /scoring/jobs: re-score jobs."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.fields import Ulid
from crm_core.pagination import DEFAULT_LIMIT
from crm_core.scoring.explain import ContactScore, explain
from crm_core.scoring.jobs import JobPage, JobRequest, ScoringJob, to_job
from scoring_api.context import app, jobs, logger, models, table

router = Router()
ContactId = Annotated[Ulid, Path(description="The contact's id (a ULID).")]
JobId = Annotated[Ulid, Path(description="The job's id (a ULID).")]


@router.get(
    "/contacts/<contact_id>/score",
    summary="A contact's score now: its parts, the rules behind it, its last 50 changes",
    responses={
        **http.returns(200, "The score", ContactScore),
        308: {"description": "Merged into the contact named by Location"},
    },
)
@http.guard(app, Action.CONTACT_READ)
def get_score(caller: Principal, contact_id: ContactId) -> Response[str]:
    return http.json_response(200, explain(table, caller.tenant_id, contact_id))


@router.get(
    "/scoring/jobs",
    summary="Re-score jobs, newest first (one per model version)",
    responses=http.returns(200, "A page", JobPage),
)
@http.guard(app, Action.SCORING_READ)
def list_jobs(
    caller: Principal, limit: http.Limit = DEFAULT_LIMIT, cursor: http.Cursor = None
) -> Response[str]:
    page = jobs.list(caller.tenant_id, limit, cursor)
    result = JobPage(items=[to_job(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)


@router.post(
    "/scoring/jobs",
    summary="Re-score contacts with the current model now (admin, marketing)",
    description=(
        "One job per scope runs at a time: while one runs (and moves), asking again answers "
        "it with `200` instead of starting another."
    ),
    responses={
        **http.returns(202, "The job, started", ScoringJob),
        **http.returns(200, "The job of this scope already running", ScoringJob),
    },
)
@http.guard(app, Action.SCORING_WRITE, idempotency=table)
def post_job(caller: Principal, body: JobRequest) -> Response[str]:
    version = models.current(caller.tenant_id).version
    origin = http.origin(app, caller)
    job, started = jobs.request(caller.tenant_id, version, body.scope, origin)
    what = "re-score job requested" if started else "re-score job already running"
    logger.info(what, extra={"job_id": job.id, "scope": job.scope})
    return http.json_response(202 if started else 200, job, location=f"/scoring/jobs/{job.id}")


@router.get(
    "/scoring/jobs/<job_id>",
    summary="A re-score job's progress",
    responses=http.returns(200, "The job", ScoringJob),
)
@http.guard(app, Action.SCORING_READ)
def get_job(caller: Principal, job_id: JobId) -> Response[str]:
    return http.json_response(200, jobs.get(caller.tenant_id, job_id))
