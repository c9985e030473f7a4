"""The JWT authorizer: real tokens from a local Cognito (moto server), and forged ones."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.utilities.utils import load_resource

from infra.local.gateway import HttpGateway, JwtVerifier, Unauthorized, claim_text
from infra.topology import JwtAuthorizerSpec
from tests.gateway.support import Gateways, LocalCognito, api, call, sam_sample_shape, shape

# moto signs every pool's tokens with one RSA key it ships (kid "dummy"). Signing with it
# forges a token that differs from a valid one only in the claims a test changes.
MOTO_KEY = jwt.PyJWK(load_resource("cognitoidp/resources/jwks-private.json")).key
OWN_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def forge(claims: dict[str, Any], key: Any = MOTO_KEY, kid: str = "dummy") -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


LOG: list[str] = []


@pytest.fixture
def authorized(gateways: Gateways, cognito: LocalCognito) -> tuple[HttpGateway, Any]:
    spec = api(
        ("GET", "/contacts", "ListContacts", True),
        ("GET", "/public", "Public", False),
        authorizer=JwtAuthorizerSpec(issuer=cognito.issuer, audience=(cognito.client_id,)),
    )
    LOG.clear()
    return gateways(spec, jwks_url=cognito.jwks_url, log=LOG.append)


def test_a_valid_id_token_reaches_the_function_with_string_claims(
    authorized: tuple[HttpGateway, Any], cognito: LocalCognito
) -> None:
    gateway, invoke = authorized
    reply = call(
        gateway.url, "GET", "/contacts", headers={"Authorization": f"Bearer {cognito.id_token}"}
    )
    assert reply.status == 200
    jwt_context = invoke.last_event["requestContext"]["authorizer"]["jwt"]
    claims = jwt_context["claims"]
    token_claims = claims_of(cognito.id_token)
    assert claims["custom:tenant_id"] == "acme"
    # moto lists a user's groups in no fixed order; the flattening keeps the token's order.
    assert claims["cognito:groups"] == "[" + " ".join(token_claims["cognito:groups"]) + "]"
    assert sorted(claims["cognito:groups"][1:-1].split()) == ["admin", "sales"]
    assert claims["token_use"] == "id"
    assert claims["aud"] == cognito.client_id
    assert claims["iss"] == cognito.issuer
    assert claims["exp"] == str(token_claims["exp"])
    assert claims["iat"] == str(token_claims["iat"])
    assert all(isinstance(value, str) for value in claims.values())
    assert set(claims) == set(token_claims)
    assert jwt_context["scopes"] is None


def test_the_bearer_prefix_is_optional(
    authorized: tuple[HttpGateway, Any], cognito: LocalCognito
) -> None:
    gateway, invoke = authorized
    reply = call(gateway.url, "GET", "/contacts", headers={"Authorization": cognito.id_token})
    assert reply.status == 200
    assert len(invoke.calls) == 1


def test_an_access_token_is_checked_on_client_id_and_carries_scopes(
    authorized: tuple[HttpGateway, Any], cognito: LocalCognito
) -> None:
    gateway, invoke = authorized
    headers = {"Authorization": f"Bearer {cognito.access_token}"}
    assert call(gateway.url, "GET", "/contacts", headers=headers).status == 200
    jwt_context = invoke.last_event["requestContext"]["authorizer"]["jwt"]
    assert jwt_context["claims"]["client_id"] == cognito.client_id
    groups = claims_of(cognito.access_token)["cognito:groups"]
    assert jwt_context["claims"]["cognito:groups"] == "[" + " ".join(groups) + "]"
    assert jwt_context["scopes"] == ["aws.cognito.signin.user.admin"]


def test_an_authorized_event_has_the_shape_of_the_sam_sample(
    authorized: tuple[HttpGateway, Any], cognito: LocalCognito
) -> None:
    gateway, invoke = authorized
    call(
        gateway.url,
        "GET",
        "/contacts?tag=a&tag=b",
        headers={"Authorization": f"Bearer {cognito.access_token}", "Cookie": "a=1; b=2"},
        body=b"\x00binary",
    )
    event = invoke.last_event
    event["pathParameters"] = {"contact_id": "c-1"}  # the route has none; the shape does
    assert shape(event) == sam_sample_shape()


def test_a_route_without_authorization_needs_no_token(
    authorized: tuple[HttpGateway, Any],
) -> None:
    gateway, invoke = authorized
    assert call(gateway.url, "GET", "/public").status == 200
    assert "authorizer" not in invoke.last_event["requestContext"]


def _expired(c: LocalCognito) -> str:
    claims = claims_of(c.id_token)
    return forge({**claims, "iat": claims["iat"] - 7200, "exp": int(time.time()) - 1})


def _not_yet_valid(c: LocalCognito) -> str:
    return forge({**claims_of(c.id_token), "nbf": int(time.time()) + 600})


def _issued_in_the_future(c: LocalCognito) -> str:
    return forge({**claims_of(c.id_token), "iat": int(time.time()) + 600})


def _without_token_use(c: LocalCognito) -> str:
    claims = claims_of(c.id_token)
    del claims["token_use"]
    return forge(claims)


def _hs256(c: LocalCognito) -> str:
    # The classic confusion attack: HMAC keyed with the public key's text.
    return jwt.encode(
        claims_of(c.id_token), "dummy-public-key-as-secret" * 2, "HS256", {"kid": "dummy"}
    )


REFUSED: dict[str, tuple[Callable[[LocalCognito], str | None], str | None]] = {
    "missing": (lambda c: None, None),
    "empty": (lambda c: "", None),
    "bearer without token": (lambda c: "Bearer ", None),
    "malformed": (lambda c: "Bearer not-a-jwt", "the token is malformed"),
    "three garbage parts": (lambda c: "Bearer a.b.c", "the token is malformed"),
    "expired": (lambda c: f"Bearer {_expired(c)}", "the token has expired"),
    "wrong signature": (
        lambda c: f"Bearer {forge(claims_of(c.id_token), key=OWN_KEY)}",
        "the token signature is invalid",
    ),
    "tampered": (
        lambda c: "Bearer " + _tamper(c.id_token),
        "the token signature is invalid",
    ),
    "unknown key id": (
        lambda c: f"Bearer {forge(claims_of(c.id_token), key=OWN_KEY, kid='rotated')}",
        "the token was not signed by a key of the issuer",
    ),
    "another pool": (
        lambda c: f"Bearer {c.other_pool_id_token}",
        "the token does not have a valid issuer",
    ),
    "another app client": (
        lambda c: f"Bearer {c.other_client_id_token}",
        "the token does not have a valid audience",
    ),
    "not yet valid": (lambda c: f"Bearer {_not_yet_valid(c)}", "the token is not valid yet"),
    "issued in the future": (
        lambda c: f"Bearer {_issued_in_the_future(c)}",
        "the token is not valid yet",
    ),
    "no token_use": (
        lambda c: f"Bearer {_without_token_use(c)}",
        "the token is neither an ID nor an access token",
    ),
    "HS256": (lambda c: f"Bearer {_hs256(c)}", "the token's signing algorithm is not supported"),
}


def _tamper(token: str) -> str:
    """The same token with `custom:tenant_id` changed and the original signature kept."""
    header, _, signature = token.split(".")
    claims = {**claims_of(token), "custom:tenant_id": "someone-else"}
    payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{header}.{payload}.{signature}"


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_bad_or_missing_token_is_401_and_the_function_is_not_invoked(
    authorized: tuple[HttpGateway, Any], cognito: LocalCognito, case: str
) -> None:
    gateway, invoke = authorized
    make_header, description = REFUSED[case]
    value = make_header(cognito)
    headers = {} if value is None else {"Authorization": value}
    reply = call(gateway.url, "GET", "/contacts", headers=headers)
    assert (reply.status, reply.json()) == (401, {"message": "Unauthorized"})
    assert reply.header("content-type") == "application/json"
    assert reply.header("apigw-requestid")
    expected = (
        "Bearer"
        if description is None
        else f'Bearer scope="" error="invalid_token" error_description="{description}"'
    )
    assert reply.header("www-authenticate") == expected
    assert invoke.calls == []
    assert len(LOG) == 1
    assert LOG[0].startswith("GET /contacts 401 ")
    sent = (value or "").removeprefix("Bearer ").strip()
    assert not sent or sent not in LOG[0]


# JwtVerifier alone, against a JWKS this test controls -----------------------------------
class Jwks:
    """A JWKS endpoint whose keys a test can rotate; counts fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": list(jwks.keys.values())}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def add(self, kid: str) -> Any:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        self.keys[kid] = {**public, "kid": kid, "alg": "RS256", "use": "sig"}
        return key


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    served = Jwks()
    yield served
    served.server.shutdown()
    served.server.server_close()


