"""API Gateway's HTTP API (payload format 2.0) in front of local functions.

`HttpGateway` serves the routes of one `AWS::Serverless::HttpApi` (infra/topology.py) on a
local port and answers as the real service does:

- routing: the most specific route wins, segment by segment (literal over `{param}` over
  `{proxy+}`), then a route with the request's method over `ANY`; `$default` catches the
  rest; no route is `404 {"message":"Not Found"}`. Path parameters are percent-decoded.
- the JWT authorizer (`JwtVerifier`): RS256 signature against the issuer's JWKS, `iss`,
  `aud` (or `client_id` when there is no `aud`), `exp`, `nbf`/`iat`; anything wrong is
  `401 {"message":"Unauthorized"}` with the service's `www-authenticate` header, and the
  function is not invoked. Claims reach the function as strings, lists as `[a b]`.
- the event: payload format 2.0 as the service builds it; the reference shape is
  events/http/sam-http-api-proxy.json (`sam local generate-event apigateway http-api-proxy`).
- throttling: each route's token bucket (`DefaultRouteSettings`, or the route's own
  `RouteSettings`); a request past it is `429 {"message":"Too Many Requests"}`, before the
  authorizer, and the function is not invoked.
- limits: a request body over 10 MB is `413 {"message":"Request Entity Too Large"}`, read
  no further than needed. An event over Lambda's 6 MB synchronous invoke limit is refused
  with the same 413 (the service refuses it too; its exact answer there is our reading).
- the response: payload format 2.0 (`statusCode`, `headers`, `cookies`, `body`,
  `isBase64Encoded`), or any other JSON value as a 200 `application/json` body; a
  malformed one is a 500.
- failures, mapped as the service maps them:
  * a function error, including the function's own timeout (Lambda reports it as a function
    error, `Sandbox.Timedout`), is `500 {"message":"Internal Server Error"}`;
  * the integration timeout (30 s, the HTTP API maximum) is `503 {"message":"Service
    Unavailable"}`, while the function may go on running: HTTP APIs answer 503 here, not
    the `504 "Endpoint request timed out"` of REST APIs. With the template's 10 s function
    timeout, a slow function is a 500 well before the gateway's 30 s.
- CORS from the API's `CorsConfiguration`: preflights answered by the gateway itself without
  invoking, CORS headers added to responses to an allowed origin, and the function's own
  `access-control-*` headers dropped (the service ignores them when CORS is configured).

Observed behaviour of the service rather than documented: HTTP APIs deliver `rawPath` and
`requestContext.http.path` percent-decoded (REST APIs and function URLs keep the encoding),
and a response without `content-type` is sent as `text/plain; charset=utf-8`.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import secrets
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

from infra.local.invocation import InvokeResult
from infra.topology import (
    ACCOUNT_ID,
    REGION,
    HttpApiSpec,
    HttpRoute,
    JwtAuthorizerSpec,
    Throttle,
)

Invoke = Callable[[str, dict[str, Any]], InvokeResult]  # (function logical id, event) -> result
LocalPage = Callable[["LocalRequest"], tuple[int, dict[str, str], bytes]]

MAX_REQUEST_BODY = 10 * 1024 * 1024  # HTTP API payload quota: 10 MB
LAMBDA_SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # Lambda's RequestResponse invoke limit (6 MB)
INTEGRATION_TIMEOUT_S = 30.0  # HTTP API maximum (and default) integration timeout
CLOCK_LEEWAY_S = 5.0  # clock skew tolerated on `nbf` and `iat`
_DRAIN_LIMIT = 4 * MAX_REQUEST_BODY  # an oversized body up to this size is read and dropped
_READ_CHUNK = 64 * 1024
_TEXT_TYPES = ("application/json", "application/xml", "application/x-www-form-urlencoded")
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class LocalRequest:
    """One request as received: `path` still percent-encoded, without the query string.

    `headers` has lower-case names, repeated headers joined by "," (Cookie headers by "; ").
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    raw_query: str = ""


