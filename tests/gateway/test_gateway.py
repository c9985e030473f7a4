"""The HTTP API emulator with a fake `invoke`: routing, events, responses, limits, CORS."""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import threading
import time
from typing import Any

import pytest

from infra.local.gateway import MAX_REQUEST_BODY, HttpGateway, LocalRequest, TokenBucket
from infra.local.invocation import InvokeResult
from infra.topology import HttpApiSpec, HttpRoute, JwtAuthorizerSpec, Throttle
from tests.gateway.support import FakeInvoke, Gateways, api, call, ok

ROUTES = api(
    ("GET", "/contacts", "ListContacts"),
    ("POST", "/contacts", "CreateContact"),
    ("GET", "/contacts/mine", "MyContacts"),
    ("GET", "/contacts/{contact_id}", "GetContact"),
    ("ANY", "/contacts/{contact_id}/notes", "AnyNotes"),
    ("POST", "/contacts/{contact_id}/notes", "AddNote"),
    ("GET", "/files/{proxy+}", "Files"),
    ("GET", "/files/special/{name}", "Special"),
)


# Routing -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "target", "function", "params"),
    [
        ("GET", "/contacts", "ListContacts", None),
        ("POST", "/contacts", "CreateContact", None),
        ("GET", "/contacts/mine", "MyContacts", None),  # literal over {param}
        ("GET", "/contacts/c-1", "GetContact", {"contact_id": "c-1"}),
        ("GET", "/contacts/a%20b%C3%A9", "GetContact", {"contact_id": "a bé"}),
        ("POST", "/contacts/42/notes", "AddNote", {"contact_id": "42"}),  # method over ANY
        ("DELETE", "/contacts/42/notes", "AnyNotes", {"contact_id": "42"}),
        ("GET", "/files/a/b/c.txt", "Files", {"proxy": "a/b/c.txt"}),  # greedy
        ("GET", "/files/special/x", "Special", {"name": "x"}),  # {param} over {proxy+}
        ("GET", "/files/special/x/y", "Files", {"proxy": "special/x/y"}),
        ("GET", "/contacts?limit=5", "ListContacts", None),
    ],
)
def test_the_most_specific_route_wins(
    gateways: Gateways, method: str, target: str, function: str, params: dict[str, str] | None
) -> None:
    gateway, invoke = gateways(ROUTES)
    reply = call(gateway.url, method, target)
    assert reply.status == 200
    assert invoke.functions == [function]
    event = invoke.last_event
    assert event.get("pathParameters") == params
    route = next(r for r in ROUTES.routes if r.function == function)
    assert event["routeKey"] == event["requestContext"]["routeKey"] == route.route_key


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/nothing"),
        ("DELETE", "/contacts"),  # no route for the method
        ("GET", "/contacts/"),  # an empty path parameter
        ("GET", "/files"),  # a greedy variable needs at least one segment
        ("GET", "/contacts/1/notes/extra"),
        ("GET", "/"),
        # Methods no route names are routed like any other (never http.server's 501).
        ("TRACE", "/contacts"),
        ("CONNECT", "/contacts"),
        ("PROPFIND", "/contacts/1"),
        ("PURGE", "/nothing"),
    ],
)
def test_no_route_is_404_not_found(gateways: Gateways, method: str, target: str) -> None:
    gateway, invoke = gateways(ROUTES)
    reply = call(gateway.url, method, target)
    assert (reply.status, reply.json()) == (404, {"message": "Not Found"})
    assert reply.header("content-type") == "application/json"
    assert reply.header("apigw-requestid")
    assert invoke.calls == []


