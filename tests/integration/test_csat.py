"""The satisfaction link of a solved case: a page that records nothing, a POST that records
the rating once (the case's `satisfaction`, its listing copy and CaseRated in one
transaction), and tokens that cannot be forged, altered, moved to another tenant or used
after they expire."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import pytest

from crm_core import keys
from crm_core.campaigns import unsubscribe_tokens
from crm_core.campaigns.unsubscribe_tokens import TokenKey
from crm_core.cases import csat_tokens
from crm_core.ids import new_ulid
from tests.conftest import load_function
from tests.support.api import ROOT, Api, Reply, User, template_routes
from tests.support.calls import create, get, patch
from tests.support.checks import assert_problem, table_items
from tests.support.events import outbox_events
from tests.support.faults import Meddling

MAX_BODY_BYTES = 24 * 1024  # csat_api/request.py: the largest body read
TENANT = "acme"
ADMIN = User(TENANT, ("admin",), sub="admin-a")
AGENT = User(TENANT, ("support",), sub="agent-a")
FORM = "application/x-www-form-urlencoded"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
JSON = {"accept": "application/json"}


@pytest.fixture(scope="module")
def csat_module(contacts_module: ModuleType) -> ModuleType:
    return load_function("csat")


@pytest.fixture
def link(csat_module: ModuleType, table: Any, mail_setup: dict[str, str]) -> Api:
    """The satisfaction routes as template.yaml declares them (no authorizer)."""
    return Api(csat_module.handler, template_routes("CsatFunction"))


@pytest.fixture
def secret(mail_setup: dict[str, str]) -> bytes:
    """The secret the solved email signs links with: the same KMS key, the csat label."""
    import boto3

    kms = lambda: boto3.client("kms")  # noqa: E731
    return TokenKey(kms, os.environ["CSAT_KEY_ID"], label=csat_tokens.LABEL).secret


def new_case(cases_api: Api, subject: str = "Printer on fire", **fields: Any) -> dict[str, Any]:
    return create(cases_api, "/cases", AGENT, {"subject": subject, **fields})


def solve(cases_api: Api, case: dict[str, Any]) -> dict[str, Any]:
    return patch(cases_api, f"/cases/{case['id']}", AGENT, {"status": "solved"})


@pytest.fixture
def solved(api: Api, cases_api: Api) -> dict[str, Any]:
    contact = create(api, "/contacts", ADMIN, {"email": "ada@example.com"})
    return solve(cases_api, new_case(cases_api, contact_id=contact["id"]))


def page(link: Api, token: str, accept: str = BROWSER) -> Reply:
    return link.call("GET", "/csat", None, query={"token": token}, headers={"accept": accept})


def post_form(link: Api, token: str, fields: dict[str, str] | str, **headers: str) -> Reply:
    body = fields if isinstance(fields, str) else urlencode(fields)
    return link.call(
        "POST",
        "/csat",
        None,
        raw_body=body,
        query={"token": token},
        headers={"content-type": FORM, "accept": BROWSER, **headers},
    )


def post_json(link: Api, token: str, body: Any) -> Reply:
    raw = body if isinstance(body, str) else json.dumps(body)
    headers = {"content-type": "application/json", "accept": "application/json"}
    return link.call("POST", "/csat", None, raw_body=raw, query={"token": token}, headers=headers)


def issue(secret: bytes, case_id: str, tenant: str = TENANT, **kw: Any) -> str:
    return csat_tokens.issue(secret, tenant, case_id, **kw)


def case_items(table: Any, case_id: str) -> dict[str, dict[str, Any]]:
    """The case's item, listing copy and rating, by sort key."""
    found = {}
    for sk in ("CASE", "LISTING", "RATING"):
        item = table.get({"PK": keys.case_partition(TENANT, case_id), "SK": sk})
        if item is not None:
            found[sk] = dict(item)
    return found


def rated_events(table: Any, case_id: str) -> list[dict[str, Any]]:
    return outbox_events(table, keys.case_partition(TENANT, case_id), "CaseRated")


def assert_html_page(reply: Reply, status: int) -> str:
    assert reply.status == status, reply.text
    assert reply.headers["content-type"].startswith("text/html")
    assert reply.headers["content-security-policy"] == CSP
    assert reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["referrer-policy"] == "no-referrer"
    text = reply.text
    assert text.startswith("<!doctype html>")
    # Self-contained: no script, no external resource.
    assert "<script" not in text.lower()
    assert not re.search(r"(src|href)\s*=", text, re.IGNORECASE)
    return text


