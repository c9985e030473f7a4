"""/contacts/{id}/activities, /contacts/{id}/timeline and /deals/{id}/timeline: parse,
authorize, call the store, shape the response."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit

from activities_api.context import activity_store, app, metrics, table
from crm_core import http
from crm_core.activities import models
from crm_core.activities.models import (
    ActivityCreate,
    ActivityPage,
    ActivityPatch,
    ActivityType,
    Moment,
    fields_of,
)
from crm_core.activities.store import Editor, TimeRange, to_activity
from crm_core.auth import Action, Principal, Role
from crm_core.dynamo import Item
from crm_core.fields import Ulid
from crm_core.pagination import DEFAULT_LIMIT

router = Router()

ContactId = Annotated[Ulid, Path(description="The contact's id (a ULID).")]
ActivityId = Annotated[Ulid, Path(description="The activity's id (a ULID).")]
DealId = Annotated[Ulid, Path(description="The deal's id (a ULID).")]
# A union (discriminated on `type`) is not a model: Powertools needs Body() to read it there.
NewActivity = Annotated[ActivityCreate, Body(description="The activity; `type` says which.")]


def _activity_schema() -> dict[str, Any]:
    """The union of activity types, for the document. Written as a schema, not a model:
    Powertools matches a response model by identity, which an Annotated union loses, and a
    RootModel of the union would build its validator at every cold start. The members'
    schemas are the document's components (the timeline's page refers to them all)."""
    (union, *_) = get_args(models.Activity)
    members = get_args(union)
    refs = {get_args(m.model_fields["type"].annotation)[0]: m.__name__ for m in members}
    return {
        "oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in refs.values()],
        "discriminator": {
            "propertyName": "type",
            "mapping": {t: f"#/components/schemas/{name}" for t, name in refs.items()},
        },
    }


_ACTIVITY = _activity_schema()


def _returns(status: int, description: str) -> dict[int, OpenAPIResponse]:
    return {status: {"description": description, "content": {http.JSON: {"schema": _ACTIVITY}}}}


_ONE = _returns(200, "The activity")
_MERGED = {308: OpenAPIResponse(description="The contact was merged: see Location")}


@router.post(
    "/contacts/<contact_id>/activities",
    summary="Log an activity on a contact (call, email, meeting, note or task)",
    responses=_returns(201, "Logged"),
)
@http.guard(app, Action.ACTIVITY_WRITE, idempotency=table)
def log_activity(caller: Principal, contact_id: ContactId, body: NewActivity) -> Response[str]:
    item = activity_store.log(
        caller.tenant_id,
        contact_id,
        ActivityType(body.type),
        fields_of(body),
        body.occurred_at,
        http.origin(app, caller),
        deal_id=body.deal_id,
    )
    metrics.add_metric(name="ActivityLogged", unit=MetricUnit.Count, value=1)
    return _one(201, item, location=f"/contacts/{contact_id}/activities/{item['id']}")


@router.get(
    "/contacts/<contact_id>/activities/<activity_id>",
    summary="Read an activity",
    responses={**_ONE, **_MERGED},
)
@http.guard(app, Action.ACTIVITY_READ)
def get_activity(
    caller: Principal, contact_id: ContactId, activity_id: ActivityId
) -> Response[str]:
    return _one(200, activity_store.get(caller.tenant_id, contact_id, activity_id))


@router.patch(
    "/contacts/<contact_id>/activities/<activity_id>",
    summary="Change an activity (its author or an admin; a task's assignee: its status)",
    responses=_ONE,
)
@http.guard(app, Action.ACTIVITY_WRITE)
def patch_activity(
    caller: Principal, contact_id: ContactId, activity_id: ActivityId, body: ActivityPatch
) -> Response[str]:
    item = activity_store.update(
        caller.tenant_id,
        contact_id,
        activity_id,
        body.changes(),
        http.if_match(app),
        _editor(caller),
        http.origin(app, caller),
    )
    metrics.add_metric(name="ActivityUpdated", unit=MetricUnit.Count, value=1)
    return _one(200, item)


@router.delete(
    "/contacts/<contact_id>/activities/<activity_id>",
    summary="Delete an activity (its author or an admin)",
    responses={204: {"description": "Deleted"}},
)
@http.guard(app, Action.ACTIVITY_WRITE)
def delete_activity(
    caller: Principal, contact_id: ContactId, activity_id: ActivityId
) -> Response[str]:
    activity_store.delete(
        caller.tenant_id,
        contact_id,
        activity_id,
        http.if_match(app),
        _editor(caller),
        http.origin(app, caller),
    )
    metrics.add_metric(name="ActivityDeleted", unit=MetricUnit.Count, value=1)
    return Response(204, None, "")


@router.get(
    "/contacts/<contact_id>/timeline",
    summary="A contact's activities, newest first",
    responses={**http.returns(200, "A page", ActivityPage), **_MERGED},
)
@http.guard(app, Action.ACTIVITY_READ)
def timeline(
    caller: Principal,
    contact_id: ContactId,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
    type: Annotated[
        list[ActivityType] | None,
        Query(
            description="Only these types: comma-separated (`call,email`) or repeated.",
            max_length=len(ActivityType),
        ),
    ] = None,
    since: Annotated[
        Moment | None,
        Query(description="Activities at or after this time (ISO 8601 with a zone)."),
    ] = None,
    until: Annotated[
        Moment | None,
        Query(description="Activities before this time (ISO 8601 with a zone)."),
    ] = None,
) -> Response[str]:
    page = activity_store.timeline(
        caller.tenant_id, contact_id, limit, cursor, type or (), TimeRange(since, until)
    )
    result = ActivityPage(items=[to_activity(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)


@router.get(
    "/deals/<deal_id>/timeline",
    summary="A deal's activities (those that name it), newest first",
    description=(
        "The activities logged with this `deal_id`, on any of its contacts. A deal you do "
        "not have is 404; a deleted deal keeps its timeline, as it keeps its history."
    ),
    responses=http.returns(200, "A page", ActivityPage),
)
@http.guard(app, Action.ACTIVITY_READ)
def deal_timeline(
    caller: Principal,
    deal_id: DealId,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
) -> Response[str]:
    page = activity_store.deal_timeline(caller.tenant_id, deal_id, limit, cursor)
    result = ActivityPage(items=[to_activity(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)


def _one(status: int, item: Item, *, location: str | None = None) -> Response[str]:
    activity: Any = to_activity(item)
    return http.json_response(status, activity, version=item["version"], location=location)


def _editor(caller: Principal) -> Editor:
    return Editor(caller.user_id, is_admin=Role.ADMIN in caller.roles)
