"""crm_core.http.guard: a route's authorization and Idempotency-Key in one declaration, and
the signature Powertools reads without the caller."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.errors import Forbidden


def _event(roles: str, path: str = "/things/7") -> dict[str, Any]:
    claims = {"sub": "u1", "custom:tenant_id": "acme", "cognito:groups": roles}
    return {
        "version": "2.0",
        "routeKey": "GET /things/{thing_id}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {},
        "isBase64Encoded": False,
        "requestContext": {
            "http": {"method": "GET", "path": path},
            "stage": "$default",
            "requestId": "r1",
            "authorizer": {"jwt": {"claims": claims, "scopes": []}},
        },
    }


def _app() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.get("/things/<thing_id>")
    @http.guard(app, Action.CONTACT_READ)
    def get_thing(caller: Principal, thing_id: int) -> Response[str]:
        return Response(200, "text/plain", f"{caller.tenant_id}/{caller.user_id}/{thing_id + 1}")

    @app.exception_handler(Forbidden)
    def _forbidden(error: Forbidden) -> Response[str]:
        return http.error_response(error)

    return app


def test_the_route_gets_the_caller_and_its_validated_parameters() -> None:
    answer = _app().resolve(_event("viewer"), {})
    assert (answer["statusCode"], answer["body"]) == (200, "acme/u1/8")


def test_a_caller_without_the_action_is_refused_before_the_route_runs() -> None:
    answer = _app().resolve(_event(""), {})
    assert answer["statusCode"] == 403


def test_the_parameters_powertools_reads_are_the_routes_but_the_caller() -> None:
    app = APIGatewayHttpResolver(enable_validation=True)

    @http.guard(app, None)
    def route(caller: Principal, thing_id: int, limit: http.Limit = 25) -> Response[str]:
        raise AssertionError("not called")

    assert list(inspect.signature(route).parameters) == ["thing_id", "limit"]
    assert route.__name__ == "route"  # the OpenAPI operationId


def test_a_guarded_route_must_take_the_caller_first() -> None:
    app = APIGatewayHttpResolver(enable_validation=True)
    with pytest.raises(TypeError, match="takes `caller` first"):

        @http.guard(app, Action.CONTACT_READ)
        def route(thing_id: int) -> Response[str]:
            raise AssertionError("not called")
