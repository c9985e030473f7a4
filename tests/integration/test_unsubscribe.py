"""The unsubscribe link: a page that never changes anything, a one-click POST that
unsubscribes at once (with ContactUpdated and ContactUnsubscribed in one transaction), and
tokens that cannot be forged, altered, moved to another tenant or used after they expire.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import re
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from crm_core import keys
from crm_core.campaigns import unsubscribe_tokens
from crm_core.campaigns.unsubscribe_tokens import TokenKey
from crm_core.dynamo import from_item
from crm_core.ids import new_ulid
from tests.conftest import load_function
from tests.support.api import ROOT, Api, Reply, User, template_routes
from tests.support.calls import create
from tests.support.checks import assert_problem, table_items
from tests.support.events import delivered
from tests.support.faults import Meddling
from tests.support.lambda_pool import LambdaPool, lambda_pool

TENANT = "acme"
ADMIN = User(TENANT, ("admin",))
FORM = "application/x-www-form-urlencoded"
ONE_CLICK = "List-Unsubscribe=One-Click"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


@pytest.fixture(scope="module")
def unsubscribe_module(contacts_module: ModuleType) -> ModuleType:
    return load_function("unsubscribe")


@pytest.fixture
def link(unsubscribe_module: ModuleType, table: Any, mail_setup: dict[str, str]) -> Api:
    """The unsubscribe routes as template.yaml declares them (no authorizer)."""
    return Api(unsubscribe_module.handler, template_routes("UnsubscribeFunction"))


@pytest.fixture
def secret(mail_setup: dict[str, str]) -> bytes:
    """The secret the sender signs links with: the same KMS key's MAC."""
    import boto3

    return TokenKey(lambda: boto3.client("kms"), os.environ["UNSUBSCRIBE_KEY_ID"]).secret


@pytest.fixture
def ada(api: Api) -> dict[str, Any]:
    return create(
        api, "/contacts", ADMIN, {"email": "ada@example.com", "email_consent": "subscribed"}
    )


def post(link: Api, token: str, body: str | None = ONE_CLICK, **kw: Any) -> Reply:
    # A mailbox provider's POST accepts anything (*/*): it gets the page.
    headers = {"content-type": FORM, "accept": "*/*", **kw.pop("headers", {})}
    return link.call(
        "POST", "/unsubscribe", None, raw_body=body, query={"token": token}, headers=headers, **kw
    )


def page(link: Api, token: str, accept: str = BROWSER) -> Reply:
    return link.call(
        "GET", "/unsubscribe", None, query={"token": token}, headers={"accept": accept}
    )


def contact_item(table: Any, contact_id: str, tenant: str = TENANT) -> dict[str, Any]:
    item = table.get(keys.contact(tenant, contact_id))
    assert item is not None
    return dict(item)


def outbox(table: Any, contact_id: str, tenant: str = TENANT) -> dict[str, list[dict[str, Any]]]:
    """The contact's outbox events by detail-type, oldest first."""
    found: dict[str, list[dict[str, Any]]] = {}
    for raw in table_items(table):
        item = from_item(raw)
        if item["PK"] == keys.contact(tenant, contact_id)["PK"] and item.get("type") == (
            "outbox_event"
        ):
            found.setdefault(item["detail_type"], []).append(json.loads(item["detail"]))
    return found


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
def test_the_page_names_the_masked_address_and_changes_nothing(
    link: Api, secret: bytes, ada: dict[str, Any], table: Any
) -> None:
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], new_ulid())
    before = table_items(table)

    text = assert_html_page(page(link, token), 200)

    assert "a***@example.com" in text
    assert "ada@example.com" not in text
    action = re.search(r'<form method="post" action="([^"]+)">', text)
    assert action is not None
    assert action.group(1) == f"?token={token}"
    assert 'name="List-Unsubscribe" value="One-Click"' in text
    # Mail scanners follow links: a GET (any number of them) writes nothing.
    page(link, token)
    assert table_items(table) == before


