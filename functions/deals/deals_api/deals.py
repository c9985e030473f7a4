"""/deals routes: deals, their history."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.deals.deal_store import to_deal
from crm_core.errors import BadRequest
from crm_core.fields import Ulid, UserId
from crm_core.pagination import DEFAULT_LIMIT
from crm_core.records.deal import (
    DEFAULT_PIPELINE,
    Deal,
    DealCreate,
    DealPage,
    DealPatch,
    HistoryEntry,
    HistoryPage,
    PipelineId,
    StageRef,
)
from deals_api.context import app, deal_store, metrics, pipeline_store, table

router = Router()

DealId = Annotated[Ulid, Path(description="The deal's id (a ULID).")]
_ONE = http.returns(200, "The deal", Deal)


@router.post("/deals", summary="Create a deal", responses=http.returns(201, "Created", Deal))
@http.guard(app, Action.DEAL_WRITE, idempotency=table)
def create_deal(caller: Principal, body: DealCreate) -> Response[str]:
    deal = deal_store.create(caller.tenant_id, body, http.origin(app, caller))
    metrics.add_metric(name="DealCreated", unit=MetricUnit.Count, value=1)
    return http.json_response(201, deal, version=deal.version, location=f"/deals/{deal.id}")


@router.get(
    "/deals",
    summary="List deals by close date",
    description=(
        "One filter: `pipeline_id` (alone, or with `stage_id`: that stage's deals), "
        "`stage_id` (of the default pipeline without `pipeline_id`), `owner_id`, "
        "`company_id`, `contact_id` or `status`. None: the default pipeline's deals."
    ),
    responses=http.returns(200, "A page", DealPage),
)
@http.guard(app, Action.DEAL_READ)
def list_deals(
    caller: Principal,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
    pipeline_id: Annotated[PipelineId | None, Query()] = None,
    stage_id: Annotated[StageRef | None, Query()] = None,
    owner_id: Annotated[UserId | None, Query()] = None,
    company_id: Annotated[Ulid | None, Query()] = None,
    contact_id: Annotated[Ulid | None, Query()] = None,
    status: Annotated[str | None, Query(pattern="^(open|won|lost)$")] = None,
) -> Response[str]:
    filters = {
        k: v
        for k, v in {
            "stage_id": stage_id,
            "owner_id": owner_id,
            "company_id": company_id,
            "contact_id": contact_id,
            "status": status,
        }.items()
        if v
    }
    if len(filters) > 1 or (pipeline_id and filters and not stage_id):
        named = sorted([*filters, *(["pipeline_id"] if pipeline_id else [])])
        raise BadRequest(f"use one filter at a time, not {', '.join(named)}")
    by, value = next(iter(filters.items()), (None, None))
    if pipeline_id:
        pipeline_store.load(caller.tenant_id, pipeline_id)  # a 404 for one the tenant lacks
    page = deal_store.page(
        caller.tenant_id, by, value, limit, cursor, pipeline_id or DEFAULT_PIPELINE
    )
    result = DealPage(items=[to_deal(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)


@router.get("/deals/<deal_id>", summary="Read a deal", responses=_ONE)
@http.guard(app, Action.DEAL_READ)
def get_deal(caller: Principal, deal_id: DealId) -> Response[str]:
    deal = deal_store.get(caller.tenant_id, deal_id)
    return http.json_response(200, deal, version=deal.version)


@router.patch(
    "/deals/<deal_id>",
    summary="Change or move a deal",
    description=(
        "Sent fields change, null clears; `attributes` merge. A new `stage_id` moves the "
        "deal (its status is its stage's kind: a lost stage needs `lost_reason`). "
        "If-Match makes the change conditional on the version read."
    ),
    responses=_ONE,
)
@http.guard(app, Action.DEAL_WRITE)
def patch_deal(caller: Principal, deal_id: DealId, body: DealPatch) -> Response[str]:
    deal = deal_store.update(
        caller.tenant_id, deal_id, body.changes(), http.if_match(app), http.origin(app, caller)
    )
    return http.json_response(200, deal, version=deal.version)


@router.delete(
    "/deals/<deal_id>", summary="Delete a deal", responses={204: {"description": "Deleted"}}
)
@http.guard(app, Action.DEAL_WRITE)
def delete_deal(caller: Principal, deal_id: DealId) -> Response[str]:
    deal_store.delete(caller.tenant_id, deal_id, http.if_match(app), http.origin(app, caller))
    metrics.add_metric(name="DealDeleted", unit=MetricUnit.Count, value=1)
    return Response(204, None, "")


@router.get(
    "/deals/<deal_id>/history",
    summary="A deal's changes, newest first",
    description="Every change of stage, amount, currency, close date, owner, status and the "
    "deal's other fields, with who and when, written with the change itself.",
    responses=http.returns(200, "A page", HistoryPage),
)
@http.guard(app, Action.DEAL_READ)
def deal_history(
    caller: Principal,
    deal_id: DealId,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
) -> Response[str]:
    page = deal_store.history(caller.tenant_id, deal_id, limit, cursor)
    entries = [HistoryEntry.model_validate(i) for i in page.items]
    return http.json_response(200, HistoryPage(items=entries, next_cursor=page.next_cursor))