SPEC = JwtAuthorizerSpec(issuer="https://issuer.example", audience=("web", "mobile"))


def token(key: Any, kid: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": SPEC.issuer, "aud": "web", "token_use": "id", "iat": now, "exp": now + 60}
    payload = {k: v for k, v in {**body, **claims}.items() if v is not None}  # None: no claim
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def test_keys_are_cached_and_fetched_again_for_an_unknown_key_id(jwks: Jwks) -> None:
    first = jwks.add("k1")
    verifier = JwtVerifier(SPEC, jwks.url, refetch_interval_s=0)
    for _ in range(3):
        verifier.verify(f"Bearer {token(first, 'k1')}")
    assert jwks.fetches == 1
    rotated = jwks.add("k2")
    assert verifier.verify(token(rotated, "k2"))["iss"] == SPEC.issuer
    assert jwks.fetches == 2


def test_unknown_key_ids_do_not_hammer_the_issuer(jwks: Jwks) -> None:
    key = jwks.add("k1")
    verifier = JwtVerifier(SPEC, jwks.url, refetch_interval_s=60)
    verifier.verify(token(key, "k1"))
    for kid in ("x", "y", "z"):
        with pytest.raises(Unauthorized):
            verifier.verify(token(key, kid))
    assert jwks.fetches == 1


def test_an_unreachable_jwks_refuses_and_is_retried(jwks: Jwks) -> None:
    key = jwks.add("k1")
    verifier = JwtVerifier(SPEC, "http://127.0.0.1:9/jwks.json", fetch_timeout_s=1)
    with pytest.raises(Unauthorized, match="signing keys are unavailable"):
        verifier.verify(token(key, "k1"))
    verifier.jwks_url = jwks.url
    assert verifier.verify(token(key, "k1"))["aud"] == "web"


@pytest.mark.parametrize(
    ("claims", "accepted"),
    [
        ({"aud": "mobile"}, True),
        ({"aud": ["other", "web"]}, True),
        ({"aud": "other"}, False),
        ({"aud": "other", "client_id": "web"}, False),  # aud wins when both are present
        ({"aud": None, "client_id": "web", "token_use": "access"}, True),
        ({"iss": "https://issuer.example/"}, False),
        ({"exp": int(time.time()) - 1}, False),
        ({"nbf": int(time.time()) + 2}, True),  # within the clock leeway
        ({"token_use": "refresh"}, False),
    ],
)
def test_claim_rules(jwks: Jwks, claims: dict[str, Any], accepted: bool) -> None:
    verifier = JwtVerifier(SPEC, jwks.url)
    signed = token(jwks.add("k1"), "k1", **claims)
    if accepted:
        assert verifier.verify(signed)["iss"] == claims.get("iss", SPEC.issuer)
    else:
        with pytest.raises(Unauthorized):
            verifier.verify(signed)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("acme", "acme"),
        (["admin", "sales"], "[admin sales]"),
        (["solo"], "[solo]"),
        ([], "[]"),
        (1583352238, "1583352238"),
        (1583352238.0, "1583352238"),
        (True, "true"),
        ({"b": 1, "a": "x"}, "map[a:x b:1]"),
    ],
)
def test_claims_become_strings_as_api_gateway_writes_them(value: Any, text: str) -> None:
    assert claim_text(value) == text
