"""The emulator's events against the real service's shape (`sam local generate-event`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.local.gateway import HttpGateway, LocalRequest
from infra.topology import HttpRoute
from tests.gateway.support import (
    SAM_SAMPLE,
    FakeInvoke,
    Gateways,
    api,
    call,
    sam_sample_shape,
    shape,
)

ROUTE = HttpRoute(method="POST", path="/contacts/{contact_id}/notes", function="F", authorized=True)
CLAIMS: dict[str, Any] = {
    "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE",
    "client_id": "4abcdefghijklmnopqrstuvwxy",
    "token_use": "access",
    "scope": "aws.cognito.signin.user.admin",
    "cognito:groups": ["sales"],
    "exp": 1583352238,
}


def full_request() -> LocalRequest:
    """A request with everything: query, cookies, a binary body, a path parameter."""
    return LocalRequest(
        method="POST",
        path="/contacts/c-1/notes",
        query={"parameter1": ["value1", "value2"], "parameter2": ["value"]},
        headers={"content-type": "application/octet-stream", "cookie": "cookie1=a; cookie2=b"},
        body=b'{"test":"body"}',
        raw_query="parameter1=value1&parameter1=value2&parameter2=value",
    )


def test_a_built_event_has_the_shape_of_the_sam_sample() -> None:
    gateway = HttpGateway(api(("POST", "/x", "F")), FakeInvoke(), jwks_url=None)
    event = gateway.build_event(ROUTE, full_request(), {"contact_id": "c-1"}, CLAIMS, "1.2.3.4")
    assert shape(event) == sam_sample_shape()
    sample = json.loads(SAM_SAMPLE.read_text())
    assert list(event) == [k for k in sample if k != "stageVariables"]  # the service's order
    assert event["body"] == sample["body"]  # the same bytes, base64 as in the sample
    assert event["isBase64Encoded"] is True
    assert event["queryStringParameters"] == sample["queryStringParameters"]
    assert event["rawQueryString"] == sample["rawQueryString"]
    assert event["requestContext"]["authorizer"]["jwt"]["scopes"] == [
        "aws.cognito.signin.user.admin"
    ]


def test_an_event_from_the_wire_has_the_shape_of_the_sam_sample(gateways: Gateways) -> None:
    gateway, invoke = gateways(api(("POST", "/contacts/{contact_id}/notes", "Notes")))
    call(
        gateway.url,
        "POST",
        "/contacts/c-1/notes?parameter1=value1&parameter1=value2",
        headers={"Cookie": "cookie1=a", "Content-Type": "image/png"},
        body=b"\x89PNG",
    )
    event = invoke.last_event
    # Without an authorizer the event has no `authorizer`; everything else matches.
    expected = sam_sample_shape()
    del expected["requestContext"]["authorizer"]
    assert shape(event) == expected


@pytest.mark.slow
@pytest.mark.skipif(not (Path(sys.executable).parent / "sam").exists(), reason="no sam CLI")
def test_the_saved_sample_is_what_sam_prints() -> None:
    sam = Path(sys.executable).parent / "sam"
    printed = subprocess.run(
        [str(sam), "local", "generate-event", "apigateway", "http-api-proxy"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        timeout=60,
    ).stdout
    assert json.loads(printed) == json.loads(SAM_SAMPLE.read_text())