class Unauthorized(Exception):
    """The JWT authorizer refused the request (`reason` None: no token at all)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "no token")
        self.reason = reason

    @property
    def www_authenticate(self) -> str:
        """The header value API Gateway sends with the 401."""
        if self.reason is None:
            return "Bearer"
        return f'Bearer scope="" error="invalid_token" error_description="{self.reason}"'


class JwtVerifier:
    """An HTTP API JWT authorizer: validates a token as API Gateway does.

    The JWKS is fetched on first use, kept, and fetched again when a token names a key id it
    does not hold (at most once per `refetch_interval_s`, so garbage key ids cannot hammer
    the issuer). Only RS256 is accepted: Cognito signs with it, and API Gateway supports
    only RSA keys.
    """

    def __init__(
        self,
        spec: JwtAuthorizerSpec,
        jwks_url: str,
        *,
        leeway_s: float = CLOCK_LEEWAY_S,
        fetch_timeout_s: float = 5.0,
        refetch_interval_s: float = 1.0,
    ) -> None:
        if urlsplit(jwks_url).scheme not in ("http", "https"):
            raise ValueError(f"JWKS URL must be http(s): {jwks_url}")
        self.spec = spec
        self.jwks_url = jwks_url
        self._leeway_s = leeway_s
        self._fetch_timeout_s = fetch_timeout_s
        self._refetch_interval_s = refetch_interval_s
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None

    def verify(self, authorization_header: str | None) -> dict[str, Any]:
        """The token's claims; raises Unauthorized for a missing or invalid token."""
        token = _bearer_token(authorization_header)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthorized("the token is malformed") from None
        if header.get("alg") != "RS256":
            raise Unauthorized("the token's signing algorithm is not supported")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthorized("the token has no key id")
        key = self._signing_key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                leeway=self._leeway_s,
                options={
                    "verify_exp": False,  # checked below without leeway
                    "verify_aud": False,
                    "verify_iss": False,
                    "require": ["exp"],
                },
            )
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token signature is invalid") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the token is not valid yet") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("the token is malformed") from None
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= time.time():
            raise Unauthorized("the token has expired")
        if claims.get("iss") != self.spec.issuer:
            raise Unauthorized("the token does not have a valid issuer")
        audience = claims["aud"] if "aud" in claims else claims.get("client_id")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(isinstance(a, str) and a in self.spec.audience for a in audiences):
            raise Unauthorized("the token does not have a valid audience")
        if claims.get("token_use") not in ("id", "access"):
            raise Unauthorized("the token is neither an ID nor an access token")
        return claims

    def _signing_key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                return key
            now = time.monotonic()
            if self._fetched_at is None or now - self._fetched_at >= self._refetch_interval_s:
                self._keys = self._fetch()
                self._fetched_at = now
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("the token was not signed by a key of the issuer")
        return key

    def _fetch(self) -> dict[str, jwt.PyJWK]:
        try:
            with urllib.request.urlopen(  # noqa: S310 (scheme checked in __init__)
                self.jwks_url, timeout=self._fetch_timeout_s
            ) as response:
                document = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise Unauthorized("the issuer's signing keys are unavailable") from exc
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type we cannot use, as API Gateway would skip it
        return keys


def _bearer_token(value: str | None) -> str:
    token = (value or "").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    if not token or token.lower() == "bearer":
        raise Unauthorized(None)
    return token