def test_the_page_as_json(link: Api, secret: bytes, ada: dict[str, Any]) -> None:
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], None)
    reply = page(link, token, accept="application/json")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json == {"email": "a***@example.com", "unsubscribed": False}


def test_the_page_of_an_unsubscribed_contact_says_so(
    link: Api, secret: bytes, ada: dict[str, Any]
) -> None:
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], None)
    assert post(link, token).status == 200
    text = assert_html_page(page(link, token), 200)
    assert "You are unsubscribed" in text
    assert "<form" not in text


# POST: unsubscribe ----------------------------------------------------------------------
def test_one_click_unsubscribes_at_once_with_both_events(
    link: Api, secret: bytes, ada: dict[str, Any], table: Any
) -> None:
    campaign_id = new_ulid()
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], campaign_id)

    reply = post(link, token)

    text = assert_html_page(reply, 200)
    assert "a***@example.com" in text
    item = contact_item(table, ada["id"])
    assert item["email_consent"] == "unsubscribed"
    assert item["version"] == ada["version"] + 1
    assert item["updated_at"] > ada["updated_at"]
    events = outbox(table, ada["id"])
    (updated,) = events["ContactUpdated"]
    assert updated["data"]["changed"] == ["email_consent"]
    assert updated["data"]["previous"] == {"email_consent": "subscribed"}
    assert updated["data"]["contact"]["email_consent"] == "unsubscribed"
    (unsubscribed,) = events["ContactUnsubscribed"]
    assert unsubscribed["data"] == {
        "contact_id": ada["id"],
        "email": "ada@example.com",
        "link_contact_id": None,
        "campaign_id": campaign_id,
        "method": "one_click",
        "previous_consent": "subscribed",
    }
    assert unsubscribed["metadata"]["tenant_id"] == TENANT
    assert unsubscribed["metadata"]["actor"] == {"type": "system", "id": "unsubscribe"}
    # One transaction: the event happens when the contact changed.
    assert unsubscribed["metadata"]["occurred_at"] == item["updated_at"]
    assert updated["metadata"]["occurred_at"] == item["updated_at"]


def test_the_pages_button_is_the_page_method(
    link: Api, secret: bytes, ada: dict[str, Any], table: Any
) -> None:
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], None)
    reply = post(link, token, body="List-Unsubscribe=One-Click&origin=page")
    assert reply.status == 200, reply.text
    (event,) = outbox(table, ada["id"])["ContactUnsubscribed"]
    assert event["data"]["method"] == "page"
    assert event["data"]["campaign_id"] is None


@pytest.mark.parametrize(
    ("body", "base64_body", "method"),
    [
        (None, False, "page"),
        ("", False, "page"),
        ("anything=else", False, "page"),
        ("%ff%fe=\x00", False, "page"),
        (ONE_CLICK, True, "one_click"),
        ("not base64!", True, "page"),
    ],
)
def test_any_body_unsubscribes_since_the_token_decides(
    link: Api,
    secret: bytes,
    ada: dict[str, Any],
    table: Any,
    body: str | None,
    base64_body: bool,
    method: str,
) -> None:
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], None)
    event = link.event("POST", "/unsubscribe", None, query={"token": token})
    event["headers"]["accept"] = "*/*"
    if body is not None:
        event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
        if body == "not base64!":
            event["body"] = body
        event["isBase64Encoded"] = base64_body
    reply = link.send(event)
    assert reply.status == 200, reply.text
    (unsubscribed,) = outbox(table, ada["id"])["ContactUnsubscribed"]
    assert unsubscribed["data"]["method"] == method


def test_a_repeated_post_writes_nothing(
    link: Api, secret: bytes, ada: dict[str, Any], table: Any
) -> None:
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], new_ulid())
    assert post(link, token).status == 200
    before = table_items(table)

    again = post(link, token)
    json_again = post(link, token, headers={"accept": "application/json"})

    assert_html_page(again, 200)
    assert json_again.status == 200
    assert json_again.json == {"unsubscribed": True, "email": "a***@example.com"}
    assert table_items(table) == before


