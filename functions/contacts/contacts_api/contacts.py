"""/contacts routes: parse, authorize, call the store, shape the response."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from contacts_api.context import app, contact_store, metrics, table
from crm_core import http
from crm_core.auth import MARKETING_CONTACT_FIELDS, Action, Principal
from crm_core.contacts.store import to_contact
from crm_core.errors import BadRequest, Forbidden, Unprocessable
from crm_core.fields import Email, Ulid, UserId
from crm_core.normalize import tag as normalize_tag
from crm_core.pagination import DEFAULT_LIMIT
from crm_core.records.contact import (
    Contact,
    ContactCreate,
    ContactPage,
    ContactPatch,
    ContactWithDeals,
    LifecycleStage,
    MergeRequest,
)

router = Router()

ContactId = Annotated[Ulid, Path(description="The contact's id (a ULID).")]
_ONE = http.returns(200, "The contact", Contact)


_CONSENT = (
    "An unsubscribe is the person's: `email_consent` cannot go from `unsubscribed` to "
    "anything else, nor be `subscribed` for an address whose person unsubscribed (a contact "
    "deleted since included): 409 with type `.../unsubscribed`. Only the person's own "
    "opt-in (a lead with consent) subscribes them again."
)


@router.post(
    "/contacts",
    summary="Create a contact",
    description=(
        f"{_CONSENT} Without `email_consent` (or `unknown`), a contact at such an address is "
        "created `unsubscribed`."
    ),
    responses=http.returns(201, "Created", Contact),
)
@http.guard(app, Action.CONTACT_CREATE, idempotency=table)
def create_contact(caller: Principal, body: ContactCreate) -> Response[str]:
    contact = contact_store.create(caller.tenant_id, body, http.origin(app, caller))
    metrics.add_metric(name="ContactCreated", unit=MetricUnit.Count, value=1)
    return http.json_response(
        201, contact, version=contact.version, location=f"/contacts/{contact.id}"
    )


@router.get(
    "/contacts",
    summary="List contacts (one filter at a time)",
    description=(
        "With `lifecycle_stage`, the stage's contacts come highest score first (the score "
        "now, decayed), and `min_score` keeps those at or above it. `sort=-score` says so "
        "explicitly; it needs `lifecycle_stage`. Other filters list newest update first."
    ),
    responses=http.returns(200, "A page", ContactPage),
)
@http.guard(app, Action.CONTACT_READ)
def list_contacts(
    caller: Principal,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
    lifecycle_stage: Annotated[LifecycleStage | None, Query()] = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    owner_id: Annotated[UserId | None, Query()] = None,
    company_id: Annotated[Ulid | None, Query()] = None,
    email: Annotated[Email | None, Query()] = None,
    min_score: Annotated[
        float | None, Query(ge=-1e9, le=1e9, description="With lifecycle_stage: at least this")
    ] = None,
    sort: Annotated[
        Literal["-score"] | None, Query(description="-score: highest score first")
    ] = None,
) -> Response[str]:
    if (min_score is not None or sort) and not lifecycle_stage:
        what = "min_score" if min_score is not None else "sort=-score"
        raise BadRequest(f"{what} needs lifecycle_stage: scores are ranked within a stage")
    filters = {
        k: v
        for k, v in {
            "lifecycle_stage": lifecycle_stage,
            "tag": tag,
            "owner_id": owner_id,
            "company_id": company_id,
            "email": email,
        }.items()
        if v
    }
    if len(filters) > 1:
        raise BadRequest(f"use one filter at a time, not {', '.join(sorted(filters))}")
    tenant = caller.tenant_id
    if email:
        if cursor:
            raise BadRequest("the cursor is not valid for this list")
        items, next_cursor = contact_store.find_by_email(tenant, email), None
    else:
        if lifecycle_stage:
            page = contact_store.list_by_stage(
                tenant, lifecycle_stage.value, limit, cursor, min_score
            )
        elif tag:
            page = contact_store.list_by_tag(tenant, _tag(tag), limit, cursor)
        elif owner_id:
            page = contact_store.list_by_owner(tenant, owner_id, limit, cursor)
        elif company_id:
            page = contact_store.list_by_company(tenant, company_id, limit, cursor)
        else:
            page = contact_store.list_recent(tenant, limit, cursor)
        items, next_cursor = page.items, page.next_cursor
    result = ContactPage(items=[to_contact(i) for i in items], next_cursor=next_cursor)
    return http.json_response(200, result)


@router.get(
    "/contacts/<contact_id>",
    summary="Read a contact, with its deals in short",
    responses={
        **http.returns(200, "The contact", ContactWithDeals),
        308: {"description": "Merged into the contact named by Location"},
    },
)
@http.guard(app, Action.CONTACT_READ)
def get_contact(caller: Principal, contact_id: ContactId) -> Response[str]:
    contact = contact_store.get_with_deals(caller.tenant_id, contact_id)
    return http.json_response(200, contact, version=contact.version)


@router.patch(
    "/contacts/<contact_id>", summary="Change a contact", description=_CONSENT, responses=_ONE
)
# Any signed-in caller: what the role may change depends on what is asked.
@http.guard(app, None)
def patch_contact(caller: Principal, contact_id: ContactId, body: ContactPatch) -> Response[str]:
    changes = body.changes()
    if not caller.can(Action.CONTACT_UPDATE):
        caller.require(Action.CONTACT_UPDATE_MARKETING)
        beyond = sorted(set(changes) - MARKETING_CONTACT_FIELDS)
        if beyond:
            raise Forbidden(
                f"your role may change only tags and email_consent, not {', '.join(beyond)}"
            )
    contact = contact_store.update(
        caller.tenant_id, contact_id, changes, http.if_match(app), http.origin(app, caller)
    )
    metrics.add_metric(name="ContactUpdated", unit=MetricUnit.Count, value=1)
    return http.json_response(200, contact, version=contact.version)


@router.delete(
    "/contacts/<contact_id>",
    summary="Delete a contact",
    responses={204: {"description": "Deleted"}},
)
@http.guard(app, Action.CONTACT_DELETE)
def delete_contact(caller: Principal, contact_id: ContactId) -> Response[str]:
    contact_store.delete(caller.tenant_id, contact_id, http.if_match(app), http.origin(app, caller))
    metrics.add_metric(name="ContactDeleted", unit=MetricUnit.Count, value=1)
    return Response(204, None, "")


@router.post(
    "/contacts/<contact_id>/merge", summary="Merge another contact into this one", responses=_ONE
)
@http.guard(app, Action.CONTACT_MERGE, idempotency=table)
def merge_contact(caller: Principal, contact_id: ContactId, body: MergeRequest) -> Response[str]:
    contact = contact_store.merge(
        caller.tenant_id, contact_id, body.from_id, http.if_match(app), http.origin(app, caller)
    )
    return http.json_response(200, contact, version=contact.version)


def _tag(value: str) -> str:
    try:
        return normalize_tag(value)
    except ValueError as exc:
        raise Unprocessable(str(exc), errors=[{"loc": ["query", "tag"], "msg": str(exc)}]) from None