def claim_text(value: Any) -> str:
    """A claim as API Gateway passes it to the function: always a string.

    Lists become `[a b]` (how `cognito:groups` arrives), numbers their decimal text, booleans
    `true`/`false`, objects `map[k:v ...]`.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list):
        return "[" + " ".join(claim_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{claim_text(value[k])}" for k in sorted(value)) + "]"
    if value is None:
        return ""
    return str(value)


def _scopes(claims: Mapping[str, Any]) -> list[str] | None:
    scope = claims.get("scope", claims.get("scp"))
    if isinstance(scope, str):
        return scope.split()
    if isinstance(scope, list):
        return [str(s) for s in scope]
    return None


# Routing ---------------------------------------------------------------------------------
_LITERAL, _PARAM, _GREEDY = 0, 1, 2


def is_default_route(route: HttpRoute) -> bool:
    return route.path in ("$default", "/$default")  # topology.py writes SAM's as "/$default"


def route_key(route: HttpRoute) -> str:
    return "$default" if is_default_route(route) else route.route_key


@dataclass(frozen=True)
class _Pattern:
    route: HttpRoute
    segments: tuple[str, ...]
    kinds: tuple[int, ...]

    @classmethod
    def of(cls, route: HttpRoute) -> _Pattern:
        segments = tuple(route.path.lstrip("/").split("/"))
        kinds = []
        for i, segment in enumerate(segments):
            if segment.startswith("{") and segment.endswith("+}"):
                if i != len(segments) - 1:
                    raise ValueError(f"greedy path variable not at the end: {route.path}")
                kinds.append(_GREEDY)
            elif segment.startswith("{") and segment.endswith("}"):
                kinds.append(_PARAM)
            else:
                kinds.append(_LITERAL)
        return cls(route, segments, tuple(kinds))

    def match(self, method: str, raw_segments: list[str]) -> dict[str, str] | None:
        if self.route.method not in (method, "ANY"):
            return None
        params: dict[str, str] = {}
        for i, (segment, kind) in enumerate(zip(self.segments, self.kinds, strict=True)):
            if kind == _GREEDY:
                rest = "/".join(raw_segments[i:])
                if not rest:
                    return None
                params[segment[1:-2]] = unquote(rest)
                return params
            if i >= len(raw_segments):
                return None
            value = unquote(raw_segments[i])
            if kind == _LITERAL:
                if value != segment:
                    return None
            elif not value:
                return None
            else:
                params[segment[1:-1]] = value
        return params if len(raw_segments) == len(self.segments) else None

    @property
    def rank(self) -> tuple[tuple[int, ...], int]:
        """Lower is more specific: segment kinds first, then a method match over ANY."""
        return self.kinds, 1 if self.route.method == "ANY" else 0


class Router:
    """Chooses the route of a request the way HTTP APIs do."""

    def __init__(self, routes: tuple[HttpRoute, ...]) -> None:
        self._default = next((r for r in routes if is_default_route(r)), None)
        self._patterns = sorted(
            (_Pattern.of(r) for r in routes if not is_default_route(r)), key=lambda p: p.rank
        )

    def match(self, method: str, raw_path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        """The route and its (decoded) path parameters, or None for a 404."""
        segments = raw_path.lstrip("/").split("/") if raw_path.startswith("/") else []
        if segments:
            for pattern in self._patterns:
                params = pattern.match(method, segments)
                if params is not None:
                    return pattern.route, params
        if self._default is not None:
            return self._default, {}
        return None


# CORS --------------------------------------------------------------------------------------
def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


class Cors:
    """An HTTP API `CorsConfiguration`."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.origins = _str_list(config.get("AllowOrigins"))
        self.methods = [m.upper() for m in _str_list(config.get("AllowMethods"))]
        self.headers = [h.lower() for h in _str_list(config.get("AllowHeaders"))]
        self.expose = _str_list(config.get("ExposeHeaders"))
        max_age = config.get("MaxAge")
        self.max_age = None if max_age is None else int(max_age)
        self.credentials = bool(config.get("AllowCredentials"))

    def allow_origin(self, origin: str | None) -> str | None:
        if not origin:
            return None
        if "*" in self.origins:  # with credentials, AWS refuses "*"; echo the origin instead
            return origin if self.credentials else "*"
        return origin if origin in self.origins else None

    def response_headers(self, origin: str | None) -> list[tuple[str, str]]:
        """Headers added to an actual (non-preflight) response."""
        allowed = self.allow_origin(origin)
        if allowed is None:
            return []
        headers = [("access-control-allow-origin", allowed)]
        if self.credentials:
            headers.append(("access-control-allow-credentials", "true"))
        if self.expose:
            headers.append(("access-control-expose-headers", ",".join(self.expose)))
        return headers

    def preflight_headers(
        self, origin: str | None, method: str, request_headers: str | None
    ) -> list[tuple[str, str]]:
        """Headers of the 204 preflight answer; none when the request is not allowed."""
        allowed = self.allow_origin(origin)
        if allowed is None:
            return []
        if "*" not in self.methods and method.upper() not in self.methods:
            return []
        asked = [h.strip().lower() for h in (request_headers or "").split(",") if h.strip()]
        if "*" not in self.headers and any(h not in self.headers for h in asked):
            return []
        headers = [("access-control-allow-origin", allowed)]
        if self.credentials:
            headers.append(("access-control-allow-credentials", "true"))
        methods = [method.upper()] if "*" in self.methods else self.methods
        headers.append(("access-control-allow-methods", ",".join(methods)))
        allow_headers = asked if "*" in self.headers else self.headers
        if allow_headers:
            headers.append(("access-control-allow-headers", ",".join(allow_headers)))
        if self.max_age is not None:
            headers.append(("access-control-max-age", str(self.max_age)))
        return headers