def test_json_answer(link: Api, secret: bytes, ada: dict[str, Any]) -> None:
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], None)
    reply = post(link, token, headers={"accept": "application/json"})
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json == {"unsubscribed": True, "email": "a***@example.com"}


def test_a_contact_who_never_chose_is_unsubscribed_from_unknown(
    api: Api, link: Api, secret: bytes, table: Any
) -> None:
    bob = create(api, "/contacts", ADMIN, {"email": "bob@example.com"})
    token = unsubscribe_tokens.issue(secret, TENANT, bob["id"], None)
    assert post(link, token).status == 200
    (event,) = outbox(table, bob["id"])["ContactUnsubscribed"]
    assert event["data"]["previous_consent"] == "unknown"


def test_a_merged_contacts_survivor_is_unsubscribed(
    api: Api, link: Api, secret: bytes, table: Any
) -> None:
    keep = create(api, "/contacts", ADMIN, {"email": "sam@example.com"})
    lose = create(
        api, "/contacts", ADMIN, {"email": "sam.other@example.com", "email_consent": "subscribed"}
    )
    merged = api.call("POST", f"/contacts/{keep['id']}/merge", ADMIN, {"from_id": lose["id"]})
    assert merged.status == 200, merged.text
    token = unsubscribe_tokens.issue(secret, TENANT, lose["id"], None)

    reply = post(link, token, headers={"accept": "application/json"})

    assert reply.status == 200, reply.text
    assert reply.json["email"] == "s***@example.com"
    assert contact_item(table, keep["id"])["email_consent"] == "unsubscribed"
    (event,) = outbox(table, keep["id"])["ContactUnsubscribed"]
    assert event["data"]["contact_id"] == keep["id"]
    assert event["data"]["previous_consent"] == "subscribed"  # the merge kept the loser's


def test_a_deleted_contact_answers_200_and_nothing_is_written(
    api: Api, link: Api, secret: bytes, ada: dict[str, Any], table: Any
) -> None:
    assert api.call("DELETE", f"/contacts/{ada['id']}", ADMIN).status == 204
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], None)
    before = table_items(table)

    assert_html_page(post(link, token), 200)
    assert_html_page(page(link, token), 200)
    assert table_items(table) == before


def test_a_test_sends_link_answers_200_and_nothing_is_written(
    link: Api, secret: bytes, ada: dict[str, Any], table: Any
) -> None:
    token = unsubscribe_tokens.issue(secret, TENANT, "test", new_ulid())
    before = table_items(table)
    assert_html_page(page(link, token), 200)
    assert_html_page(post(link, token), 200)
    assert table_items(table) == before


def test_a_concurrent_change_of_the_contact_is_kept(
    link: Api,
    secret: bytes,
    ada: dict[str, Any],
    table: Any,
    unsubscribe_module: ModuleType,
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A person edits the contact between the function's read and its write: the write is
    refused by the contact's guard, read again, and both changes remain."""

    def edit() -> None:
        reply = api.call("PATCH", f"/contacts/{ada['id']}", ADMIN, {"title": "CTO"})
        assert reply.status == 200, reply.text

    function_table = unsubscribe_module.table
    monkeypatch.setattr(function_table, "client", Meddling(function_table.client, edit))
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], None)

    assert post(link, token).status == 200

    item = contact_item(table, ada["id"])
    assert item["title"] == "CTO"
    assert item["email_consent"] == "unsubscribed"
    assert item["version"] == ada["version"] + 2
    assert len(outbox(table, ada["id"])["ContactUnsubscribed"]) == 1


