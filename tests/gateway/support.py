"""Gateways on free ports, a fake `invoke` that records events, and a small HTTP client."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.local.gateway import HttpGateway, LocalPage
from infra.local.invocation import InvokeResult
from infra.topology import HttpApiSpec, HttpRoute, JwtAuthorizerSpec

Behaviour = Callable[[str, dict[str, Any]], InvokeResult]


def ok(payload: Any = None) -> InvokeResult:
    return InvokeResult(payload={"statusCode": 200, "body": "ok"} if payload is None else payload)


@dataclass
class FakeInvoke:
    """Records every (function, event) and answers with `behaviour`."""

    behaviour: Behaviour = field(default=lambda _function, _event: ok())
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, function: str, event: dict[str, Any]) -> InvokeResult:
        with self.lock:
            self.calls.append((function, event))
        return self.behaviour(function, event)

    @property
    def functions(self) -> list[str]:
        return [function for function, _ in self.calls]

    @property
    def last_event(self) -> dict[str, Any]:
        return self.calls[-1][1]


def api(
    *routes: tuple[str, str, str] | tuple[str, str, str, bool],
    cors: dict[str, Any] | None = None,
    authorizer: JwtAuthorizerSpec | None = None,
) -> HttpApiSpec:
    """An HttpApiSpec from (METHOD, path, function[, authorized]) tuples."""
    return HttpApiSpec(
        logical_id="HttpApi",
        routes=tuple(
            HttpRoute(method=r[0], path=r[1], function=r[2], authorized=len(r) == 4 and r[3])
            for r in routes
        ),
        authorizer=authorizer,
        cors=cors,
    )


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def call(
    url: str,
    method: str,
    target: str,
    *,
    headers: list[tuple[str, str]] | dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10,
) -> Reply:
    """One request; `headers` as a list may repeat a name."""
    host_port = url.removeprefix("http://")
    connection = http.client.HTTPConnection(host_port, timeout=timeout)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        for name, value in items:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


@dataclass
class Gateways:
    """Starts gateways for a test and stops them after it."""

    started: list[HttpGateway] = field(default_factory=list)

    def __call__(
        self,
        spec: HttpApiSpec,
        invoke: FakeInvoke | None = None,
        *,
        jwks_url: str | None = None,
        local_pages: dict[str, LocalPage] | None = None,
        log: Callable[[str], None] | None = None,
        integration_timeout_s: float = 30.0,
    ) -> tuple[HttpGateway, FakeInvoke]:
        fake = invoke if invoke is not None else FakeInvoke()
        gateway = HttpGateway(
            spec,
            fake,
            jwks_url=jwks_url,
            port=0,
            local_pages=local_pages,
            log=log,
            integration_timeout_s=integration_timeout_s,
        )
        gateway.start()
        self.started.append(gateway)
        return gateway, fake


@dataclass(frozen=True)
class LocalCognito:
    """Two user pools on one moto server, and real tokens from them."""

    endpoint: str
    pool_id: str
    client_id: str
    id_token: str  # ann, tenant acme, groups admin and sales
    access_token: str
    other_client_id_token: str  # same pool and user, another app client
    other_pool_id_token: str  # another pool of the same server: another issuer

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.us-east-1.amazonaws.com/{self.pool_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.endpoint}/{self.pool_id}/.well-known/jwks.json"


# The shape of a payload format 2.0 event ---------------------------------------------------
# Objects whose keys are data (header names, claim names...), compared by their values' type.
FREE_FORM = {"headers", "queryStringParameters", "pathParameters", "stageVariables", "claims"}


def shape(value: Any, key: str | None = None) -> Any:
    """The key structure of an event, with leaves replaced by their type's name."""
    if isinstance(value, dict):
        if key in FREE_FORM:
            return {"<any>": sorted({type(v).__name__ for v in value.values()})}
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [sorted({type(v).__name__ for v in value})]
    return type(value).__name__


def sam_sample_shape() -> dict[str, Any]:
    """The sample's shape minus what an HTTP API without mTLS or stage variables omits."""
    expected: dict[str, Any] = shape(json.loads(SAM_SAMPLE.read_text()))
    del expected["requestContext"]["authentication"]  # only with mutual TLS
    del expected["stageVariables"]  # the template's stage has none
    return expected


SAM_SAMPLE = Path(__file__).resolve().parents[2] / "events" / "http" / "sam-http-api-proxy.json"