# GET: the page --------------------------------------------------------------------------
def test_the_page_shows_the_subject_and_the_form_and_records_nothing(
    link: Api, secret: bytes, solved: dict[str, Any], table: Any
) -> None:
    token = issue(secret, solved["id"])
    before = table_items(table)

    text = assert_html_page(page(link, token), 200)

    assert "Printer on fire" in text
    action = re.search(r'<form method="post" action="([^"]+)">', text)
    assert action is not None
    assert action.group(1) == f"?token={token}"
    # Five labelled radio buttons, one required choice, and an optional comment.
    for n in range(1, 6):
        assert f'<label class="score" for="score-{n}">' in text
        assert f'id="score-{n}" name="score" value="{n}" required' in text
    assert "<legend>" in text
    assert '<label for="comment">' in text
    assert '<textarea id="comment" name="comment"' in text
    # Mail scanners follow links: a GET (any number of them) writes nothing.
    page(link, token)
    page(link, token, accept="application/json")
    assert table_items(table) == before


def test_the_page_as_json(link: Api, secret: bytes, solved: dict[str, Any]) -> None:
    reply = page(link, issue(secret, solved["id"]), accept="application/json")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json == {"case": {"subject": "Printer on fire"}, "rated": False}


def test_the_page_escapes_the_subject(link: Api, secret: bytes, cases_api: Api, table: Any) -> None:
    case = solve(cases_api, new_case(cases_api, subject='<script>alert("x")</script> & co'))
    token = issue(secret, case["id"])
    text = assert_html_page(page(link, token), 200)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in text
    assert post_form(link, token, {"score": "3"}).status == 200
    text = assert_html_page(page(link, token), 200)
    assert "&lt;script&gt;" in text


# POST: the rating -----------------------------------------------------------------------
def test_a_rating_is_recorded_once_with_its_event(
    link: Api, secret: bytes, solved: dict[str, Any], cases_api: Api, table: Any
) -> None:
    token = issue(secret, solved["id"])

    reply = post_form(link, token, {"score": "4", "comment": "Quick & kind <3"})

    text = assert_html_page(reply, 200)
    assert "Thank you" in text
    assert "4 of 5" in text
    items = case_items(table, solved["id"])
    case, listing, rating = items["CASE"], items["LISTING"], items["RATING"]
    satisfaction = case["satisfaction"]
    assert satisfaction["score"] == 4
    assert satisfaction["comment"] == "Quick & kind <3"
    assert case["version"] == solved["version"] + 1
    # The listing copy is the same case.
    assert {k: v for k, v in listing.items() if not k.startswith(("GSI", "PK", "SK", "type"))} == {
        k: v for k, v in case.items() if not k.startswith(("GSI", "PK", "SK", "type"))
    }
    assert (rating["score"], rating["comment"]) == (4, "Quick & kind <3")
    assert rating["rated_at"] == satisfaction["rated_at"]
    # The case shows its satisfaction.
    shown = get(cases_api, f"/cases/{solved['id']}", AGENT)
    assert shown["satisfaction"] == satisfaction
    assert shown["version"] == solved["version"] + 1
    (event,) = rated_events(table, solved["id"])
    assert event["detail"]["data"] == {
        "case_id": solved["id"],
        "contact_id": solved["contact_id"],
        "assignee_id": None,
        "score": 4,
        "comment": "Quick & kind <3",
        "rated_at": satisfaction["rated_at"],
    }
    metadata = event["detail"]["metadata"]
    assert metadata["tenant_id"] == TENANT
    assert metadata["actor"] == {"type": "system", "id": "csat"}
    assert metadata["occurred_at"] == satisfaction["rated_at"]


def test_a_second_rating_says_rated_before_and_keeps_the_first(
    link: Api, secret: bytes, solved: dict[str, Any], table: Any
) -> None:
    token = issue(secret, solved["id"])
    assert post_form(link, token, {"score": "5"}).status == 200
    before = table_items(table)

    again = assert_html_page(post_form(link, token, {"score": "1", "comment": "changed"}), 200)
    as_json = post_json(link, token, {"score": 2})
    shown = assert_html_page(page(link, token), 200)

    assert "rated before" in again
    assert "5 of 5" in again
    body = assert_problem(as_json, 409)
    assert body["score"] == 5
    assert "rated before" in body["detail"]
    assert "rated before" in shown
    assert "<form" not in shown
    assert page(link, token, accept="application/json").json == {
        "case": {"subject": "Printer on fire"},
        "rated": True,
        "score": 5,
    }
    assert table_items(table) == before
    assert len(rated_events(table, solved["id"])) == 1


