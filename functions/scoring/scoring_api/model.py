"""/scoring/model: the tenant's scoring model, read by everyone, set by admins and marketing."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit

from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.scoring.models import ScoringModel, ScoringModelInput
from scoring_api.context import app, logger, metrics, models

router = Router()


@router.get(
    "/scoring/model",
    summary="The scoring model (the current version, or `?version=` a past one)",
    responses=http.returns(200, "The model", ScoringModel),
)
@http.guard(app, Action.SCORING_READ)
def get_model(
    caller: Principal,
    version: Annotated[
        int | None,
        Query(ge=0, le=10**9, description="A past version; 0 is the default model."),
    ] = None,
) -> Response[str]:
    if version is None:
        model = models.current(caller.tenant_id)
    else:
        model = models.version(caller.tenant_id, version)
    return http.json_response(200, model, version=model.version)


@router.put(
    "/scoring/model",
    summary="Replace the scoring model: a new version (admin, marketing)",
    responses=http.returns(200, "The new version", ScoringModel),
)
@http.guard(app, Action.SCORING_WRITE)
def put_model(caller: Principal, body: ScoringModelInput) -> Response[str]:
    model = models.replace(caller.tenant_id, body, http.if_match(app), http.origin(app, caller))
    metrics.add_metric(name="ScoringModelChanged", unit=MetricUnit.Count, value=1)
    logger.info("scoring model changed", extra={"version": model.version})
    return http.json_response(200, model, version=model.version)
