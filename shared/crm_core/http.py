"""The HTTP edge shared by API functions: problem+json errors, auth, ETags, body limits."""

from __future__ import annotations

import base64
import functools
import inspect
import json
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from crm_core import idempotency, strict_json
from crm_core.auth import Action, Principal, principal_from_claims
from crm_core.errors import (
    BadRequest,
    CrmError,
    Moved,
    PayloadTooLarge,
    Unprocessable,
    UnsupportedMediaType,
)
from crm_core.events.envelope import Origin
from crm_core.pagination import MAX_LIMIT
from crm_core.problems import PROBLEM_JSON, problem_body
from crm_core.table import Table
from crm_core.tenant_quota import TenantQuota, TenantThrottled

# Query parameters every list route takes (PRODUCT.md: lists).
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size, 1 to 100.")]
# No max_length here: an over-long cursor is malformed, and a malformed cursor is a 400
# (crm_core.pagination refuses it), not a 422.
Cursor = Annotated[str | None, Query(description="From `next_cursor`, exactly as given.")]

JSON = "application/json"
MAX_BODY_BYTES = 64 * 1024
# The header's value as the OpenAPI document's pattern gives it (scripts/generate_openapi.py):
# spaces around are HTTP's optional whitespace; digits are ASCII ones (`\\d` takes "٣").
_IF_MATCH_RE = re.compile(r'^ *(?:(\*)|(?:W/)?"([0-9]{1,12})") *$')


def problem(status: int, title: str, detail: str, slug: str, **extra: Any) -> Response[str]:
    body = problem_body(status, title, detail, slug, **extra)
    headers: dict[str, str] = {}
    return Response(status, PROBLEM_JSON, json.dumps(body, default=str), headers)


def error_response(error: CrmError) -> Response[str]:
    extra = dict(error.extra)
    if isinstance(error, Unprocessable) and error.errors:
        extra["errors"] = error.errors
    response = problem(error.status, error.title, error.detail, error.type_slug, **extra)
    if isinstance(error, Moved):
        response.headers["Location"] = error.location
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def validation_response(error: RequestValidationError) -> Response[str]:
    """Powertools' validation errors, in our problem+json shape. Bad JSON is a 400."""
    details = error.errors()
    if any(d.get("type") == "json_invalid" for d in details):
        return problem(400, "Bad request", "the body is not valid JSON", "bad-request")
    errors = [
        {"loc": [str(part) for part in d.get("loc", ())], "msg": str(d.get("msg", "invalid"))}
        for d in details
    ]
    return problem(
        422,
        "Validation failed",
        "the request does not match the schema",
        "validation",
        errors=errors,
    )


