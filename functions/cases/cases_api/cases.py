"""/cases routes: cases, their replies and conversation."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit

from cases_api.attachments import ATTACHMENT_LINK_SECONDS
from cases_api.context import app, attachment_links, case_store, metrics, table
from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.cases.case_store import to_case, to_entry
from crm_core.errors import BadRequest
from crm_core.fields import Ulid, UserId
from crm_core.pagination import DEFAULT_LIMIT
from crm_core.records.case import (
    AttachmentLink,
    Case,
    CaseCreate,
    CasePage,
    CasePatch,
    ConversationEntry,
    ConversationPage,
    Priority,
    ReplyCreate,
    SlaFilter,
    Status,
)

router = Router()

CaseId = Annotated[Ulid, Path(description="The case's id (a ULID).")]
_ONE = http.returns(200, "The case", Case)


@router.post("/cases", summary="Open a case", responses=http.returns(201, "Created", Case))
@http.guard(app, Action.CASE_WRITE, idempotency=table)
def create_case(caller: Principal, body: CaseCreate) -> Response[str]:
    case = case_store.create(caller.tenant_id, body, http.origin(app, caller))
    metrics.add_metric(name="CaseOpened", unit=MetricUnit.Count, value=1)
    return http.json_response(201, case, version=case.version, location=f"/cases/{case.id}")


@router.get(
    "/cases",
    summary="List cases",
    description=(
        "One filter: `status`, `queue_id`, `assignee_id`, `contact_id`, `company_id`, "
        "`priority` (recently updated first), or `sla=breached|at_risk` (the earliest due "
        "first). None: every case, recently updated first."
    ),
    responses=http.returns(200, "A page", CasePage),
)
@http.guard(app, Action.CASE_READ)
def list_cases(
    caller: Principal,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
    status: Annotated[Status | None, Query()] = None,
    queue_id: Annotated[Ulid | None, Query()] = None,
    assignee_id: Annotated[UserId | None, Query()] = None,
    contact_id: Annotated[Ulid | None, Query()] = None,
    company_id: Annotated[Ulid | None, Query()] = None,
    priority: Annotated[Priority | None, Query()] = None,
    sla: Annotated[SlaFilter | None, Query()] = None,
) -> Response[str]:
    filters = {
        k: v
        for k, v in {
            "status": status,
            "queue_id": queue_id,
            "assignee_id": assignee_id,
            "contact_id": contact_id,
            "company_id": company_id,
            "priority": priority,
            "sla": sla,
        }.items()
        if v
    }
    if len(filters) > 1:
        raise BadRequest(f"use one filter at a time, not {', '.join(sorted(filters))}")
    by, value = next(iter(filters.items()), (None, None))
    page = case_store.page(caller.tenant_id, by, value, limit, cursor)
    result = CasePage(items=[to_case(i) for i in page.items], next_cursor=page.next_cursor)
    return http.json_response(200, result)


@router.get("/cases/<case_id>", summary="Read a case", responses=_ONE)
@http.guard(app, Action.CASE_READ)
def get_case(caller: Principal, case_id: CaseId) -> Response[str]:
    case = case_store.get(caller.tenant_id, case_id)
    return http.json_response(200, case, version=case.version)


@router.patch(
    "/cases/<case_id>",
    summary="Change a case",
    description=(
        "Sent fields change, null clears; `attributes` merge. `status` moves as a help desk "
        "allows (a closed case is final); a new `queue_id` without an assignee lets the "
        "queue assign it. If-Match makes the change conditional on the version read."
    ),
    responses=_ONE,
)
@http.guard(app, Action.CASE_WRITE)
def patch_case(caller: Principal, case_id: CaseId, body: CasePatch) -> Response[str]:
    case = case_store.update(
        caller.tenant_id, case_id, body.changes(), http.if_match(app), http.origin(app, caller)
    )
    return http.json_response(200, case, version=case.version)


@router.post(
    "/cases/<case_id>/replies",
    summary="Reply to a case, or add an internal note",
    description=(
        "`public: true` is a reply to the case's contact, emailed to them from the queue's "
        "address (threaded, with a reply address that routes their answer back to the case; "
        "the entry's `message_id` appears once it is sent) and counts as a response for the "
        "SLA; `public: false` is an internal note, never emailed. `status` moves the case "
        "with it."
    ),
    responses=http.returns(201, "The entry", ConversationEntry),
)
@http.guard(app, Action.CASE_WRITE, idempotency=table)
def reply_to_case(caller: Principal, case_id: CaseId, body: ReplyCreate) -> Response[str]:
    case, entry = case_store.reply(caller.tenant_id, case_id, body, http.origin(app, caller))
    metrics.add_metric(name="CaseReplied", unit=MetricUnit.Count, value=1)
    return http.json_response(201, entry, location=f"/cases/{case.id}/conversation")


@router.get(
    "/cases/<case_id>/conversation",
    summary="A case's conversation, oldest first",
    description="Public replies, internal notes and inbound emails.",
    responses=http.returns(200, "A page", ConversationPage),
)
@http.guard(app, Action.CASE_READ)
def case_conversation(
    caller: Principal,
    case_id: CaseId,
    limit: http.Limit = DEFAULT_LIMIT,
    cursor: http.Cursor = None,
) -> Response[str]:
    page = case_store.conversation(caller.tenant_id, case_id, limit, cursor)
    entries = [to_entry(i) for i in page.items]
    return http.json_response(200, ConversationPage(items=entries, next_cursor=page.next_cursor))


EntryId = Annotated[Ulid, Path(description="The conversation entry's id (a ULID).")]
AttachmentIndex = Annotated[
    int, Path(ge=0, lt=100, description="The attachment's place in the entry's `attachments`.")
]


@router.get(
    "/cases/<case_id>/conversation/<entry_id>/attachments/<index>",
    summary="Download an email's attachment",
    description=(
        "A link to the attachment in the mail bucket, valid for "
        f"{ATTACHMENT_LINK_SECONDS // 60} minutes (the file's name and type on the download). "
        "404 for an attachment that was listed but not kept (over the size or count limit)."
    ),
    responses=http.returns(200, "The link", AttachmentLink),
)
@http.guard(app, Action.CASE_READ)
def download_attachment(
    caller: Principal, case_id: CaseId, entry_id: EntryId, index: AttachmentIndex
) -> Response[str]:
    found = case_store.attachment(caller.tenant_id, case_id, entry_id, index)
    link = attachment_links.link(found)
    return http.json_response(200, link)