def test_json_rating(link: Api, secret: bytes, solved: dict[str, Any], table: Any) -> None:
    reply = post_json(link, issue(secret, solved["id"]), {"score": 2, "comment": "Slow"})
    assert reply.status == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert reply.json == {"case": {"subject": "Printer on fire"}, "rated": True, "score": 2}
    assert case_items(table, solved["id"])["CASE"]["satisfaction"]["comment"] == "Slow"


def test_an_empty_comment_is_no_comment(
    link: Api, secret: bytes, solved: dict[str, Any], table: Any
) -> None:
    assert post_form(link, issue(secret, solved["id"]), "score=3&comment=+%0D%0A").status == 200
    satisfaction = case_items(table, solved["id"])["CASE"]["satisfaction"]
    assert satisfaction["score"] == 3
    assert "comment" not in satisfaction
    (event,) = rated_events(table, solved["id"])
    assert event["detail"]["data"]["comment"] is None


def test_a_closed_or_reopened_case_may_be_rated(
    link: Api, secret: bytes, cases_api: Api, table: Any
) -> None:
    closed = solve(cases_api, new_case(cases_api))
    patch(cases_api, f"/cases/{closed['id']}", AGENT, {"status": "closed"})
    reopened = solve(cases_api, new_case(cases_api))
    patch(cases_api, f"/cases/{reopened['id']}", AGENT, {"status": "open"})
    for case in (closed, reopened):
        reply = post_json(link, issue(secret, case["id"]), {"score": 4})
        assert reply.status == 200, reply.text


def test_a_case_never_solved_is_refused(
    link: Api, secret: bytes, cases_api: Api, table: Any
) -> None:
    case = new_case(cases_api)
    token = issue(secret, case["id"])
    before = table_items(table)

    body = assert_problem(post_json(link, token, {"score": 5}), 409)
    assert "not solved" in body["detail"]
    assert "not solved" in assert_html_page(post_form(link, token, {"score": "5"}), 409)
    assert "not solved" in assert_problem(page(link, token, "application/json"), 409)["detail"]
    assert table_items(table) == before


def test_a_case_that_does_not_exist_is_404(link: Api, secret: bytes, table: Any) -> None:
    token = issue(secret, new_ulid())
    before = table_items(table)
    assert_problem(post_json(link, token, {"score": 5}), 404)
    assert_html_page(page(link, token), 404)
    assert table_items(table) == before


@pytest.mark.parametrize(
    "body",
    [
        {"score": 0},
        {"score": 6},
        {"score": "4"},
        {"score": 4.0},
        {"score": True},
        {"comment": "no score"},
        {"score": 4, "comment": ""},
        {"score": 4, "comment": "x" * 2001},
        {"score": 4, "extra": 1},
        [4],
    ],
    ids=repr,
)
def test_a_bad_json_rating_is_422_and_records_nothing(
    link: Api, secret: bytes, solved: dict[str, Any], table: Any, body: Any
) -> None:
    before = table_items(table)
    problem = assert_problem(post_json(link, issue(secret, solved["id"]), body), 422)
    assert problem["errors"], problem
    assert table_items(table) == before


@pytest.mark.parametrize(
    "form",
    [
        "score=0",
        "score=6",
        "score=abc",
        "",
        "comment=hi",
        "score=",
        "score=4&score=5",
        "score=" + "9" * 5000,
    ],
    ids=lambda f: f[:20] or "empty",
)
def test_a_bad_form_rating_shows_the_form_again(
    link: Api, secret: bytes, solved: dict[str, Any], table: Any, form: str
) -> None:
    token = issue(secret, solved["id"])
    before = table_items(table)
    text = assert_html_page(post_form(link, token, form), 422)
    assert "Choose a score from 1" in text
    assert '<form method="post"' in text
    assert_problem(post_form(link, token, form, accept="application/json"), 422)
    assert table_items(table) == before