class Recording:
    """A DynamoDB client that keeps the keys each transaction of the function wrote."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.transactions: list[list[str]] = []

    def transact_write_items(self, **params: Any) -> Any:
        written = []
        for part in params["TransactItems"]:
            body = next(iter(part.values()))
            key = body.get("Key") or body.get("Item")
            written.append(key["PK"]["S"])
        self.transactions.append(written)
        return self._client.transact_write_items(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_an_unsubscribe_suppresses_the_address_in_the_same_transaction(
    link: Api,
    secret: bytes,
    ada: dict[str, Any],
    table: Any,
    unsubscribe_module: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recording = Recording(unsubscribe_module.table.client)
    monkeypatch.setattr(unsubscribe_module.table, "client", recording)
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], new_ulid())

    assert post(link, token).status == 200

    suppressed = table.get(keys.suppression(TENANT, "ada@example.com"))
    assert suppressed is not None
    assert suppressed["unsubscribed_at"] == contact_item(table, ada["id"])["updated_at"]
    assert suppressed["reason"] == "unsubscribed"
    (written,) = recording.transactions
    assert keys.contact(TENANT, ada["id"])["PK"] in written
    assert keys.suppression(TENANT, "ada@example.com")["PK"] in written


def test_the_links_of_a_merged_contact_suppress_the_survivors_addresses(
    api: Api, link: Api, secret: bytes, table: Any
) -> None:
    keep = create(api, "/contacts", ADMIN, {"email": "sam@example.com"})
    lose = create(api, "/contacts", ADMIN, {"email": "sam.other@example.com"})
    merged = api.call("POST", f"/contacts/{keep['id']}/merge", ADMIN, {"from_id": lose["id"]})
    assert merged.status == 200, merged.text

    assert post(link, unsubscribe_tokens.issue(secret, TENANT, lose["id"], None)).status == 200

    for email in ("sam@example.com", "sam.other@example.com"):
        item = table.get(keys.suppression(TENANT, email))
        assert item is not None, email
        assert item["unsubscribed_at"], email


# A chain of merges ----------------------------------------------------------------------
def chain_of_merges(api: Api, length: int) -> list[dict[str, Any]]:
    """`length` + 1 contacts, each merged into the next: the first is the oldest link of a
    chain of `length` merges, the last the survivor."""
    people = [
        create(
            api, "/contacts", ADMIN, {"email": f"p{i}@example.com", "email_consent": "subscribed"}
        )
        for i in range(length)
    ]
    people.append(create(api, "/contacts", ADMIN, {"email": "zoe@example.org"}))
    for older, newer in itertools.pairwise(people):
        reply = api.call("POST", f"/contacts/{newer['id']}/merge", ADMIN, {"from_id": older["id"]})
        assert reply.status == 200, reply.text
    return people


def test_a_chain_of_ten_merges_still_unsubscribes_the_survivor(
    api: Api, link: Api, secret: bytes, table: Any
) -> None:
    people = chain_of_merges(api, 10)
    oldest, survivor = people[0], people[-1]
    token = unsubscribe_tokens.issue(secret, TENANT, oldest["id"], new_ulid())

    # The page names the survivor's address.
    assert page(link, token, accept="application/json").json == {
        "email": "z***@example.org",
        "unsubscribed": False,
    }
    assert "z***@example.org" in assert_html_page(page(link, token), 200)
    # A read of the oldest id is redirected straight to the survivor.
    moved = api.call("GET", f"/contacts/{oldest['id']}", ADMIN)
    assert_problem(moved, 308)
    assert moved.headers["location"] == f"/contacts/{survivor['id']}"
    assert moved.json["merged_into"] == survivor["id"]

    reply = post(link, token)

    assert "z***@example.org" in assert_html_page(reply, 200)
    assert contact_item(table, survivor["id"])["email_consent"] == "unsubscribed"
    (event,) = outbox(table, survivor["id"])["ContactUnsubscribed"]
    assert event["data"]["link_contact_id"] == oldest["id"]
    assert page(link, token, accept="application/json").json["unsubscribed"] is True


def test_a_redirect_that_never_ends_is_a_clear_answer_and_changes_nothing(
    api: Api, link: Api, secret: bytes, table: Any
) -> None:
    """No merge makes a cycle; should the table ever hold one, the walk stops with a 409
    that says so, never a 500 nor an endless walk."""
    a, b = chain_of_merges(api, 1)
    # b's item becomes a redirect back to a: a -> b -> a -> ...
    table.transact(
        [
            table.op.put(
                {
                    **keys.contact(TENANT, b["id"]),
                    "type": keys.REDIRECT_ITEM,
                    "id": b["id"],
                    "tenant_id": TENANT,
                    "merged_into": a["id"],
                    "version": 9,
                }
            )
        ]
    )
    token = unsubscribe_tokens.issue(secret, TENANT, a["id"], None)
    before = table_items(table)

    for reply in (
        post(link, token, headers={"accept": "application/json"}),
        page(link, token, accept="application/json"),
        api.call("GET", f"/contacts/{a['id']}", ADMIN),
    ):
        body = assert_problem(reply, 409)
        assert "merge" in body["detail"], body
    assert table_items(table) == before


# Tokens ---------------------------------------------------------------------------------
def _altered(token: str, **changes: Any) -> str:
    """The token with its payload changed and its MAC kept."""
    version, payload, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    body = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
    return f"{version}.{body.decode().rstrip('=')}.{mac}"


def bad_tokens(secret: bytes, contact_id: str) -> dict[str, str]:
    good = unsubscribe_tokens.issue(secret, TENANT, contact_id, None)
    version, payload, mac = good.split(".")
    return {
        "forged": unsubscribe_tokens.issue(b"another secret", TENANT, contact_id, None),
        "other tenant": _altered(good, t="globex"),
        "other contact": _altered(good, c=new_ulid()),
        "mac flipped": f"{version}.{payload}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}",
        "expired": unsubscribe_tokens.issue(
            secret, TENANT, contact_id, None, now=time.time() - 366 * 86_400
        ),
        "truncated": good[:-5],
        "v2": f"v2.{payload}.{mac}",
        "garbage": "hello",
        "too long": good + "A" * 600,
        "empty": "",
    }


def test_bad_tokens_are_a_400_page_that_says_only_the_link_is_not_valid(
    link: Api, secret: bytes, ada: dict[str, Any], table: Any
) -> None:
    before = table_items(table)
    pages = set()
    for name, token in bad_tokens(secret, ada["id"]).items():
        for reply in (page(link, token), post(link, token)):
            text = assert_html_page(reply, 400)
            assert "not valid" in text, name
            assert "expired" not in text, name
            pages.add(text)
    assert len(pages) == 1  # the same page, whatever failed
    assert table_items(table) == before


def test_bad_tokens_as_problem_json(
    link: Api, secret: bytes, ada: dict[str, Any], table: Any
) -> None:
    details = set()
    for token in bad_tokens(secret, ada["id"]).values():
        reply = post(link, token, headers={"accept": "application/json"})
        body = assert_problem(reply, 400)
        details.add(body["detail"])
    assert len(details) == 1
    assert contact_item(table, ada["id"])["email_consent"] == "subscribed"


def test_no_token_at_all(link: Api, table: Any, mail_setup: dict[str, str]) -> None:
    reply = link.call("GET", "/unsubscribe", None, headers={"accept": "application/json"})
    assert_problem(reply, 400)
    reply = link.call("POST", "/unsubscribe", None, raw_body=ONE_CLICK, headers={"accept": "*/*"})
    assert_html_page(reply, 400)


def test_a_token_of_one_tenant_never_touches_another(
    api: Api, link: Api, secret: bytes, ada: dict[str, Any], table: Any
) -> None:
    """The tenant is only the token's: a valid token of another tenant naming acme's
    contact finds no such contact there."""
    before = table_items(table)
    token = unsubscribe_tokens.issue(secret, "globex", ada["id"], None)

    assert post(link, token).status == 200
    assert page(link, token).status == 200

    assert table_items(table) == before
    assert contact_item(table, ada["id"])["email_consent"] == "subscribed"


def test_a_body_over_8_kb_is_413(link: Api, secret: bytes, ada: dict[str, Any], table: Any) -> None:
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], None)
    before = table_items(table)
    big = ONE_CLICK + "&pad=" + "x" * 8192
    assert_html_page(post(link, token, body=big), 413)
    assert_problem(post(link, token, body=big, headers={"accept": "application/json"}), 413)
    event = link.event("POST", "/unsubscribe", None, query={"token": token})
    event["body"], event["isBase64Encoded"] = base64.b64encode(big.encode()).decode(), True
    assert link.send(event).status == 413
    assert table_items(table) == before
    # At the limit it is fine.
    exact = ONE_CLICK + "&pad=" + "x" * (8192 - len(ONE_CLICK) - 5)
    assert len(exact) == 8192
    assert post(link, token, body=exact).status == 200


def test_the_page_escapes_what_it_shows(api: Api, link: Api, secret: bytes, table: Any) -> None:
    odd = create(api, "/contacts", ADMIN, {"email": "&ada@example.com"})
    token = unsubscribe_tokens.issue(secret, TENANT, odd["id"], None)
    text = assert_html_page(page(link, token), 200)
    assert "&amp;***@example.com" in text


def test_the_token_is_never_logged(
    link: Api, secret: bytes, ada: dict[str, Any], unsubscribe_module: ModuleType
) -> None:
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], None)
    logger = unsubscribe_module.logger
    handler = logger.registered_handler
    level, lines = logger.log_level, io.StringIO()
    stream = handler.setStream(lines)
    logger.setLevel("DEBUG")
    try:
        post(link, token)
        page(link, token)
        post(link, token[:-3] + "xyz")
    finally:
        logger.setLevel(level)
        handler.setStream(stream)
    text = lines.getvalue()
    assert '"message":"unsubscribe"' in text  # it does log, at info
    assert '"message":"unsubscribe refused"' in text
    for part in token.split(".")[1:]:
        assert part not in text


def test_the_events_validate_against_their_schemas(
    link: Api, secret: bytes, ada: dict[str, Any], table: Any
) -> None:
    from jsonschema import Draft202012Validator, FormatChecker

    from crm_core.events.catalog import event_type
    from infra.build import catalog

    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], new_ulid())
    assert post(link, token).status == 200
    found = []
    for raw in table_items(table):
        item = from_item(raw)
        if (
            item.get("type") != "outbox_event"
            or item["PK"] != keys.contact(TENANT, ada["id"])["PK"]
        ):
            continue
        if item["detail_type"] not in ("ContactUpdated", "ContactUnsubscribed"):
            continue
        event = delivered(item)
        model = event_type(event["source"], event["detail-type"])
        assert model is not None
        schema = json.loads((ROOT / catalog.schema_path(model)).read_text(encoding="utf-8"))
        validator = Draft202012Validator(schema, format_checker=FormatChecker())
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
        assert not errors, errors
        assert model.model_validate(event["detail"]).model_dump(mode="json") == event["detail"]
        found.append(item["detail_type"])
    assert sorted(found) == ["ContactUnsubscribed", "ContactUpdated"]


# Concurrency: one process per Lambda environment (tests/support/lambda_pool.py) ------------
@pytest.fixture(scope="module")
def pool(contacts_module: ModuleType) -> Iterator[LambdaPool]:
    with lambda_pool("unsubscribe") as running:
        yield running


def test_clicks_at_once_unsubscribe_once(
    link: Api, secret: bytes, ada: dict[str, Any], table: Any, pool: LambdaPool
) -> None:
    """The mailbox provider's one-click and the page's button (twice), all at once: one
    change of the contact, one ContactUnsubscribed, every answer a 200."""
    token = unsubscribe_tokens.issue(secret, TENANT, ada["id"], new_ulid())
    events = []
    for body in (ONE_CLICK, ONE_CLICK, "List-Unsubscribe=One-Click&origin=page", ""):
        event = link.event("POST", "/unsubscribe", None, raw_body=body, query={"token": token})
        event["headers"].update({"content-type": FORM, "accept": "*/*"})
        events.append(event)
    events.append(link.event("GET", "/unsubscribe", None, query={"token": token}))

    replies = pool.together(events)

    assert [r.status for r in replies] == [200] * len(events)
    item = contact_item(table, ada["id"])
    assert item["email_consent"] == "unsubscribed"
    assert item["version"] == ada["version"] + 1
    found = outbox(table, ada["id"])
    assert len(found["ContactUnsubscribed"]) == 1
    assert len(found["ContactUpdated"]) == 1