# Responses ---------------------------------------------------------------------------------
@dataclass
class _Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    close: bool = False
    note: str | None = None  # why, for the request's log line (never a token or a body)


def _message(status: int, message: str, *extra: tuple[str, str]) -> _Response:
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return _Response(status, [("content-type", "application/json"), *extra], body)


class TokenBucket:
    """A route's throttle as API Gateway applies it: `burst` tokens, refilled at `rate` a
    second; a request without a token is `429 {"message":"Too Many Requests"}`."""

    def __init__(self, throttle: Throttle, clock: Callable[[], float] = time.monotonic) -> None:
        self.throttle = throttle
        self._clock = clock
        self._tokens = float(throttle.burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            refilled = self._tokens + (now - self._at) * self.throttle.rate
            self._tokens = min(float(self.throttle.burst), refilled)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


class _MalformedResponse(ValueError):
    """The function's return value is not a valid payload format 2.0 response."""


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise _MalformedResponse(f"header value {value!r}")
    if "\r" in text or "\n" in text:
        raise _MalformedResponse("header value with a line break")
    return text


def map_result(result: InvokeResult, *, drop_cors_headers: bool = False) -> _Response:
    """The HTTP response API Gateway makes of a Lambda invocation (payload format 2.0)."""
    return _map_result(result, drop_cors_headers)[0]


def _map_result(result: InvokeResult, drop_cors_headers: bool) -> tuple[_Response, str | None]:
    """The response, and what was wrong with the function's response if it was malformed."""
    if not result.ok:
        return _message(500, "Internal Server Error"), None
    payload = result.payload
    if not (isinstance(payload, dict) and "statusCode" in payload):
        # Any other JSON: 200, application/json, the payload as the body (a string as is).
        body = payload if isinstance(payload, str) else json.dumps(payload)
        return _Response(200, [("content-type", "application/json")], body.encode()), None
    try:
        return _structured(payload, drop_cors_headers), None
    except _MalformedResponse as problem:
        return _message(500, "Internal Server Error"), str(problem)


def _structured(payload: dict[str, Any], drop_cors_headers: bool) -> _Response:
    status = payload["statusCode"]
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise _MalformedResponse(f"statusCode {status!r}")
    headers: list[tuple[str, str]] = []
    for source in ("headers", "multiValueHeaders"):
        values = payload.get(source) or {}
        if not isinstance(values, dict):
            raise _MalformedResponse(f"{source} is not an object")
        for name, value in values.items():
            if not isinstance(name, str) or not name or "\n" in name or "\r" in name:
                raise _MalformedResponse(f"header name {name!r}")
            lowered = name.lower()
            if lowered in _HOP_BY_HOP:
                continue
            if drop_cors_headers and lowered.startswith("access-control-"):
                continue
            items = value if isinstance(value, list) else [value]
            if source == "headers" and isinstance(value, list):
                items = [",".join(_header_value(v) for v in value)]
            headers.extend((name, _header_value(v)) for v in items)
    cookies = payload.get("cookies") or []
    if not isinstance(cookies, list):
        raise _MalformedResponse("cookies is not a list")
    headers.extend(("set-cookie", _header_value(c)) for c in cookies)
    body_value = payload.get("body")
    if body_value is None:
        body = b""
    elif not isinstance(body_value, str):
        raise _MalformedResponse("body is not a string")
    elif payload.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body_value, validate=True)
        except (binascii.Error, ValueError):
            raise _MalformedResponse("body is not base64") from None
    else:
        body = body_value.encode()
    if body and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", "text/plain; charset=utf-8"))
    return _Response(status, headers, body)


