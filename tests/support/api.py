"""Invoke a function's handler with HTTP API 2.0 events built from events/http samples."""

from __future__ import annotations

import copy
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from infra.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "events" / "http" / "authorized-request.json").read_text())


def template_routes(function_logical_id: str) -> list[tuple[str, str]]:
    """(METHOD, /path/{param}) of each HttpApi event of a function in template.yaml."""
    function = load_template()["Resources"][function_logical_id]
    events = function["Properties"].get("Events", {})
    return [
        (e["Properties"]["Method"].upper(), e["Properties"]["Path"])
        for e in events.values()
        if e["Type"] == "HttpApi"
    ]


@dataclass
class User:
    tenant_id: str | None
    roles: tuple[str, ...] = ("admin",)
    sub: str = field(default_factory=lambda: str(uuid.uuid4()))

    def claims(self) -> dict[str, str]:
        claims = copy.deepcopy(SAMPLE["requestContext"]["authorizer"]["jwt"]["claims"])
        claims["sub"] = claims["cognito:username"] = self.sub
        claims["cognito:groups"] = "[" + " ".join(self.roles) + "]"
        if self.tenant_id is None:
            claims.pop("custom:tenant_id")
        else:
            claims["custom:tenant_id"] = self.tenant_id
        return claims


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


class LambdaContext:
    function_name = "crm-test-contacts"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:crm-test-contacts"
    memory_limit_in_mb = 512
    log_group_name = "/aws/lambda/crm-test-contacts"
    log_stream_name = "2026/11/22/[$LATEST]test"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


class Api:
    """Calls a handler the way API Gateway's HTTP API would after the JWT authorizer."""

    def __init__(self, handler: Any, routes: list[tuple[str, str]]) -> None:
        self.handler = handler
        self.routes = [(m, p, _route_regex(p)) for m, p in routes]

    def event(
        self,
        method: str,
        path: str,
        user: User | None,
        body: Any = None,
        *,
        raw_body: str | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        route_key, params = self._route(method, path)
        event = copy.deepcopy(SAMPLE)
        event["routeKey"] = event["requestContext"]["routeKey"] = route_key
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
        event["requestContext"]["requestId"] = uuid.uuid4().hex
        event["headers"] = {
            **event["headers"],
            **{k.lower(): v for k, v in (headers or {}).items()},
        }
        if query:
            event["queryStringParameters"] = query
            event["rawQueryString"] = urlencode(query)
        if params:
            event["pathParameters"] = params
        if user is None:
            event["requestContext"].pop("authorizer")
        else:
            event["requestContext"]["authorizer"]["jwt"]["claims"] = user.claims()
        text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
        if text is not None:
            event["body"] = text
            event["headers"].setdefault("content-type", "application/json")
            event["headers"]["content-length"] = str(len(text.encode()))
        return event

    def call(self, method: str, path: str, user: User | None, body: Any = None, **kw: Any) -> Reply:
        return self.send(self.event(method, path, user, body, **kw))

    def send(self, event: dict[str, Any]) -> Reply:
        raw = self.handler(event, LambdaContext())
        headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
        for key, values in (raw.get("multiValueHeaders") or {}).items():
            headers[key.lower()] = ",".join(values)
        return Reply(raw["statusCode"], headers, raw.get("body") or "")

    def _route(self, method: str, path: str) -> tuple[str, dict[str, str]]:
        for m, template_path, regex in self.routes:
            found = regex.match(path)
            if m == method and found:
                return f"{m} {template_path}", found.groupdict()
        raise AssertionError(f"{method} {path} is not a route of template.yaml")


def _route_regex(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(f"^{pattern}$")