def test_a_body_that_is_not_json_is_400(
    link: Api, secret: bytes, solved: dict[str, Any], table: Any
) -> None:
    assert_problem(post_json(link, issue(secret, solved["id"]), "{score: 4"), 400)


def test_a_body_over_the_limit_is_413(
    link: Api, secret: bytes, solved: dict[str, Any], table: Any
) -> None:
    token = issue(secret, solved["id"])
    before = table_items(table)
    big = "score=4&comment=" + "x" * MAX_BODY_BYTES
    assert_html_page(post_form(link, token, big), 413)
    assert_problem(post_form(link, token, big, accept="application/json"), 413)
    event = link.event("POST", "/csat", None, query={"token": token})
    event["body"], event["isBase64Encoded"] = base64.b64encode(big.encode()).decode(), True
    assert link.send(event).status == 413
    # Refused before the token is even checked.
    assert post_form(link, "forged", big).status == 413
    assert table_items(table) == before
    # At the limit it is fine (the comment is then too long: 422, not 413).
    exact = "score=4&comment=" + "x" * (MAX_BODY_BYTES - 16)
    assert post_form(link, token, exact).status == 422


def test_a_base64_form_is_read(
    link: Api, secret: bytes, solved: dict[str, Any], table: Any
) -> None:
    event = link.event("POST", "/csat", None, query={"token": issue(secret, solved["id"])})
    event["headers"].update({"content-type": FORM, "accept": BROWSER})
    event["body"] = base64.b64encode(b"score=5&comment=caf%C3%A9").decode()
    event["isBase64Encoded"] = True
    assert link.send(event).status == 200
    assert case_items(table, solved["id"])["CASE"]["satisfaction"]["comment"] == "café"