# The event ---------------------------------------------------------------------------------
def _is_text(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return (
        media.startswith("text/")
        or media in _TEXT_TYPES
        or (media.startswith("application/") and media.endswith("+json"))
    )


def new_request_id() -> str:
    """An id shaped like API Gateway's (`JKJaXmPLvHcESHA=`)."""
    return base64.b64encode(secrets.token_bytes(11)).decode()


def _request_time(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return (
        f"{moment.day:02d}/{_MONTHS[moment.month - 1]}/{moment.year}:"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} +0000"
    )


class _TooLarge(Exception):
    pass


class _BadRequest(Exception):
    pass


# The gateway -------------------------------------------------------------------------------
class HttpGateway:
    """One HTTP API, served on a local port in background threads."""

    def __init__(
        self,
        api: HttpApiSpec,
        invoke: Invoke,
        *,
        jwks_url: str | None,
        host: str = "127.0.0.1",
        port: int = 3000,
        local_pages: Mapping[str, LocalPage] | None = None,
        api_id: str = "local",
        log: Callable[[str], None] | None = None,
        integration_timeout_s: float = INTEGRATION_TIMEOUT_S,
        bound_socket: socket.socket | None = None,
    ) -> None:
        """`bound_socket`: a socket already bound to the address (infra/local/endpoint.py,
        `reserve`), that the gateway listens on instead of binding `host:port` itself."""
        self.api = api
        self.invoke = invoke
        self.host = host
        self.port = port
        self.api_id = api_id
        self.local_pages = dict(local_pages or {})
        self.integration_timeout_s = integration_timeout_s
        self._log = log or (lambda _line: None)
        self.router = Router(api.routes)
        self.buckets = {r.route_key: TokenBucket(r.throttle) for r in api.routes if r.throttle}
        self.cors = Cors(api.cors) if api.cors else None
        self.verifier: JwtVerifier | None = None
        self._identity_source: tuple[str, str] = ("header", "authorization")
        if api.authorizer is not None and jwks_url is not None:
            self.verifier = JwtVerifier(api.authorizer, jwks_url)
            self._identity_source = _identity_source(api.authorizer.identity_source)
        if self.verifier is None and any(r.authorized for r in api.routes):
            raise ValueError(f"{api.logical_id}: authorized routes need an authorizer and JWKS")
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._bound_socket = bound_socket

    # lifecycle
    def start(self) -> None:
        handler = type("GatewayHandler", (_Handler,), {"gateway": self})
        if self._bound_socket is None:
            server = ThreadingHTTPServer((self.host, self.port), handler)
        else:
            server = ThreadingHTTPServer((self.host, self.port), handler, bind_and_activate=False)
            server.socket.close()
            server.socket, self._bound_socket = self._bound_socket, None
            host, port = server.socket.getsockname()[:2]
            server.server_address = (host, port)
            server.server_name, server.server_port = host, port  # as server_bind() sets them
            server.server_activate()
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how long stop() may wait
            name=f"gateway-{self.api.logical_id}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if self._bound_socket is not None:  # never started
            self._bound_socket.close()
            self._bound_socket = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def url(self) -> str:
        port = self._server.server_address[1] if self._server is not None else self.port
        return f"http://{self.host}:{port}"

    # the event
    def build_event(
        self,
        route: HttpRoute,
        request: LocalRequest,
        path_parameters: dict[str, str],
        claims: dict[str, Any] | None,
        source_ip: str,
        *,
        request_id: str | None = None,
        now_ms: int | None = None,
    ) -> dict[str, Any]:
        """The payload format 2.0 event, keys in the order the service writes them."""
        epoch_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        key = route_key(route)
        path = unquote(request.path)  # HTTP APIs deliver rawPath decoded
        headers = {k: v for k, v in request.headers.items() if k != "cookie"}
        forwarded = headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{forwarded}, {source_ip}" if forwarded else source_ip
        headers["x-forwarded-port"] = str(self._port())
        headers["x-forwarded-proto"] = "http"
        headers.setdefault(
            "x-amzn-trace-id", f"Root=1-{epoch_ms // 1000:08x}-{secrets.token_hex(12)}"
        )
        domain = request.headers.get("host") or f"{self.api_id}.execute-api.{REGION}.amazonaws.com"
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": key,
            "rawPath": path,
            "rawQueryString": request.raw_query,
        }
        cookie_header = request.headers.get("cookie", "")
        cookies = [c.strip() for c in cookie_header.split(";") if c.strip()]
        if cookies:
            event["cookies"] = cookies
        event["headers"] = headers
        if request.query:
            event["queryStringParameters"] = {k: ",".join(v) for k, v in request.query.items()}
        context: dict[str, Any] = {"accountId": ACCOUNT_ID, "apiId": self.api_id}
        if claims is not None:
            context["authorizer"] = {
                "jwt": {
                    "claims": {k: claim_text(v) for k, v in claims.items()},
                    "scopes": _scopes(claims),
                }
            }
        context.update(
            {
                "domainName": domain,
                "domainPrefix": domain.split(":", 1)[0].split(".", 1)[0],
                "http": {
                    "method": request.method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": request.headers.get("user-agent", ""),
                },
                "requestId": request_id or new_request_id(),
                "routeKey": key,
                "stage": "$default",
                "time": _request_time(epoch_ms),
                "timeEpoch": epoch_ms,
            }
        )
        event["requestContext"] = context
        encoded = False
        if request.body:
            text = None
            if _is_text(request.headers.get("content-type")):
                try:
                    text = request.body.decode("utf-8")
                except UnicodeDecodeError:
                    text = None  # declared text but is not: passed on as binary
            encoded = text is None
            event["body"] = base64.b64encode(request.body).decode() if text is None else text
        if path_parameters:
            event["pathParameters"] = dict(path_parameters)
        event["isBase64Encoded"] = encoded
        return event

    def _port(self) -> int:
        return self._server.server_address[1] if self._server is not None else self.port

    # one request
    def handle(self, request: LocalRequest, source_ip: str, rid: str) -> _Response:
        """Everything between a parsed request and the response, as API Gateway does it."""
        page = self._local_page(request.path)
        if page is not None:
            status, page_headers, body = page(request)
            return _Response(status, list(page_headers.items()), body)
        origin = request.headers.get("origin")
        asked_method = request.headers.get("access-control-request-method")
        if self.cors is not None and request.method == "OPTIONS" and origin and asked_method:
            headers = self.cors.preflight_headers(
                origin, asked_method, request.headers.get("access-control-request-headers")
            )
            return _Response(204, headers)
        response = self._route(request, source_ip, rid)
        if self.cors is not None:
            response.headers.extend(self.cors.response_headers(origin))
        return response

    def _local_page(self, path: str) -> LocalPage | None:
        page = self.local_pages.get(path)
        if page is not None:
            return page
        prefixes = [p for p in self.local_pages if p.endswith("/") and path.startswith(p)]
        return self.local_pages[max(prefixes, key=len)] if prefixes else None

    def _route(self, request: LocalRequest, source_ip: str, rid: str) -> _Response:
        matched = self.router.match(request.method, request.path)
        if matched is None:
            return _message(404, "Not Found")
        route, params = matched
        bucket = self.buckets.get(route.route_key)
        if bucket is not None and not bucket.take():
            response = _message(429, "Too Many Requests")
            response.note = f"throttled: {route.route_key} ({bucket.throttle})"
            return response
        claims = None
        if route.authorized and self.verifier is not None:
            try:
                claims = self.verifier.verify(self._identity(request))
            except Unauthorized as refused:
                response = _message(
                    401, "Unauthorized", ("www-authenticate", refused.www_authenticate)
                )
                response.note = f"authorizer: {refused}"
                return response
        event = self.build_event(route, request, params, claims, source_ip, request_id=rid)
        if len(json.dumps(event).encode()) > LAMBDA_SYNC_PAYLOAD_LIMIT:
            response = _message(413, "Request Entity Too Large")
            response.note = f"{route.function}: event over Lambda's 6 MB invoke payload limit"
            return response
        result = self._invoke_with_timeout(route.function, event)
        if result is None:
            response = _message(503, "Service Unavailable")
            response.note = f"{route.function}: integration timeout ({self.integration_timeout_s}s)"
            return response
        response, problem = _map_result(result, self.cors is not None)
        if result.error is not None:
            response.note = f"{route.function}: {result.error.get('errorType')}"
        elif problem is not None:
            response.note = f"{route.function}: malformed Lambda proxy response: {problem}"
        return response

    def _identity(self, request: LocalRequest) -> str | None:
        kind, name = self._identity_source
        if kind == "querystring":
            values = request.query.get(name)
            return values[0] if values else None
        return request.headers.get(name)

    def _invoke_with_timeout(self, function: str, event: dict[str, Any]) -> InvokeResult | None:
        """The invocation's result, or None when it outlived the integration timeout.

        The invocation goes on in its thread, as a real function keeps running after API
        Gateway has given up on it.
        """
        outcome: list[InvokeResult] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append(self.invoke(function, event))
            except Exception as exc:  # the invoke machinery failed: a Lambda service error
                outcome.append(
                    InvokeResult(error={"errorType": type(exc).__name__, "errorMessage": str(exc)})
                )
            finally:
                done.set()

        threading.Thread(target=run, name=f"invoke-{function}", daemon=True).start()
        if not done.wait(self.integration_timeout_s):
            return None
        return outcome[0]


