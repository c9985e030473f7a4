"""/tasks: the tenant's tasks, or one assignee's, by due time."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from activities_api.context import activity_store, app
from crm_core import http
from crm_core.activities.models import Moment, TaskPage, TaskStatus
from crm_core.activities.store import to_activity
from crm_core.auth import Action, Principal
from crm_core.fields import UserId
from crm_core.pagination import DEFAULT_LIMIT

router = Router()

ME = "me"


@router.get(
    "/tasks",
    summary="Tasks in one status, earliest due first",
    responses=http.returns(200, "A page", TaskPage),
)
@http.guard(app, Action.ACTIVITY_READ)
def list_tasks(
    caller: Principal,
    assignee: Annotated[
        UserId | None,
        Query(description="`me` (the caller) or a user id; all of the tenant's tasks if absent."),
    ] = None,
    status: Annotated[TaskStatus, Query(description="open (default), completed or cancelled.")] = (
        TaskStatus.OPEN
    ),
    due_after: Annotated[
        Moment | None, Query(description="Due at or after this time (ISO 8601 with a zone).")
    ] = None,
    due_before: Annotated[
        Moment | None, Query(description="Due before this time (ISO 8601 with a zone).")
    ] = None,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
) -> Response[str]:
    assignee_id = caller.user_id if assignee == ME else assignee
    page = activity_store.tasks(
        caller.tenant_id, assignee_id, status, limit, cursor, due_after, due_before
    )
    result = TaskPage(items=[to_activity(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)
