"""The whole CRM through `crm dev`: HTTP in, effects out, as a developer or a client sees it."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from crm_core.ids import new_ulid
from infra.aws import boto_client
from tests.e2e.conftest import ROOT, CloudProcess
from tests.support.api import template_routes

SAMPLE_ULID = new_ulid()


def test_the_readme_session_works(cloud: CloudProcess) -> None:
    token = cloud.token("demo", "sales")
    assert token.count(".") == 2
    assert "\n" not in token
    status, headers, created = cloud.call(
        "POST", "/contacts", token, {"email": "Grace@Example.com", "first_name": "Grace"}
    )
    assert status == 201, created
    assert headers["etag"] == '"1"'
    assert created["email"] == "grace@example.com"
    status, _, page = cloud.call("GET", "/contacts?email=grace@example.com", token)
    assert status == 200
    assert [c["id"] for c in page["items"]] == [created["id"]]


def test_every_template_route_reaches_its_function(cloud: CloudProcess) -> None:
    token = cloud.token("demo", "admin")
    for method, path in template_routes("ContactsFunction"):
        url = path.replace("{contact_id}", SAMPLE_ULID).replace("{company_id}", SAMPLE_ULID)
        body = {} if method in ("POST", "PATCH") else None
        status, headers, reply = cloud.call(method, url, token, body)
        # The function answers (problem+json or JSON); the gateway's own 404 would be
        # {"message": "Not Found"} in application/json.
        assert reply != {"message": "Not Found"}, (method, path)
        assert headers["content-type"] in ("application/json", "application/problem+json")
        assert status in (200, 201, 204, 400, 404, 409, 422), (method, path, status, reply)


def test_the_authorizer_refuses_without_invoking(cloud: CloudProcess) -> None:
    token = cloud.token("demo", "admin")
    header, _payload, signature = token.split(".")
    tampered_claims = jwt.utils.base64url_encode(
        json.dumps(
            {**jwt.decode(token, options={"verify_signature": False}), "custom:tenant_id": "x"}
        ).encode()
    ).decode()
    other_pool = _token_of_another_pool(cloud)
    for bad in (None, "not-a-jwt", f"{header}.{tampered_claims}.{signature}", other_pool):
        status, _headers, reply = cloud.call("GET", "/contacts", bad)
        assert (status, reply) == (401, {"message": "Unauthorized"}), bad


def test_same_email_from_concurrent_requests_makes_one_contact(cloud: CloudProcess) -> None:
    """Conditional writes stay atomic through the local endpoint, across function processes."""
    token = cloud.token("demo", "sales")
    barrier = threading.Barrier(6)
    replies: list[tuple[int, Any]] = []

    def create(i: int) -> None:
        barrier.wait()
        status, _, reply = cloud.call(
            "POST", "/contacts", token, {"email": "race@example.com", "first_name": f"R{i}"}
        )
        replies.append((status, reply))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in replies)
    assert statuses == [201] + [409] * 5, replies
    winner = next(reply for status, reply in replies if status == 201)
    assert all(r["existing_id"] == winner["id"] for s, r in replies if s == 409)


def test_a_new_tenant_and_its_roles(cloud: CloudProcess) -> None:
    created = cloud.crm("tenant", "create", "initech")
    assert created.returncode == 0, created.stderr
    viewer = cloud.token("initech", "viewer")
    status, _, reply = cloud.call("POST", "/contacts", viewer, {"email": "a@initech.example"})
    assert status == 403, reply
    status, _, page = cloud.call("GET", "/contacts", viewer)
    assert (status, page["items"]) == (200, [])  # demo's contacts are not initech's
    added = cloud.crm(
        "user",
        "add",
        "--tenant",
        "initech",
        "--email",
        "bill@initech.example",
        "--role",
        "sales",
        "--password",
        "Bill-Passw0rd!!",
    )
    assert added.returncode == 0, added.stderr
    signed_in = cloud.crm(
        "token",
        "--tenant",
        "initech",
        "--email",
        "bill@initech.example",
        "--password",
        "Bill-Passw0rd!!",
    )
    assert signed_in.returncode == 0, signed_in.stderr
    bill = signed_in.stdout.strip()
    status, _, reply = cloud.call("POST", "/contacts", bill, {"email": "a@initech.example"})
    assert status == 201, reply


def test_crm_invoke_runs_one_event_through_the_runner(cloud: CloudProcess) -> None:
    result = cloud.crm(
        "invoke", "ContactsFunction", "--event", str(ROOT / "events/http/authorized-request.json")
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["error"] is None
    assert outcome["payload"]["statusCode"] == 200
    assert json.loads(outcome["payload"]["body"]) == {"items": [], "next_cursor": None}


def _token_of_another_pool(cloud: CloudProcess) -> str:
    cognito = boto_client("cognito-idp", cloud.running["endpoint_url"])
    pool = cognito.create_user_pool(PoolName="intruders")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="x", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(UserPoolId=pool, Username="eve", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(
        UserPoolId=pool, Username="eve", Password="Eve-Passw0rd!!", Permanent=True
    )
    result = cognito.initiate_auth(
        ClientId=client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "eve", "PASSWORD": "Eve-Passw0rd!!"},
    )
    return str(result["AuthenticationResult"]["IdToken"])


def test_crm_seed_creates_demo_data_through_the_api(cloud: CloudProcess) -> None:
    seed = (
        "seed",
        *("--contacts", "12", "--companies", "3", "--deals", "20", "--cases", "12"),
        *("--tenant", "demo"),
    )
    result = cloud.crm(*seed)
    assert result.returncode == 0, result.stderr
    assert "contacts   [##############################] 12/12" in result.stderr
    assert "deals      [##############################] 20/20" in result.stderr
    token = cloud.token("demo", "viewer")
    status, _, companies = cloud.call("GET", "/companies?limit=100", token)
    assert status == 200
    seeded = [c for c in companies["items"] if c["domain"].endswith(".example.com")]
    assert len(seeded) == 3
    assert sum(c["contact_count"] for c in seeded) > 0
    status, _, page = cloud.call("GET", "/contacts?limit=100", token)
    assert len([c for c in page["items"] if c["email"].endswith("@example.com")]) >= 12
    deals = _seeded_deals(cloud, token)
    _check_the_seeded_pipeline(cloud, token, deals, {c["id"] for c in seeded})
    again = cloud.crm(*seed)
    assert again.returncode == 0, again.stderr  # idempotent: nothing twice
    _, _, companies_again = cloud.call("GET", "/companies?limit=100", token)
    assert len(companies_again["items"]) == len(companies["items"])
    # No deal twice, and no change made again: every deal is at the version it was.
    assert _seeded_deals(cloud, token) == deals
    # A support queue and cases in every state, once.
    status, _, cases = cloud.call("GET", "/cases?limit=100", token)
    assert status == 200, cases
    seeded_cases = [c for c in cases["items"] if "seed_index" in c["attributes"]]
    assert sorted(c["attributes"]["seed_index"] for c in seeded_cases) == list(range(12))
    assert {c["status"] for c in seeded_cases} == {
        "new",
        "open",
        "pending",
        "on_hold",
        "solved",
        "closed",
    }
    _, _, queues = cloud.call("GET", "/queues", token)
    assert [q["name"] for q in queues["items"]] == ["Support"]
    assert all(c["queue_id"] == queues["items"][0]["id"] for c in seeded_cases)


def _seeded_deals(cloud: CloudProcess, token: str) -> dict[int, dict[str, Any]]:
    """The default pipeline's deals `crm seed` made, by their seed_index."""
    found: dict[int, dict[str, Any]] = {}
    cursor = None
    while True:
        status, _, page = cloud.call(
            "GET", "/deals?limit=100" + (f"&cursor={cursor}" if cursor else ""), token
        )
        assert status == 200, page
        for deal in page["items"]:
            if "seed_index" in deal["attributes"]:
                found[deal["attributes"]["seed_index"]] = deal
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def _check_the_seeded_pipeline(
    cloud: CloudProcess, token: str, deals: dict[int, dict[str, Any]], company_ids: set[str]
) -> None:
    """A sales pipeline worth looking at: currencies set, every stage of the default
    pipeline used, several owners and currencies, close dates around today, companies and
    contacts linked, and a history behind most deals."""
    assert sorted(deals) == list(range(20))
    status, _, currencies = cloud.call("GET", "/settings/currencies", token)
    assert status == 200
    assert currencies["base"] == "EUR"
    assert {"USD", "GBP", "JPY"} <= set(currencies["rates"])
    found = list(deals.values())
    assert {d["stage_id"] for d in found} == {
        "qualification",
        "needs-analysis",
        "proposal",
        "negotiation",
        "won",
        "lost",
    }
    assert all(d["lost_reason"]["reason"] for d in found if d["status"] == "lost")
    assert all(d["closing"]["base"] == "EUR" for d in found if d["status"] != "open")
    assert len({d["currency"] for d in found}) >= 3
    assert len({d["owner_id"] for d in found}) >= 3
    today = datetime.now(UTC).date().isoformat()
    assert any(d["close_date"] < today for d in found)
    assert any(d["close_date"] > today for d in found)
    assert {d["company_id"] for d in found if d["company_id"]} <= company_ids
    assert sum(bool(d["contacts"]) for d in found) >= 10
    moved = [d for d in found if d["version"] > 1]
    assert len(moved) >= 10, [d["version"] for d in found]
    changes: set[str] = set()
    for deal in moved:
        status, _, history = cloud.call("GET", f"/deals/{deal['id']}/history", token)
        assert status == 200, history
        assert len(history["items"]) == deal["version"]
        assert history["items"][-1]["action"] == "created"
        changes |= {c["field"] for h in history["items"][:-1] for c in h["changes"]}
    assert {"stage_id", "status", "amount", "close_date", "lost_reason"} <= changes
    status, _, board = cloud.call("GET", "/pipelines/default/board?limit=0", token)
    assert status == 200, board
    assert board["currency"] == "EUR"
    assert not set(board["unconverted"]) & {d["currency"] for d in found}
    assert sum(s["count"] for s in board["stages"]) >= len(found)


def test_a_second_cloud_on_the_same_ports_refuses_clearly(
    cloud: CloudProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = CloudProcess(tmp_path_factory.mktemp("crm-second"))
    for aws_port, api_port in ((cloud.aws_port, other.api_port), (other.aws_port, cloud.api_port)):
        result = other.crm("dev", "--aws-port", str(aws_port), "--api-port", str(api_port))
        assert result.returncode == 2, result.stdout + result.stderr
        assert "is in use" in result.stderr
    status, _, _ = cloud.call("GET", "/contacts", cloud.token())
    assert status == 200  # the first one is unharmed