# Concurrency ----------------------------------------------------------------------------
def test_an_agents_change_meanwhile_is_kept(
    link: Api,
    secret: bytes,
    solved: dict[str, Any],
    cases_api: Api,
    table: Any,
    csat_module: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An agent tags the case between the function's read and its write: the write is
    refused on the case's version, read again, and both changes remain."""

    def edit() -> None:
        patch(cases_api, f"/cases/{solved['id']}", AGENT, {"tags": ["vip"]})

    function_table = csat_module.table
    monkeypatch.setattr(function_table, "client", Meddling(function_table.client, edit))

    assert post_form(link, issue(secret, solved["id"]), {"score": "4"}).status == 200

    items = case_items(table, solved["id"])
    assert items["CASE"]["tags"] == ["vip"]
    assert items["CASE"]["satisfaction"]["score"] == 4
    assert items["CASE"]["version"] == solved["version"] + 2
    assert items["LISTING"]["tags"] == ["vip"]
    assert items["LISTING"]["satisfaction"] == items["CASE"]["satisfaction"]
    assert len(rated_events(table, solved["id"])) == 1


def test_two_ratings_at_once_record_the_first(
    link: Api,
    secret: bytes,
    solved: dict[str, Any],
    table: Any,
    csat_module: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another rating lands between the function's read and its write: this one is
    refused by the rating's `attribute_not_exists` and answers the first one's score."""
    from crm_core.cases.satisfaction import Ratings

    def rate_first() -> None:
        Ratings(table).rate(TENANT, solved["id"], 2, "first")

    function_table = csat_module.table
    monkeypatch.setattr(function_table, "client", Meddling(function_table.client, rate_first))

    text = assert_html_page(post_form(link, issue(secret, solved["id"]), {"score": "5"}), 200)

    assert "rated before" in text
    assert "2 of 5" in text
    assert case_items(table, solved["id"])["RATING"]["comment"] == "first"
    (event,) = rated_events(table, solved["id"])
    assert event["detail"]["data"]["score"] == 2


# Tokens ---------------------------------------------------------------------------------
def _altered(token: str, **changes: Any) -> str:
    """The token with its payload changed and its MAC kept."""
    version, payload, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    body = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
    return f"{version}.{body.decode().rstrip('=')}.{mac}"


def bad_tokens(secret: bytes, case_id: str) -> dict[str, str]:
    good = issue(secret, case_id)
    version, payload, mac = good.split(".")
    unsubscribe_secret = TokenKey(
        lambda: __import__("boto3").client("kms"), os.environ["UNSUBSCRIBE_KEY_ID"]
    ).secret
    return {
        "forged": csat_tokens.issue(b"another secret", TENANT, case_id),
        "other tenant": _altered(good, t="globex"),
        "other case": _altered(good, c=new_ulid()),
        "made younger": _altered(good, i=int(time.time()) + 86_400),
        "mac flipped": f"{version}.{payload}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}",
        "unsubscribe label": csat_tokens.issue(unsubscribe_secret, TENANT, case_id),
        "an unsubscribe token": unsubscribe_tokens.issue(unsubscribe_secret, TENANT, case_id, None),
        "truncated": good[:-5],
        "v1": f"v1.{payload}.{mac}",
        "garbage": "hello",
        "too long": good + "A" * 600,
        "empty": "",
    }


def test_bad_tokens_are_a_400_that_says_only_the_link_is_not_valid(
    link: Api, secret: bytes, solved: dict[str, Any], table: Any
) -> None:
    before = table_items(table)
    seen, details = set(), set()
    for name, token in bad_tokens(secret, solved["id"]).items():
        for reply in (page(link, token), post_form(link, token, {"score": "5"})):
            text = assert_html_page(reply, 400)
            assert "not valid" in text, name
            assert "expired" not in text, name
            seen.add(text)
        details.add(assert_problem(post_json(link, token, {"score": 5}), 400)["detail"])
    assert len(seen) == 1  # the same page, whatever failed
    assert len(details) == 1
    assert table_items(table) == before


def test_an_expired_link_is_400_and_may_say_so(
    link: Api, secret: bytes, solved: dict[str, Any], table: Any
) -> None:
    days = csat_tokens.VALID_DAYS * 86_400
    expired = issue(secret, solved["id"], now=time.time() - days - 2)
    before = table_items(table)
    assert "expired" in assert_html_page(page(link, expired), 400)
    assert "expired" in assert_problem(post_json(link, expired, {"score": 5}), 400)["detail"]
    assert table_items(table) == before
    # A day younger, it still works.
    fresh = issue(secret, solved["id"], now=time.time() - days + 86_400)
    assert post_json(link, fresh, {"score": 5}).status == 200


def test_no_token_at_all(link: Api, table: Any, mail_setup: dict[str, str]) -> None:
    assert_problem(link.call("GET", "/csat", None, headers=JSON), 400)
    reply = link.call(
        "POST", "/csat", None, raw_body="score=4", headers={"content-type": FORM, "accept": BROWSER}
    )
    assert_html_page(reply, 400)


def test_a_token_of_one_tenant_never_touches_another(
    link: Api, secret: bytes, solved: dict[str, Any], table: Any
) -> None:
    """The tenant is only the token's: globex's valid token naming acme's case finds no
    such case there."""
    before = table_items(table)
    theirs = issue(secret, solved["id"], tenant="globex")

    assert_problem(post_json(link, theirs, {"score": 1}), 404)
    assert_html_page(post_form(link, theirs, {"score": "1"}), 404)
    assert_html_page(page(link, theirs), 404)

    assert table_items(table) == before


def test_the_token_is_never_logged(
    link: Api, secret: bytes, solved: dict[str, Any], csat_module: ModuleType
) -> None:
    token = issue(secret, solved["id"])
    logger = csat_module.logger
    handler = logger.registered_handler
    level, lines = logger.log_level, io.StringIO()
    stream = handler.setStream(lines)
    logger.setLevel("DEBUG")
    try:
        post_form(link, token, {"score": "4"})
        page(link, token)
        post_form(link, token[:-3] + "xyz", {"score": "4"})
    finally:
        logger.setLevel(level)
        handler.setStream(stream)
    text = lines.getvalue()
    assert '"message":"csat"' in text  # it does log, at info
    assert '"message":"csat refused"' in text
    for part in token.split(".")[1:]:
        assert part not in text


def test_the_event_validates_against_its_schema(
    link: Api, secret: bytes, solved: dict[str, Any], table: Any
) -> None:
    from jsonschema import Draft202012Validator, FormatChecker

    from crm_core.events.catalog import event_type
    from infra.build import catalog

    assert (
        post_json(link, issue(secret, solved["id"]), {"score": 5, "comment": "Great"}).status == 200
    )
    (event,) = rated_events(table, solved["id"])
    model = event_type(event["source"], event["detail-type"])
    assert model is not None
    schema = json.loads((ROOT / catalog.schema_path(model)).read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
    assert not errors, errors
    assert model.model_validate(event["detail"]).model_dump(mode="json") == event["detail"]
