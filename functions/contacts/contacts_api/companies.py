"""/companies routes."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from contacts_api.context import app, company_store, contact_store, metrics, table
from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.companies.store import to_company
from crm_core.contacts.store import to_contact
from crm_core.fields import Ulid
from crm_core.pagination import DEFAULT_LIMIT
from crm_core.records.company import (
    Company,
    CompanyCreate,
    CompanyPage,
    CompanyPatch,
    CompanyWithDeals,
)
from crm_core.records.contact import ContactPage

router = Router()

CompanyId = Annotated[Ulid, Path(description="The company's id (a ULID).")]
_ONE = http.returns(200, "The company", Company)


@router.post(
    "/companies",
    summary="Create a company",
    responses=http.returns(201, "Created", Company),
)
@http.guard(app, Action.COMPANY_WRITE, idempotency=table)
def create_company(caller: Principal, body: CompanyCreate) -> Response[str]:
    company = company_store.create(caller.tenant_id, body, http.origin(app, caller))
    metrics.add_metric(name="CompanyCreated", unit=MetricUnit.Count, value=1)
    return http.json_response(
        201, company, version=company.version, location=f"/companies/{company.id}"
    )


@router.get(
    "/companies",
    summary="List companies by name",
    responses=http.returns(200, "A page", CompanyPage),
)
@http.guard(app, Action.COMPANY_READ)
def list_companies(
    caller: Principal,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
    name_prefix: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Response[str]:
    page = company_store.list_by_name(caller.tenant_id, name_prefix, limit, cursor)
    result = CompanyPage(items=[to_company(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)


@router.get(
    "/companies/<company_id>",
    summary="Read a company, with its deals in short",
    responses=http.returns(200, "The company", CompanyWithDeals),
)
@http.guard(app, Action.COMPANY_READ)
def get_company(caller: Principal, company_id: CompanyId) -> Response[str]:
    company = company_store.get_with_deals(caller.tenant_id, company_id)
    return http.json_response(200, company, version=company.version)


@router.patch("/companies/<company_id>", summary="Change a company", responses=_ONE)
@http.guard(app, Action.COMPANY_WRITE)
def patch_company(caller: Principal, company_id: CompanyId, body: CompanyPatch) -> Response[str]:
    company = company_store.update(
        caller.tenant_id, company_id, body.changes(), http.if_match(app), http.origin(app, caller)
    )
    return http.json_response(200, company, version=company.version)


@router.delete(
    "/companies/<company_id>",
    summary="Delete a company without contacts",
    responses={204: {"description": "Deleted"}},
)
@http.guard(app, Action.COMPANY_DELETE)
def delete_company(caller: Principal, company_id: CompanyId) -> Response[str]:
    company_store.delete(caller.tenant_id, company_id, http.if_match(app), http.origin(app, caller))
    metrics.add_metric(name="CompanyDeleted", unit=MetricUnit.Count, value=1)
    return Response(204, None, "")


@router.get(
    "/companies/<company_id>/contacts",
    summary="The contacts of a company",
    responses=http.returns(200, "A page", ContactPage),
)
@http.guard(app, Action.CONTACT_READ)
def company_contacts(
    caller: Principal,
    company_id: CompanyId,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
) -> Response[str]:
    company_store.load(caller.tenant_id, company_id)
    page = contact_store.list_by_company(caller.tenant_id, company_id, limit, cursor)
    result = ContactPage(items=[to_contact(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)
