"""/segments: define, list, read, change and delete segments; preview who is in one now."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.metrics import MetricUnit

from campaigns_api.context import app, audience, logger, metrics, segments, table
from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.campaigns.segment_store import to_segment
from crm_core.campaigns.segments import (
    Segment,
    SegmentCreate,
    SegmentFilter,
    SegmentPage,
    SegmentPatch,
    SegmentPreview,
)
from crm_core.contacts.store import to_contact
from crm_core.fields import Ulid
from crm_core.pagination import DEFAULT_LIMIT

router = Router()
SegmentId = Annotated[Ulid, Path(description="The segment's id (a ULID).")]


@router.post(
    "/segments",
    summary="Define a segment (admin, marketing)",
    responses=http.returns(201, "Created", Segment),
)
@http.guard(app, Action.CAMPAIGN_WRITE, idempotency=table)
def create_segment(caller: Principal, body: SegmentCreate) -> Response[str]:
    segment = segments.create(caller.tenant_id, body, http.origin(app, caller))
    metrics.add_metric(name="SegmentCreated", unit=MetricUnit.Count, value=1)
    logger.info("segment created", extra={"segment_id": segment.id})
    return http.json_response(
        201, segment, version=segment.version, location=f"/segments/{segment.id}"
    )


@router.get(
    "/segments",
    summary="The tenant's segments, newest first",
    responses=http.returns(200, "A page", SegmentPage),
)
@http.guard(app, Action.CAMPAIGN_READ)
def list_segments(
    caller: Principal, limit: http.Limit = DEFAULT_LIMIT, cursor: http.Cursor = None
) -> Response[str]:
    page = segments.list(caller.tenant_id, limit, cursor)
    result = SegmentPage(items=[to_segment(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)


@router.get(
    "/segments/<segment_id>",
    summary="Read a segment",
    responses=http.returns(200, "The segment", Segment),
)
@http.guard(app, Action.CAMPAIGN_READ)
def get_segment(caller: Principal, segment_id: SegmentId) -> Response[str]:
    segment = to_segment(segments.load(caller.tenant_id, segment_id))
    return http.json_response(200, segment, version=segment.version)


@router.patch(
    "/segments/<segment_id>",
    summary="Change a segment's name, description or filter (admin, marketing)",
    responses=http.returns(200, "The segment", Segment),
)
@http.guard(app, Action.CAMPAIGN_WRITE)
def patch_segment(caller: Principal, segment_id: SegmentId, body: SegmentPatch) -> Response[str]:
    segment = segments.update(
        caller.tenant_id, segment_id, body.changes(), http.if_match(app), http.origin(app, caller)
    )
    return http.json_response(200, segment, version=segment.version)


@router.delete(
    "/segments/<segment_id>",
    summary="Delete a segment (admin, marketing)",
    responses={204: {"description": "Deleted"}},
)
@http.guard(app, Action.CAMPAIGN_WRITE)
def delete_segment(caller: Principal, segment_id: SegmentId) -> Response[str]:
    segments.delete(caller.tenant_id, segment_id, http.if_match(app), http.origin(app, caller))
    logger.info("segment deleted", extra={"segment_id": segment_id})
    return Response(204, None, "")


@router.get(
    "/segments/<segment_id>/preview",
    summary="Who is in the segment now: how many, and the first 10",
    responses=http.returns(200, "The preview", SegmentPreview),
)
@http.guard(app, Action.CAMPAIGN_READ)
def preview_segment(caller: Principal, segment_id: SegmentId) -> Response[str]:
    item = segments.load(caller.tenant_id, segment_id)
    found = audience.preview(caller.tenant_id, SegmentFilter.model_validate(item["filter"]))
    result = SegmentPreview(
        count=found.count,
        complete=found.complete,
        sample=[to_contact(c).model_dump(mode="json") for c in found.sample],
        index=found.index,
        contacts_read=found.read,
    )
    return http.json_response(200, result)
