"""/pipelines routes: a tenant's pipelines and their boards."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.deals.board import MAX_DEALS_PER_STAGE, Board
from crm_core.deals.pipeline_models import Pipeline, PipelineBody, PipelinePage, PipelinePatch
from crm_core.deals.pipeline_store import to_pipeline
from crm_core.pagination import DEFAULT_LIMIT
from crm_core.records.deal import PipelineId
from deals_api.context import app, boards, pipeline_store, table

router = Router()

PipelinePath = Annotated[PipelineId, Path(description="The pipeline's id (a ULID), or `default`.")]
_ONE = http.returns(200, "The pipeline", Pipeline)


@router.post(
    "/pipelines",
    summary="Create a pipeline",
    responses=http.returns(201, "Created", Pipeline),
)
@http.guard(app, Action.PIPELINE_ADMIN, idempotency=table)
def create_pipeline(caller: Principal, body: PipelineBody) -> Response[str]:
    pipeline = pipeline_store.create(caller.tenant_id, body, http.origin(app, caller))
    return http.json_response(
        201, pipeline, version=pipeline.version, location=f"/pipelines/{pipeline.id}"
    )


@router.get(
    "/pipelines",
    summary="List pipelines, the default one first",
    responses=http.returns(200, "A page", PipelinePage),
)
@http.guard(app, Action.DEAL_READ)
def list_pipelines(
    caller: Principal, limit: http.Limit = DEFAULT_LIMIT, cursor: http.Cursor = None
) -> Response[str]:
    page = pipeline_store.page(caller.tenant_id, limit, cursor)
    result = PipelinePage(items=[to_pipeline(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)


@router.get("/pipelines/<pipeline_id>", summary="Read a pipeline", responses=_ONE)
@http.guard(app, Action.DEAL_READ)
def get_pipeline(caller: Principal, pipeline_id: PipelinePath) -> Response[str]:
    pipeline = pipeline_store.get(caller.tenant_id, pipeline_id)
    return http.json_response(200, pipeline, version=pipeline.version)


@router.patch(
    "/pipelines/<pipeline_id>",
    summary="Rename a pipeline or change its stages",
    description=(
        "`stages` replaces the list: a stage kept keeps its id, a stage left out is removed "
        "(a `409` while it holds deals). New probabilities and categories weigh the forecast "
        "from now on; the forecast of earlier moments (`as_of`) is unchanged."
    ),
    responses=_ONE,
)
@http.guard(app, Action.PIPELINE_ADMIN)
def patch_pipeline(
    caller: Principal, pipeline_id: PipelinePath, body: PipelinePatch
) -> Response[str]:
    pipeline = pipeline_store.update(
        caller.tenant_id,
        pipeline_id,
        body.model_dump(mode="json", include=body.model_fields_set),
        http.if_match(app),
        http.origin(app, caller),
    )
    return http.json_response(200, pipeline, version=pipeline.version)


@router.delete(
    "/pipelines/<pipeline_id>",
    summary="Delete a pipeline without deals",
    responses={204: {"description": "Deleted"}},
)
@http.guard(app, Action.PIPELINE_ADMIN)
def delete_pipeline(caller: Principal, pipeline_id: PipelinePath) -> Response[str]:
    pipeline_store.delete(
        caller.tenant_id, pipeline_id, http.if_match(app), http.origin(app, caller)
    )
    return Response(204, None, "")


@router.get(
    "/pipelines/<pipeline_id>/board",
    summary="The pipeline's board",
    description=(
        "Per stage: the count of its deals, their sum per currency and in the base currency, "
        "and the first deals by close date (`limit` per stage)."
    ),
    responses=http.returns(200, "The board", Board),
)
@http.guard(app, Action.DEAL_READ)
def get_board(
    caller: Principal,
    pipeline_id: PipelinePath,
    limit: Annotated[
        int, Query(ge=0, le=MAX_DEALS_PER_STAGE, description="Deals shown per stage, 0 to 50.")
    ] = 10,
) -> Response[str]:
    return http.json_response(200, boards.board(caller.tenant_id, pipeline_id, limit))
