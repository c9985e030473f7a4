"""/queues routes: who answers a queue's cases, and how they are assigned."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from cases_api.context import app, mail_domain, namespaces, queue_store, table
from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.campaigns.sender_namespace import namespace
from crm_core.cases.queue_store import to_queue
from crm_core.errors import Conflict
from crm_core.fields import Ulid
from crm_core.pagination import DEFAULT_LIMIT
from crm_core.records.case import Queue, QueueCreate, QueuePage, QueuePatch

router = Router()

QueueId = Annotated[Ulid, Path(description="The queue's id (a ULID).")]
_ONE = http.returns(200, "The queue", Queue)


@router.post(
    "/queues",
    summary="Create a queue",
    description=(
        "With a `mailbox`, email to `<tenant>.<mailbox>@<the stage's mail domain>` (the "
        "queue's `address`) opens cases in it. 409 when another queue has the mailbox, or "
        "another tenant (whose id differs only in case) holds the mail namespace."
    ),
    responses=http.returns(201, "Created", Queue),
)
@http.guard(app, Action.CASE_ADMIN, idempotency=table)
def create_queue(caller: Principal, body: QueueCreate) -> Response[str]:
    if body.mailbox:
        _claim_namespace(caller.tenant_id)
    item = queue_store.create(caller.tenant_id, body, http.origin(app, caller))
    queue = to_queue(item, mail_domain)
    return http.json_response(201, queue, version=queue.version, location=f"/queues/{queue.id}")


@router.get(
    "/queues", summary="List queues by name", responses=http.returns(200, "A page", QueuePage)
)
@http.guard(app, Action.CASE_READ)
def list_queues(
    caller: Principal, limit: http.Limit = DEFAULT_LIMIT, cursor: http.Cursor = None
) -> Response[str]:
    page = queue_store.page(caller.tenant_id, limit, cursor)
    queues = [to_queue(i, mail_domain) for i in page.items]
    return http.json_response(200, QueuePage(items=queues, next_cursor=page.next_cursor))


@router.get("/queues/<queue_id>", summary="Read a queue", responses=_ONE)
@http.guard(app, Action.CASE_READ)
def get_queue(caller: Principal, queue_id: QueueId) -> Response[str]:
    queue = to_queue(queue_store.load(caller.tenant_id, queue_id), mail_domain)
    return http.json_response(200, queue, version=queue.version)


@router.patch(
    "/queues/<queue_id>",
    summary="Change a queue",
    description="Its name, members, assignment policy or mailbox. Cases keep their assignee.",
    responses=_ONE,
)
@http.guard(app, Action.CASE_ADMIN)
def patch_queue(caller: Principal, queue_id: QueueId, body: QueuePatch) -> Response[str]:
    if body.changes().get("mailbox"):
        _claim_namespace(caller.tenant_id)
    item = queue_store.update(
        caller.tenant_id, queue_id, body.changes(), http.if_match(app), http.origin(app, caller)
    )
    queue = to_queue(item, mail_domain)
    return http.json_response(200, queue, version=queue.version)


@router.delete(
    "/queues/<queue_id>",
    summary="Delete a queue",
    description="Refused (409) while the queue holds unsolved cases.",
    responses={204: {"description": "Deleted"}},
)
@http.guard(app, Action.CASE_ADMIN)
def delete_queue(caller: Principal, queue_id: QueueId) -> Response[str]:
    queue_store.delete(caller.tenant_id, queue_id, http.if_match(app))
    return Response(204, None, "")


def _claim_namespace(tenant_id: str) -> None:
    """A mailbox is `<namespace>.<mailbox>@`: the tenant's namespace must be its own (the
    one a campaign sender claims too), or mail to it would reach another tenant's queue."""
    if not namespaces.owns(tenant_id):
        raise Conflict(
            f"the mail namespace {namespace(tenant_id)!r} belongs to another tenant "
            "(tenant ids that differ only in case share one)",
            errors=[{"loc": ["body", "mailbox"], "msg": "the namespace is another tenant's"}],
        )
