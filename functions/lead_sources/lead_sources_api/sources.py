"""/lead-sources: create (the secret shown once), list, read, change, disable, rotate."""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.metrics import MetricUnit

from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.dynamo import Item
from crm_core.fields import Ulid
from crm_core.leads.models import (
    LeadSource,
    LeadSourceCreate,
    LeadSourcePage,
    LeadSourcePatch,
    LeadSourceWithSecret,
)
from crm_core.leads.sources import to_source
from crm_core.pagination import DEFAULT_LIMIT
from lead_sources_api.context import app, logger, metrics, sources, table

router = Router()

SourceId = Annotated[Ulid, Path(description="The lead source's id (a ULID).")]


def _without_secret(body: str) -> str:
    """What an Idempotency-Key replay answers: the same source, without its secret."""
    shown: dict[str, Any] = json.loads(body)
    shown["secret"] = None
    return json.dumps(shown)


@router.post(
    "/lead-sources",
    summary="Create a lead source; its signing secret is in this answer only",
    responses=http.returns(201, "Created, with its secret", LeadSourceWithSecret),
)
@http.guard(app, Action.LEAD_SOURCE_ADMIN, idempotency=table, redact=_without_secret)
def create_source(caller: Principal, body: LeadSourceCreate) -> Response[str]:
    item, secret = sources.create(caller.tenant_id, body, caller.user_id)
    metrics.add_metric(name="LeadSourceCreated", unit=MetricUnit.Count, value=1)
    logger.info("lead source created", extra={"source_id": item["id"]})
    return _with_secret(201, item, secret, location=f"/lead-sources/{item['id']}")


@router.get(
    "/lead-sources",
    summary="The tenant's lead sources, oldest first",
    responses=http.returns(200, "A page", LeadSourcePage),
)
@http.guard(app, Action.LEAD_SOURCE_ADMIN)
def list_sources(
    caller: Principal, limit: http.Limit = DEFAULT_LIMIT, cursor: http.Cursor = None
) -> Response[str]:
    page = sources.list_page(caller.tenant_id, limit, cursor)
    result = LeadSourcePage(items=[to_source(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)


@router.get(
    "/lead-sources/<source_id>",
    summary="Read a lead source (never its secret)",
    responses=http.returns(200, "The lead source", LeadSource),
)
@http.guard(app, Action.LEAD_SOURCE_ADMIN)
def get_source(caller: Principal, source_id: SourceId) -> Response[str]:
    return _one(200, sources.load(caller.tenant_id, source_id))


@router.patch(
    "/lead-sources/<source_id>",
    summary="Change a lead source's name, field map, default tags or default owner",
    responses=http.returns(200, "The lead source", LeadSource),
)
@http.guard(app, Action.LEAD_SOURCE_ADMIN)
def patch_source(caller: Principal, source_id: SourceId, body: LeadSourcePatch) -> Response[str]:
    item = sources.update(caller.tenant_id, source_id, body.changes(), http.if_match(app))
    return _one(200, item)


@router.delete(
    "/lead-sources/<source_id>",
    summary="Disable a lead source: its deliveries are refused from now on, its log is kept",
    responses={204: {"description": "Disabled (or already disabled)"}},
)
@http.guard(app, Action.LEAD_SOURCE_ADMIN)
def disable_source(caller: Principal, source_id: SourceId) -> Response[str]:
    sources.disable(caller.tenant_id, source_id, http.if_match(app))
    logger.info("lead source disabled", extra={"source_id": source_id})
    return Response(204, None, "")


@router.post(
    "/lead-sources/<source_id>/rotate-secret",
    summary="A new secret, shown once; the previous one still works for 24 hours",
    responses=http.returns(200, "The lead source, with its new secret", LeadSourceWithSecret),
)
@http.guard(app, Action.LEAD_SOURCE_ADMIN, idempotency=table, redact=_without_secret)
def rotate_secret(caller: Principal, source_id: SourceId) -> Response[str]:
    item, secret = sources.rotate(caller.tenant_id, source_id, http.if_match(app))
    metrics.add_metric(name="LeadSourceSecretRotated", unit=MetricUnit.Count, value=1)
    logger.info("lead source secret rotated", extra={"source_id": source_id})
    return _with_secret(200, item, secret)


def _one(status: int, item: Item) -> Response[str]:
    return http.json_response(status, to_source(item), version=item["version"])


def _with_secret(
    status: int, item: Item, secret: str, *, location: str | None = None
) -> Response[str]:
    shown = LeadSourceWithSecret.model_validate({**to_source(item).model_dump(), "secret": secret})
    return http.json_response(status, shown, version=item["version"], location=location)