def test_default_route_catches_what_nothing_else_matches(gateways: Gateways) -> None:
    spec = api(
        ("GET", "/health", "Health"),
        ("ANY", "/{proxy+}", "CatchAll"),
        ("ANY", "/$default", "Default"),  # how topology.py writes SAM's $default route
    )
    gateway, invoke = gateways(spec)
    for method, target in [("GET", "/health"), ("POST", "/x/y"), ("GET", "/")]:
        assert call(gateway.url, method, target).status == 200
    assert invoke.functions == ["Health", "CatchAll", "Default"]
    keys = [event["routeKey"] for _, event in invoke.calls]
    assert keys == ["GET /health", "ANY /{proxy+}", "$default"]
    # ANY is any method, including those http.server knows nothing of.
    assert call(gateway.url, "PROPFIND", "/x").status == 200
    assert invoke.functions[-1] == "CatchAll"
    assert invoke.calls[1][1]["pathParameters"] == {"proxy": "x/y"}


# The event -----------------------------------------------------------------------------------
def test_event_carries_the_request_as_http_api_2_0_does(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    started_ms = int(time.time() * 1000)
    reply = call(
        gateway.url,
        "GET",
        "/contacts/c%201?tag=a&tag=b&limit=5&empty=&q=x%20y",
        headers=[
            ("User-Agent", "curl/8.5.0"),
            ("X-Multi", "1"),
            ("X-Multi", "2"),
            ("Cookie", "session=abc; theme=dark"),
        ],
    )
    assert reply.status == 200
    event = invoke.last_event
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/contacts/c 1"  # HTTP APIs decode the path
    assert event["rawQueryString"] == "tag=a&tag=b&limit=5&empty=&q=x%20y"  # as received
    assert event["queryStringParameters"] == {"tag": "a,b", "limit": "5", "empty": "", "q": "x y"}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    headers = event["headers"]
    assert "cookie" not in headers
    assert headers["x-multi"] == "1,2"
    assert headers["user-agent"] == "curl/8.5.0"
    assert all(name == name.lower() for name in headers)
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-amzn-trace-id"].startswith("Root=1-")
    assert event["pathParameters"] == {"contact_id": "c 1"}
    assert "body" not in event
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    host = gateway.url.removeprefix("http://")
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == "local"
    assert context["domainName"] == host
    assert context["domainPrefix"] == "127"
    assert context["http"] == {
        "method": "GET",
        "path": "/contacts/c 1",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "curl/8.5.0",
    }
    assert context["stage"] == "$default"
    assert "authorizer" not in context
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", context["time"])
    assert started_ms <= context["timeEpoch"] <= int(time.time() * 1000)
    assert context["requestId"] == reply.header("apigw-requestid")
    assert re.fullmatch(r"[A-Za-z0-9+/]{15}=", context["requestId"])


def test_optional_fields_are_absent_when_empty(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    call(gateway.url, "GET", "/contacts")
    event = invoke.last_event
    for absent in ("cookies", "queryStringParameters", "pathParameters", "body", "stageVariables"):
        assert absent not in event
    assert event["rawQueryString"] == ""


def test_every_request_has_its_own_request_id(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    ids = {call(gateway.url, "GET", "/contacts").header("apigw-requestid") for _ in range(5)}
    assert len(ids) == 5
    assert {e["requestContext"]["requestId"] for _, e in invoke.calls} == ids


def test_host_header_is_the_domain_name_else_the_execute_api_one() -> None:
    gateway = HttpGateway(ROUTES, FakeInvoke(), jwks_url=None, api_id="abc123")
    route = ROUTES.routes[0]
    bare = LocalRequest("GET", "/contacts", {}, {}, b"")
    event = gateway.build_event(route, bare, {}, None, "203.0.113.9")
    assert event["requestContext"]["domainName"] == "abc123.execute-api.us-east-1.amazonaws.com"
    assert event["requestContext"]["domainPrefix"] == "abc123"
    assert event["requestContext"]["apiId"] == "abc123"
    forwarded = LocalRequest("GET", "/contacts", {}, {"x-forwarded-for": "198.51.100.1"}, b"")
    event = gateway.build_event(route, forwarded, {}, None, "203.0.113.9")
    assert event["headers"]["x-forwarded-for"] == "198.51.100.1, 203.0.113.9"


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("application/merge-patch+json", True),
        ("text/plain", True),
        ("text/csv; charset=utf-8", True),
        ("application/xml", True),
        ("application/x-www-form-urlencoded", True),
        ("application/octet-stream", False),
        ("image/png", False),
        ("multipart/form-data; boundary=x", False),
        (None, False),
    ],
)
def test_body_is_base64_unless_textual(content_type: str | None, text: bool) -> None:
    gateway = HttpGateway(ROUTES, FakeInvoke(), jwks_url=None)
    body = '{"name": "Zoë"}'.encode()
    headers = {"content-type": content_type} if content_type else {}
    request = LocalRequest("POST", "/contacts", {}, headers, body)
    event = gateway.build_event(ROUTES.routes[1], request, {}, None, "127.0.0.1")
    assert event["isBase64Encoded"] is not text
    decoded = event["body"].encode() if text else base64.b64decode(event["body"])
    assert decoded == body


def test_a_text_type_body_that_is_not_utf8_goes_as_base64() -> None:
    gateway = HttpGateway(ROUTES, FakeInvoke(), jwks_url=None)
    request = LocalRequest("POST", "/contacts", {}, {"content-type": "text/plain"}, b"\xff\xfe")
    event = gateway.build_event(ROUTES.routes[1], request, {}, None, "127.0.0.1")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe"


def test_a_posted_json_body_reaches_the_function(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    body = json.dumps({"email": "ann@example.com"}).encode()
    call(gateway.url, "POST", "/contacts", headers={"Content-Type": "application/json"}, body=body)
    event = invoke.last_event
    assert event["body"] == body.decode()
    assert event["isBase64Encoded"] is False
    assert event["headers"]["content-length"] == str(len(body))


# The response --------------------------------------------------------------------------------
def answer(payload: Any) -> FakeInvoke:
    return FakeInvoke(lambda _function, _event: InvokeResult(payload=payload))


def test_structured_response_status_headers_cookies_body(gateways: Gateways) -> None:
    payload = {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "ETag": '"3"', "X-Count": 7},
        "cookies": ["session=abc; Path=/; HttpOnly", "theme=dark"],
        "body": '{"id": "c-1"}',
    }
    gateway, _ = gateways(ROUTES, answer(payload))
    reply = call(gateway.url, "POST", "/contacts", body=b"{}")
    assert reply.status == 201
    assert reply.body == b'{"id": "c-1"}'
    assert reply.header("content-type") == "application/json"
    assert reply.header("etag") == '"3"'
    assert reply.header("x-count") == "7"
    assert reply.headers.get_all("set-cookie") == ["session=abc; Path=/; HttpOnly", "theme=dark"]
    assert reply.header("content-length") == str(len(reply.body))
    assert reply.header("apigw-requestid")


def test_base64_body_is_decoded(gateways: Gateways) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x01"
    payload = {
        "statusCode": 200,
        "headers": {"content-type": "image/png"},
        "body": base64.b64encode(png).decode(),
        "isBase64Encoded": True,
    }
    gateway, _ = gateways(ROUTES, answer(payload))
    reply = call(gateway.url, "GET", "/contacts")
    assert (reply.status, reply.body, reply.header("content-type")) == (200, png, "image/png")


@pytest.mark.parametrize(
    ("payload", "body"),
    [
        ({"items": [], "next_cursor": None}, b'{"items": [], "next_cursor": null}'),
        ({"body": "no statusCode"}, b'{"body": "no statusCode"}'),
        ([1, 2], b"[1, 2]"),
        ("Hello from Lambda!", b"Hello from Lambda!"),
        (None, b"null"),
    ],
)
def test_any_other_json_is_a_200_application_json(
    gateways: Gateways, payload: Any, body: bytes
) -> None:
    gateway, _ = gateways(ROUTES, answer(payload))
    reply = call(gateway.url, "GET", "/contacts")
    assert (reply.status, reply.body) == (200, body)
    assert reply.header("content-type") == "application/json"


def test_response_without_content_type_is_text_plain(gateways: Gateways) -> None:
    gateway, _ = gateways(ROUTES, answer({"statusCode": 200, "body": "hi"}))
    reply = call(gateway.url, "GET", "/contacts")
    assert reply.header("content-type") == "text/plain; charset=utf-8"


def test_empty_response_body(gateways: Gateways) -> None:
    gateway, _ = gateways(ROUTES, answer({"statusCode": 204}))
    reply = call(gateway.url, "DELETE", "/contacts/1/notes")
    assert (reply.status, reply.body, reply.header("content-length")) == (204, b"", "0")


def test_multi_value_headers_are_accepted(gateways: Gateways) -> None:
    payload = {"statusCode": 200, "multiValueHeaders": {"X-A": ["1", "2"]}, "body": ""}
    gateway, _ = gateways(ROUTES, answer(payload))
    reply = call(gateway.url, "GET", "/contacts")
    assert reply.headers.get_all("x-a") == ["1", "2"]


@pytest.mark.parametrize(
    "payload",
    [
        {"statusCode": "200", "body": "x"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "not base64!", "isBase64Encoded": True},
        {"statusCode": 200, "headers": ["x"]},
        {"statusCode": 200, "headers": {"x": "a\r\nInjected: 1"}},
        {"statusCode": 200, "cookies": "a=1"},
        {"statusCode": 42},
    ],
)
def test_malformed_response_is_500(gateways: Gateways, payload: dict[str, Any]) -> None:
    lines: list[str] = []
    gateway, _ = gateways(ROUTES, answer(payload), log=lines.append)
    reply = call(gateway.url, "GET", "/contacts")
    assert (reply.status, reply.json()) == (500, {"message": "Internal Server Error"})
    assert reply.header("injected") is None
    assert any("malformed Lambda proxy response" in line for line in lines)


@pytest.mark.parametrize(
    "error",
    [
        {"errorType": "ValueError", "errorMessage": "boom", "stackTrace": []},
        {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 10.00 seconds"},
    ],
)
def test_function_errors_are_500(gateways: Gateways, error: dict[str, Any]) -> None:
    failing = FakeInvoke(lambda _function, _event: InvokeResult(error=error))
    gateway, _ = gateways(ROUTES, failing)
    reply = call(gateway.url, "GET", "/contacts")
    assert (reply.status, reply.json()) == (500, {"message": "Internal Server Error"})
    assert reply.header("apigw-requestid")


def test_a_failing_invoke_machinery_is_500(gateways: Gateways) -> None:
    def broken(_function: str, _event: dict[str, Any]) -> InvokeResult:
        raise RuntimeError("worker died")

    gateway, _ = gateways(ROUTES, FakeInvoke(broken))
    assert call(gateway.url, "GET", "/contacts").status == 500


def test_integration_timeout_is_503_and_the_function_keeps_running(gateways: Gateways) -> None:
    release, finished = threading.Event(), threading.Event()

    def slow(_function: str, _event: dict[str, Any]) -> InvokeResult:
        release.wait(5)
        finished.set()
        return ok()

    gateway, invoke = gateways(ROUTES, FakeInvoke(slow), integration_timeout_s=0.2)
    reply = call(gateway.url, "GET", "/contacts")
    release.set()
    assert (reply.status, reply.json()) == (503, {"message": "Service Unavailable"})
    assert finished.wait(5)
    assert len(invoke.calls) == 1


def test_head_request_gets_headers_only(gateways: Gateways) -> None:
    spec = api(("ANY", "/contacts", "Contacts"))
    gateway, _ = gateways(spec, answer({"statusCode": 200, "body": "abcd"}))
    reply = call(gateway.url, "HEAD", "/contacts")
    assert (reply.status, reply.body, reply.header("content-length")) == (200, b"", "4")


# Payload limits ------------------------------------------------------------------------------
def test_a_body_over_10_mb_is_413_without_invoking(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    reply = call(gateway.url, "POST", "/contacts", body=b"x" * (MAX_REQUEST_BODY + 1))
    assert (reply.status, reply.json()) == (413, {"message": "Request Entity Too Large"})
    assert invoke.calls == []


def test_a_body_under_the_limits_is_delivered(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    body = b"x" * (5 * 1024 * 1024)
    headers = {"Content-Type": "text/plain"}
    assert call(gateway.url, "POST", "/contacts", headers=headers, body=body).status == 200
    assert len(invoke.last_event["body"]) == len(body)


def test_an_event_over_lambdas_6_mb_invoke_limit_is_refused(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    body = b"x" * (7 * 1024 * 1024)  # under API Gateway's 10 MB, over Lambda's 6 MB
    headers = {"Content-Type": "text/plain"}
    reply = call(gateway.url, "POST", "/contacts", headers=headers, body=body)
    assert reply.status == 413
    assert invoke.calls == []


def raw_exchange(gateway: HttpGateway, head: bytes, chunks: tuple[bytes, ...] = ()) -> bytes:
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
        received = b""
        while data := sock.recv(65536):
            received += data
        return received


def test_a_huge_content_length_is_refused_at_once_without_reading(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    started = time.monotonic()
    head = b"POST /contacts HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n"
    received = raw_exchange(gateway, head)  # returns because the gateway closes
    assert received.startswith(b"HTTP/1.1 413 ")
    assert received.endswith(b'{"message":"Request Entity Too Large"}')
    assert time.monotonic() - started < 2
    assert invoke.calls == []


def test_expect_100_continue_with_an_oversized_body_gets_413_first(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    head = (
        b"POST /contacts HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Length: 20000000\r\n\r\n"
    )
    received = raw_exchange(gateway, head)
    assert received.startswith(b"HTTP/1.1 413 ")
    assert invoke.calls == []


def test_a_chunked_body_over_10_mb_is_413(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    head = b"POST /contacts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    piece = b"x" * (1024 * 1024)
    chunks = (b"%x\r\n%s\r\n" % (len(piece), piece),) * 10 + (b"1\r\nx\r\n0\r\n\r\n",)
    received = raw_exchange(gateway, head, chunks)
    assert received.startswith(b"HTTP/1.1 413 ")
    assert invoke.calls == []


def test_a_chunked_body_is_delivered(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    head = (
        b"POST /contacts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    received = raw_exchange(gateway, head, (b'3\r\n{"a\r\n', b'5\r\n": 1}\r\n0\r\n\r\n'))
    assert received.startswith(b"HTTP/1.1 200 ")
    assert invoke.last_event["body"] == '{"a": 1}'


# CORS ----------------------------------------------------------------------------------------
CORS = {
    "AllowOrigins": ["https://app.example"],
    "AllowMethods": ["GET", "POST", "OPTIONS"],
    "AllowHeaders": ["Authorization", "Content-Type", "Idempotency-Key"],
    "ExposeHeaders": ["ETag", "Location"],
    "MaxAge": 600,
    "AllowCredentials": True,
}
CORS_ROUTES = api(("GET", "/contacts", "ListContacts"), cors=CORS)


def preflight(origin: str, method: str = "POST", headers: str = "content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


def test_preflight_is_answered_by_the_gateway(gateways: Gateways) -> None:
    gateway, invoke = gateways(CORS_ROUTES)
    reply = call(gateway.url, "OPTIONS", "/contacts", headers=preflight("https://app.example"))
    assert (reply.status, reply.body) == (204, b"")
    assert reply.header("access-control-allow-origin") == "https://app.example"
    assert reply.header("access-control-allow-methods") == "GET,POST,OPTIONS"
    assert (
        reply.header("access-control-allow-headers") == "authorization,content-type,idempotency-key"
    )
    assert reply.header("access-control-max-age") == "600"
    assert reply.header("access-control-allow-credentials") == "true"
    assert invoke.calls == []


@pytest.mark.parametrize(
    "headers",
    [
        preflight("https://evil.example"),
        preflight("https://app.example", method="DELETE"),
        preflight("https://app.example", headers="x-not-allowed"),
    ],
)
def test_a_refused_preflight_has_no_cors_headers(
    gateways: Gateways, headers: dict[str, str]
) -> None:
    gateway, invoke = gateways(CORS_ROUTES)
    reply = call(gateway.url, "OPTIONS", "/contacts", headers=headers)
    assert reply.status == 204
    assert not [h for h in reply.headers if h.lower().startswith("access-control-")]
    assert invoke.calls == []


def test_actual_request_from_an_allowed_origin_gets_cors_headers(gateways: Gateways) -> None:
    own = {"statusCode": 200, "headers": {"Access-Control-Allow-Origin": "*"}, "body": "x"}
    gateway, _ = gateways(CORS_ROUTES, answer(own))
    reply = call(gateway.url, "GET", "/contacts", headers={"Origin": "https://app.example"})
    assert reply.headers.get_all("access-control-allow-origin") == ["https://app.example"]
    assert reply.header("access-control-expose-headers") == "ETag,Location"
    assert reply.header("access-control-allow-credentials") == "true"
    other = call(gateway.url, "GET", "/contacts", headers={"Origin": "https://evil.example"})
    assert other.header("access-control-allow-origin") is None  # the function's own is dropped
    assert (
        call(gateway.url, "GET", "/nope", headers={"Origin": "https://app.example"}).header(
            "access-control-allow-origin"
        )
        == "https://app.example"
    )


def test_the_templates_wildcard_origin(gateways: Gateways) -> None:
    spec = api(
        ("GET", "/contacts", "ListContacts"),
        cors={"AllowOrigins": ["*"], "AllowMethods": ["GET"], "AllowHeaders": ["Authorization"]},
    )
    gateway, _ = gateways(spec)
    reply = call(gateway.url, "GET", "/contacts", headers={"Origin": "http://localhost:5173"})
    assert reply.header("access-control-allow-origin") == "*"
    assert reply.header("access-control-allow-credentials") is None
    pre = call(
        gateway.url, "OPTIONS", "/contacts", headers=preflight("http://x", "GET", "authorization")
    )
    assert pre.header("access-control-allow-origin") == "*"


def test_without_cors_an_options_request_is_routed(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    reply = call(gateway.url, "OPTIONS", "/contacts", headers=preflight("https://app.example"))
    assert reply.status == 404
    assert invoke.calls == []


# Local pages, logging, concurrency -----------------------------------------------------------
def test_local_pages_are_served_before_routes_without_the_authorizer(gateways: Gateways) -> None:
    seen: list[LocalRequest] = []

    def page(request: LocalRequest) -> tuple[int, dict[str, str], bytes]:
        seen.append(request)
        return 200, {"Content-Type": "text/html"}, f"page {request.path}".encode()

    authorizer = JwtAuthorizerSpec(issuer="https://issuer.example", audience=("client",))
    spec = api(("ANY", "/{proxy+}", "Everything", True), authorizer=authorizer)
    gateway, invoke = gateways(
        spec,
        jwks_url="http://127.0.0.1:9/never-fetched.json",
        local_pages={"/openapi.json": page, "/docs": page, "/_local/": page, "/docs/": page},
    )
    for target in ["/openapi.json", "/docs", "/docs/swagger-ui.css", "/_local/mailbox?x=1"]:
        reply = call(gateway.url, "GET", target, headers={"Accept": "application/json"})
        assert reply.status == 200, target
        assert reply.body == f"page {target.split('?')[0]}".encode()
        assert reply.header("content-type") == "text/html"
    assert seen[-1].query == {"x": ["1"]}
    assert seen[-1].headers["accept"] == "application/json"
    refused = call(gateway.url, "GET", "/openapi.yaml")
    assert refused.status == 401  # routes stay behind the authorizer
    assert refused.header("www-authenticate") == "Bearer"
    assert invoke.calls == []


def test_each_request_is_logged_in_one_line_without_token_or_body(gateways: Gateways) -> None:
    lines: list[str] = []
    failing = FakeInvoke(
        lambda _f, event: (
            InvokeResult(error={"errorType": "KeyError", "errorMessage": "x"})
            if event["rawPath"] == "/contacts/boom"
            else ok()
        )
    )
    gateway, _ = gateways(ROUTES, failing, log=lines.append)
    secret = {"Authorization": "Bearer secret-token"}
    call(gateway.url, "POST", "/contacts?cursor=abc", headers=secret, body=b"secret-body")
    call(gateway.url, "GET", "/contacts/boom", headers=secret)
    call(gateway.url, "GET", "/nowhere")
    assert len(lines) == 3
    assert re.fullmatch(r"POST /contacts 200 \d+ms", lines[0])
    assert re.fullmatch(r"GET /contacts/boom 500 \d+ms \(GetContact: KeyError\)", lines[1])
    assert re.fullmatch(r"GET /nowhere 404 \d+ms", lines[2])
    assert not [line for line in lines if "secret" in line]


def test_requests_are_served_concurrently(gateways: Gateways) -> None:
    barrier = threading.Barrier(2, timeout=5)

    def meet(_function: str, _event: dict[str, Any]) -> InvokeResult:
        barrier.wait()  # breaks (and fails both) unless both invocations run at once
        return ok()

    gateway, invoke = gateways(ROUTES, FakeInvoke(meet))
    statuses: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: statuses.append(call(gateway.url, "GET", "/contacts").status)
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert statuses == [200, 200]
    assert len(invoke.calls) == 2


def test_keep_alive_connections_serve_several_requests(gateways: Gateways) -> None:
    gateway, invoke = gateways(ROUTES)
    connection = http.client.HTTPConnection(gateway.url.removeprefix("http://"), timeout=5)
    try:
        for _ in range(3):
            connection.request("GET", "/contacts")
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"ok")
    finally:
        connection.close()
    assert len(invoke.calls) == 3


def test_authorized_routes_need_a_jwks() -> None:
    authorizer = JwtAuthorizerSpec(issuer="https://issuer.example", audience=("client",))
    with pytest.raises(ValueError, match="authorizer"):
        HttpGateway(
            api(("GET", "/x", "X", True), authorizer=authorizer), FakeInvoke(), jwks_url=None
        )


def test_url_reports_the_real_port(gateways: Gateways) -> None:
    gateway, _ = gateways(ROUTES)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", gateway.url)
    assert not gateway.url.endswith(":0")


def test_stop_frees_the_port() -> None:
    gateway = HttpGateway(ROUTES, FakeInvoke(), jwks_url=None, port=0)
    gateway.start()
    url = gateway.url
    gateway.stop()
    gateway.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        call(url, "GET", "/contacts", timeout=1)


# Throttling ----------------------------------------------------------------------------------
def test_a_route_past_its_throttle_is_429_and_another_route_still_answers(
    gateways: Gateways,
) -> None:
    spec = HttpApiSpec(
        logical_id="HttpApi",
        routes=(
            HttpRoute("POST", "/hooks", "Hook", authorized=False, throttle=Throttle(0.01, 3)),
            HttpRoute("GET", "/things", "Things", authorized=False, throttle=Throttle(100, 200)),
        ),
        authorizer=None,
        cors=None,
    )
    gateway, invoke = gateways(spec)
    statuses = [call(gateway.url, "POST", "/hooks").status for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    refused = call(gateway.url, "POST", "/hooks")
    assert (refused.status, refused.json()) == (429, {"message": "Too Many Requests"})
    assert invoke.functions == ["Hook"] * 3  # a throttled request invokes nothing
    assert [call(gateway.url, "GET", "/things").status for _ in range(5)] == [200] * 5


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(Throttle(rate=2, burst=4), clock=lambda: now[0])
    assert [bucket.take() for _ in range(5)] == [True] * 4 + [False]
    now[0] += 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] += 60  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 4