def _identity_source(source: str) -> tuple[str, str]:
    first = source.split(",", 1)[0].strip()
    for prefix, kind in (("$request.header.", "header"), ("$request.querystring.", "querystring")):
        if first.startswith(prefix):
            name = first[len(prefix) :]
            return kind, name.lower() if kind == "header" else name
    raise ValueError(f"unsupported identity source {source!r}")


class _Handler(BaseHTTPRequestHandler):
    gateway: HttpGateway
    protocol_version = "HTTP/1.1"
    server_version = "local-apigateway"
    disable_nagle_algorithm = True  # headers and body are separate writes

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the gateway logs one line per request itself."""

    def handle_expect_100(self) -> bool:
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_REQUEST_BODY:
            self.gateway._log(f"{self.command} {self.path.split('?', 1)[0]} 413 0ms")
            self._send(_message(413, "Request Entity Too Large"), close=True)
            return False
        return super().handle_expect_100()

    def do_GET(self) -> None:
        self._serve()

    # Every method is served the same way (routes may use any of them, or ANY), including
    # those http.server has no `do_` method for: API Gateway answers an unrouted method 404
    # like an unrouted path, never 501.
    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET  # noqa: N815

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        started = time.monotonic()
        gateway = self.gateway
        rid = new_request_id()
        target = urlsplit(self.path) if not self.path.startswith("/") else None
        raw_path, _, raw_query = (
            (target.path or "/", "?", target.query) if target else self.path.partition("?")
        )
        raw_path = raw_path.split("#", 1)[0]
        try:
            body = self._read_body()
        except _TooLarge:
            response = _message(413, "Request Entity Too Large")
            response.close = True
        except _BadRequest:
            response = _message(400, "Bad Request")
            response.close = True
        else:
            request = LocalRequest(
                method=self.command,
                path=raw_path,
                query=parse_qs(raw_query, keep_blank_values=True),
                headers=self._joined_headers(),
                body=body,
                raw_query=raw_query,
            )
            try:
                response = gateway.handle(request, self.client_address[0], rid)
            except Exception as exc:  # a bug of the emulator, not of the function
                response = _message(500, "Internal Server Error")
                response.note = f"gateway error: {type(exc).__name__}: {exc}"
        if gateway._local_page(raw_path) is None:
            response.headers.append(("apigw-requestid", rid))
        elapsed_ms = (time.monotonic() - started) * 1000
        line = f"{self.command} {raw_path} {response.status} {elapsed_ms:.0f}ms"
        gateway._log(f"{line} ({response.note})" if response.note else line)  # before replying
        self._send(response, close=response.close)

    def _joined_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            if key in headers:
                headers[key] += ("; " if key == "cookie" else ",") + value
            else:
                headers[key] = value
        return headers

    def _read_body(self) -> bytes:
        """The request body, refusing (without buffering) anything over 10 MB."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return _read_chunked(self.rfile, MAX_REQUEST_BODY)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        if not length_header.strip().isdigit():
            raise _BadRequest
        length = int(length_header)
        if length > MAX_REQUEST_BODY:
            if length <= _DRAIN_LIMIT:  # let the client finish sending, then answer
                _discard(self.rfile, length)
            raise _TooLarge
        return self.rfile.read(length)

    def _send(self, response: _Response, *, close: bool) -> None:
        self.send_response_only(response.status)
        self.send_header("date", self.date_time_string())
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        if close:
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)


def _discard(stream: io.BufferedIOBase, length: int) -> None:
    while length > 0:
        chunk = stream.read(min(_READ_CHUNK, length))
        if not chunk:
            return
        length -= len(chunk)


def _read_chunked(stream: io.BufferedIOBase, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest from None
        if size == 0:
            while stream.readline(1024).strip():
                pass  # trailers
            return b"".join(parts)
        total += size
        if total > limit:
            raise _TooLarge
        parts.append(stream.read(size))
        stream.readline(8)  # the CRLF after the chunk