def install(app: APIGatewayHttpResolver, logger: Any) -> None:
    """Every error the resolver sees becomes problem+json; anything unexpected is a logged 500."""

    @app.exception_handler(CrmError)
    def _crm_error(error: CrmError) -> Response[str]:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    def _validation(error: RequestValidationError) -> Response[str]:
        return validation_response(error)

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return problem(404, "Not found", "no such route", "not-found")

    @app.exception_handler(Exception)
    def _bug(error: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return problem(
            500,
            "Internal error",
            "an unexpected error; it has been logged",
            "internal",
        )


def screen(event: dict[str, Any]) -> Response[str] | None:
    """Refuse oversized, non-JSON or undecodable bodies before anything parses them (and
    before any route checks roles)."""
    try:
        _screen(event)
    except CrmError as error:
        return error_response(error)
    return None


def _screen(event: dict[str, Any]) -> None:
    body = event.get("body")
    if not body:
        return
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
    if size > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body exceeds {MAX_BODY_BYTES} bytes")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    media = headers.get("content-type", JSON).split(";")[0].strip().lower()
    if media != JSON and not media.endswith("+json"):
        raise UnsupportedMediaType("send the body as application/json")
    if media != JSON:
        # Powertools parses only application/json and fails on any other type with an
        # exception of its own (a 500); `+json` types such as merge-patch+json are JSON too.
        others = {
            k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"
        }
        event["headers"] = {**others, "content-type": JSON}
    if event.get("isBase64Encoded"):
        try:
            event["body"] = base64.b64decode(body, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the body is not valid base64-encoded UTF-8") from None
        event["isBase64Encoded"] = False
    try:
        # Strict: what Python's json reads beyond RFC 8259 (NaN, 1e400), or fails on with
        # another error than a syntax error (deep nesting, huge integers), is refused here,
        # so the resolver's own parse and the models never see it.
        parsed = strict_json.loads(event["body"], "the body")
    except strict_json.NotJson:
        return  # not JSON: the resolver answers it with its own precise 400
    except strict_json.JsonRefused as refused:
        raise BadRequest(str(refused)) from None
    if isinstance(parsed, list):
        # Powertools reads a JSON array as repeated values and hands a body model its first
        # element, so `[{...}]` would pass as `{...}`. No route takes an array body.
        raise Unprocessable(
            "the body must be a JSON object",
            errors=[{"loc": ["body"], "msg": "Input should be a JSON object, not an array"}],
        )
    try:
        # JSON escapes can spell lone surrogates, which are not UTF-8: DynamoDB refuses them.
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("the body contains invalid Unicode (a lone surrogate)") from None


def caller(app: APIGatewayHttpResolver) -> Principal:
    authorizer = app.current_event.request_context.authorizer
    claims = authorizer.jwt_claim if authorizer else None
    return principal_from_claims(claims)


Route = TypeVar("Route", bound=Callable[..., Response[str]])


def guard(
    app: APIGatewayHttpResolver,
    action: Action | None,
    *,
    idempotency: Table | None = None,
    redact: Callable[[str], str] | None = None,
) -> Callable[[Route], Route]:
    """A route's entry: the caller is authorized for `action` (any signed-in caller when
    None, for a route that decides by what is asked), and with `idempotency` (the table of
    the records) an `Idempotency-Key` replays the first answer (`once_per_key`). The route
    takes the caller as its first parameter, `caller`, and is its use-case and nothing else:

        @router.post("/campaigns", ...)
        @http.guard(app, Action.CAMPAIGN_WRITE, idempotency=table)
        def create_campaign(caller: Principal, body: CampaignCreate) -> Response[str]: ...

    Powertools reads the route's parameters from its signature (validation, the OpenAPI
    document): `caller` is not one of them, so the signature it sees has it removed."""

    def decorate(route: Route) -> Route:
        signature = inspect.signature(route, eval_str=True)
        first, *params = signature.parameters.values()
        if first.name != "caller":
            raise TypeError(f"{route.__name__}: a guarded route takes `caller` first")

        @functools.wraps(route)
        def guarded(**kwargs: Any) -> Response[str]:
            principal = caller(app)
            if action is not None:
                principal.require(action)
            if idempotency is None:
                return route(principal, **kwargs)
            answer = functools.partial(route, principal, **kwargs)
            return once_per_key(app, idempotency, principal, answer, redact)

        guarded.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def origin(app: APIGatewayHttpResolver, principal: Principal) -> Origin:
    """The caller and the request id, for the events a change produces: the request id is
    the correlation id every consumer logs, as this function's logs do."""
    return Origin.user(principal.user_id, app.current_event.request_context.request_id)


def if_match(app: APIGatewayHttpResolver) -> int | None:
    """The version named by If-Match; None when absent or `*`."""
    raw = app.current_event.headers.get("if-match")
    return None if raw is None else parse_if_match(raw)


def parse_if_match(raw: str) -> int | None:
    """An If-Match value's version (None for `*`); BadRequest for anything else."""
    found = _IF_MATCH_RE.fullmatch(raw)
    if not found:
        raise BadRequest('If-Match must be an ETag such as "3"')
    return None if found.group(1) else int(found.group(2))


def json_response(
    status: int, model: BaseModel, *, version: int | None = None, location: str | None = None
) -> Response[str]:
    headers: dict[str, str] = {}
    if version is not None:
        headers["ETag"] = f'"{version}"'
    if location:
        headers["Location"] = location
    return Response(status, JSON, model.model_dump_json(), headers)


def once_per_key(
    app: APIGatewayHttpResolver,
    table: Table,
    principal: Principal,
    run: Callable[[], Response[str]],
    redact: Callable[[str], str] | None = None,
) -> Response[str]:
    """Honour `Idempotency-Key` on a POST: replay the first response for the same key and body.

    `redact` is applied to the body kept for replays (a secret shown once is not stored)."""
    key = app.current_event.headers.get("idempotency-key")
    if key is None:
        return run()
    event = app.current_event
    operation = f"{event.request_context.http.method} {event.raw_path}"

    first: Response[str] | None = None

    def outcome() -> dict[str, Any]:
        nonlocal first
        first = run()
        body = str(first.body)
        return {
            "status": first.status_code,
            "body": redact(body) if redact and first.status_code < 300 else body,
            "headers": dict(first.headers),
        }

    stored = idempotency.once(
        table, principal.tenant_id, key, operation, event.body or "", outcome, app.lambda_context
    )
    if first is not None:
        first.headers["Idempotent-Replayed"] = "false"
        return first
    headers = {**stored["headers"], "Idempotent-Replayed": "true"}
    return Response(stored["status"], JSON, stored["body"], headers)


def raw_response(response: Response[str]) -> dict[str, Any]:
    """An HTTP API 2.0 response for errors raised before the resolver runs."""
    headers = {k: v if isinstance(v, str) else ",".join(v) for k, v in response.headers.items()}
    if response.content_type:
        headers["Content-Type"] = response.content_type
    return {
        "statusCode": response.status_code,
        "headers": headers,
        "body": response.body,
        "isBase64Encoded": False,
    }


def returns(status: int, description: str, model: type[BaseModel]) -> dict[int, OpenAPIResponse]:
    """A route's success response, for the OpenAPI document."""
    return {status: {"description": description, "content": {JSON: {"model": model}}}}


def log_keys(event: dict[str, Any]) -> dict[str, str]:
    """Who is calling, for every log line of the request: tenant and user ids, never the token."""
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    keys = {"tenant_id": claims.get("custom:tenant_id"), "user_id": claims.get("sub")}
    return {k: v[:128] for k, v in keys.items() if isinstance(v, str)}


def api_handler(
    app: APIGatewayHttpResolver,
    logger: Any,
    tracer: Any,
    metrics: Any,
    quota: TenantQuota | None = None,
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler of an HTTP API function: logs keyed by the request id, tenant and
    user; a trace without the response (it holds personal data); metrics flushed; bodies
    screened before the resolver parses them; the tenant's request quota, if any."""
    from aws_lambda_powertools.logging import correlation_paths

    from crm_core.runtime import entry

    @entry(logger, tracer, metrics, correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        keys = log_keys(event)
        logger.append_keys(**keys)
        refused = screen(event)
        if refused is not None:
            return raw_response(refused)
        if quota is not None and "tenant_id" in keys:
            try:
                quota.admit(keys["tenant_id"])
            except TenantThrottled as throttled:
                return raw_response(error_response(throttled))
        response: dict[str, Any] = app.resolve(event, context)
        return response

    return handler
