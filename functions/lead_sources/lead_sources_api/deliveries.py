"""/lead-sources/{id}/deliveries: what a source sent and what became of it, newest first."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.fields import Ulid
from crm_core.leads.models import DeliveryDetail, DeliveryPage, LeadStatus
from crm_core.leads.store import to_delivery
from crm_core.pagination import DEFAULT_LIMIT
from lead_sources_api.context import app, leads, sources
from lead_sources_api.sources import SourceId

router = Router()

LeadId = Annotated[Ulid, Path(description="The lead's id, as the webhook answered it.")]


@router.get(
    "/lead-sources/<source_id>/deliveries",
    summary="A lead source's recent deliveries and their status, newest first",
    responses=http.returns(200, "A page", DeliveryPage),
)
@http.guard(app, Action.LEAD_SOURCE_ADMIN)
def list_deliveries(
    caller: Principal,
    source_id: SourceId,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
    status: Annotated[
        LeadStatus | None,
        Query(description="Only deliveries in this status (accepted, processed, ...)."),
    ] = None,
) -> Response[str]:
    sources.load(caller.tenant_id, source_id)  # another tenant's source is a 404
    page = leads.deliveries(caller.tenant_id, source_id, status, limit, cursor)
    result = DeliveryPage(items=[to_delivery(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)


@router.get(
    "/lead-sources/<source_id>/deliveries/<lead_id>",
    summary="One delivery, with its payload exactly as received",
    responses=http.returns(200, "The delivery", DeliveryDetail),
)
@http.guard(app, Action.LEAD_SOURCE_ADMIN)
def get_delivery(caller: Principal, source_id: SourceId, lead_id: LeadId) -> Response[str]:
    return http.json_response(200, leads.delivery(caller.tenant_id, source_id, lead_id))
