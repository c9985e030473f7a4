"""Lambda's Invoke API on the local cloud, so that boto3's `lambda` client works unchanged.

`POST /2015-03-31/functions/{FunctionName}/invocations`, Lambda's own REST path, is served
on the API's port beside the `/_local/` pages: before the HTTP API's routes (the CRM's API
has no such path) and without the JWT authorizer, as AWS signs these calls with IAM, which
the local cloud does not check. Point a client at the API URL:
`boto3.client("lambda", endpoint_url="http://127.0.0.1:3000")`.

As Lambda answers:
- `FunctionName`: a name, `name:qualifier`, a full ARN or a partial one
  (`123456789012:function:name`), or the `Qualifier` query parameter. The qualifier may be
  `$LATEST` or the function's `AutoPublishAlias`; versions and aliases are not otherwise
  emulated, and every qualifier runs the one local code.
- `X-Amz-Invocation-Type: RequestResponse` (the default): one invocation on the warm
  runner; 200 with the function's response, or with its error object and
  `X-Amz-Function-Error: Unhandled`. `Event`: the event goes to the async invoker (retries,
  event age, destinations and DLQ apply, infra/local/async_invoke.py); 202 at once, nothing in
  the body. `DryRun`: 204, nothing invoked.
- service errors as botocore expects them (`x-amzn-ErrorType` and a JSON body):
  an unknown function is 404 ResourceNotFoundException; a body that is not JSON is 400
  InvalidRequestContentException; a payload over 6 MB (RequestResponse) or 1 MB (Event) is
  413 RequestTooLargeException; any other path under the prefix, or another method, is
  404 UnknownOperationException (only Invoke is served).

Not emulated: `X-Amz-Log-Type: Tail` (the logs are on the `crm dev` console), client
context, response streaming (`InvokeWithResponseStream`), IAM.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from infra.local.async_invoke import AsyncInvoker
from infra.local.invocation import InvokeResult
from infra.topology import ACCOUNT_ID, REGION, FunctionSpec

INVOKE_PREFIX = "/2015-03-31/functions/"
INVOCATIONS_SUFFIX = "/invocations"
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # RequestResponse
ASYNC_PAYLOAD_LIMIT = 1024 * 1024  # Event
LATEST = "$LATEST"
_FUNCTION_NAME = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_.-]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$"
)

Page = tuple[int, dict[str, str], bytes]


class LambdaApi:
    """The Invoke operation for the functions of one local cloud."""

    def __init__(
        self,
        functions: Iterable[FunctionSpec],
        invoke: Callable[[str, Any], InvokeResult],
        async_invoker: AsyncInvoker,
    ) -> None:
        self._functions = {spec.name: spec for spec in functions}
        self._invoke = invoke
        self._async = async_invoker

    def pages(self) -> dict[str, Callable[[Any], Page]]:
        """The local page that serves every path under Lambda's prefix."""
        return {INVOKE_PREFIX: self.handle}

    def handle(self, request: Any) -> Page:
        request_id = str(uuid.uuid4())
        path: str = request.path
        rest = path[len(INVOKE_PREFIX) :]
        if request.method != "POST" or not rest.endswith(INVOCATIONS_SUFFIX):
            return _error(404, "UnknownOperationException", "Unknown operation", request_id)
        raw_name = unquote(rest[: -len(INVOCATIONS_SUFFIX)])
        qualifiers = (request.query or {}).get("Qualifier") or []
        found = self._function(raw_name, qualifiers[0] if qualifiers else None, request_id)
        if isinstance(found, tuple):
            return found
        spec = found
        kind = (request.headers or {}).get("x-amz-invocation-type") or "RequestResponse"
        if kind not in ("RequestResponse", "Event", "DryRun"):
            return _error(
                400,
                "InvalidParameterValueException",
                f"Invalid invocation type: {kind}",
                request_id,
            )
        body: bytes = request.body or b""
        limit = ASYNC_PAYLOAD_LIMIT if kind == "Event" else SYNC_PAYLOAD_LIMIT
        if len(body) > limit:
            return _error(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
                request_id,
            )
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError as problem:
            return _error(
                400,
                "InvalidRequestContentException",
                f"Could not parse request body into json: {problem}",
                request_id,
            )
        if kind == "DryRun":
            return 204, {"x-amzn-RequestId": request_id}, b""
        if kind == "Event":
            request_id = self._async.submit(spec.logical_id, event)
            return 202, {"x-amzn-RequestId": request_id}, b""
        result = self._invoke(spec.logical_id, event)
        headers = {
            "Content-Type": "application/json",
            "X-Amz-Executed-Version": LATEST,
            "x-amzn-RequestId": result.request_id or request_id,
        }
        if not result.ok:
            headers["X-Amz-Function-Error"] = "Unhandled"
            return 200, headers, json.dumps(result.error).encode()
        return 200, headers, json.dumps(result.payload).encode()

    def _function(
        self, raw_name: str, qualifier: str | None, request_id: str
    ) -> FunctionSpec | Page:
        """The function a FunctionName (and Qualifier) names, or the error to answer."""
        match = _FUNCTION_NAME.match(raw_name)
        if match is None:
            return _error(
                400,
                "InvalidParameterValueException",
                f"Invalid function name: {raw_name}",
                request_id,
            )
        derived = match.group("qualifier")
        if derived and qualifier and derived != qualifier:
            return _error(
                400,
                "InvalidParameterValueException",
                "The derived qualifier from the function name does not match the specified "
                "qualifier.",
                request_id,
            )
        qualifier = derived or qualifier
        name = match.group("name")
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        if qualifier:
            arn = f"{arn}:{qualifier}"
        spec = self._functions.get(name)
        region, account = match.group("region"), match.group("account")
        if (
            spec is None
            or region not in (None, REGION)
            or account not in (None, ACCOUNT_ID)
            or qualifier not in (None, LATEST, spec.properties.get("AutoPublishAlias"))
        ):
            message = f"Function not found: {arn}"
            return _error(404, "ResourceNotFoundException", message, request_id)
        return spec


def _error(status: int, code: str, message: str, request_id: str) -> Page:
    """A Lambda service error: botocore reads the code from `x-amzn-ErrorType`."""
    headers = {
        "Content-Type": "application/json",
        "x-amzn-ErrorType": code,
        "x-amzn-RequestId": request_id,
    }
    return status, headers, json.dumps({"Type": "User", "Message": message}).encode()


def pages(
    functions: Iterable[FunctionSpec],
    invoke: Callable[[str, Any], InvokeResult],
    async_invoker: AsyncInvoker,
) -> dict[str, Callable[[Any], Page]]:
    """The Invoke API's page for a local cloud's gateway."""
    return LambdaApi(functions, invoke, async_invoker).pages()
