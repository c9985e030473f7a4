"""What the benches share to run one of the CRM's functions in their own process against the
local endpoint: its environment (as the local cloud gives it, but the tenant quota), its
import as Lambda imports it, a Lambda context, and an HTTP API event of a tenant's admin."""

from __future__ import annotations

import importlib
import json
import os
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "shared"))

from infra.aws import LOCAL_CREDENTIALS  # noqa: E402
from infra.topology import REGION  # noqa: E402

TABLE = "crm-local"
SAMPLE_EVENT = ROOT / "events" / "http" / "authorized-request.json"


def function_environment(endpoint: str, service: str) -> None:
    """What the local cloud gives a function, but the tenant quota."""
    os.environ.update(
        {
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "TABLE_NAME": TABLE,
            "STAGE": "local",
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": "CRM",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "TENANT_REQUESTS_PER_SECOND"):
        os.environ.pop(name, None)


def load_function(name: str) -> ModuleType:
    """functions/<name>/app.py, imported as Lambda imports it (its folder first, fresh)."""
    folder = str(ROOT / "functions" / name)
    for module in [m for m in sys.modules if m == "app" or m.startswith(f"{name}_api")]:
        del sys.modules[module]
    sys.path.insert(0, folder)
    try:
        return importlib.import_module("app")
    finally:
        sys.path.remove(folder)


class LambdaContext:
    """What Powertools reads of Lambda's context."""

    function_version = "$LATEST"
    memory_limit_in_mb = 512
    log_stream_name = "bench"

    def __init__(self, function: str = "crm-local-bench") -> None:
        self.function_name = function
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{function}"
        self.log_group_name = f"/aws/lambda/{function}"
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def http_event(
    tenant: str, method: str, path: str, body: Any = None, *, user: str = "bench-admin"
) -> dict[str, Any]:
    """An HTTP API 2.0 event of the tenant's admin `user`, as the JWT authorizer hands it on
    (events/http/authorized-request.json)."""
    route, _, query = path.partition("?")
    event: dict[str, Any] = json.loads(SAMPLE_EVENT.read_text())
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {route}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = route
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["requestId"] = uuid.uuid4().hex
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    claims.update(
        {
            "custom:tenant_id": tenant,
            "cognito:groups": "[admin]",
            "sub": user,
            "cognito:username": user,
        }
    )
    if query:
        event["rawQueryString"] = query
        event["queryStringParameters"] = dict(parse_qsl(query))
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["content-type"] = "application/json"
        event["headers"]["content-length"] = str(len(event["body"].encode()))
    return event
