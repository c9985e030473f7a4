"""The signed webhook: every signature case, bodies of every kind, repeated deliveries.

A refused delivery stores nothing: each refusal test checks the table holds no lead, no
claim and no event afterwards.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_core import keys
from crm_core.leads import signature
from crm_core.leads.intake import MAX_BODY_BYTES
from crm_core.strict_json import MAX_DEPTH
from tests.support.api import Api, User
from tests.support.aws_calls import count_calls
from tests.support.lambda_pool import lambda_pool
from tests.support.leads import FORM, Webhook, create_source

ADMIN = User("acme", ("admin",))
LEAD = {"email": "ada@example.com", "first_name": "Ada", "utm_source": "google"}
MISMATCH = signature.MISMATCH


@pytest.fixture
def source(lead_api: Api) -> dict[str, Any]:
    return create_source(lead_api, ADMIN)


def stored_leads(table: Any) -> list[dict[str, Any]]:
    """Every item a delivery can write: leads, claims and their events (tests only scan)."""
    from crm_core.dynamo import from_item

    items = [from_item(i) for i in table.client.scan(TableName=table.name)["Items"]]
    return [
        i for i in items if "#LEAD#" in i["PK"] or "#DELIVERY#" in i["PK"] or "#EXT#" in i["PK"]
    ]


def assert_refused(reply: Any, status: int, table: Any, detail: str | None = None) -> None:
    assert reply.status == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    problem = reply.json
    assert problem["status"] == status
    assert problem["title"]
    assert problem["type"]
    if detail is not None:
        assert problem["detail"] == detail
    assert stored_leads(table) == []


# Accepted ------------------------------------------------------------------------------
def test_a_signed_json_lead_is_stored_with_its_event(
    webhook: Webhook, source: dict[str, Any], table: Any
) -> None:
    body = json.dumps(LEAD, indent=1).encode()
    reply = webhook.post(source["id"], body, source["secret"])
    assert reply.status == 202, reply.text
    lead_id = reply.json["lead_id"]
    assert reply.headers["idempotent-replayed"] == "false"
    lead = table.get(keys.lead("acme", lead_id))
    assert lead is not None
    assert lead["payload"] == body.decode()  # exactly as sent, whitespace included
    assert lead["status"] == "accepted"
    assert lead["source_id"] == source["id"]
    assert lead["content_type"] == "application/json"
    assert lead["size_bytes"] == len(body)
    events = [i for i in stored_leads(table) if i.get("type") == "outbox_event"]
    assert len(events) == 1
    assert events[0]["PK"] == keys.lead("acme", lead_id)["PK"]
    detail = json.loads(events[0]["detail"])
    assert events[0]["detail_type"] == "LeadReceived"
    assert events[0]["source"] == "crm.leads"
    assert detail["data"]["lead_id"] == lead_id
    assert detail["data"]["source_id"] == source["id"]
    assert detail["metadata"]["actor"] == {"type": "lead_source", "id": source["id"]}
    assert "ada@example.com" not in events[0]["detail"]  # the payload stays in the table


def test_form_encoded_and_unicode_bodies(
    webhook: Webhook, source: dict[str, Any], table: Any
) -> None:
    form = "email=j%C3%BCrgen%40example.de&first_name=J%C3%BCrgen&interest=a&interest=b"
    reply = webhook.post(source["id"], form, source["secret"], content_type=FORM)
    assert reply.status == 202, reply.text
    assert table.get(keys.lead("acme", reply.json["lead_id"]))["payload"] == form

    unicode = json.dumps({"email": "zoë@example.com", "name": "Zoë 李 🚀"}, ensure_ascii=False)
    reply = webhook.post(
        source["id"], unicode, source["secret"], content_type="application/json; charset=utf-8"
    )
    assert reply.status == 202, reply.text
    assert table.get(keys.lead("acme", reply.json["lead_id"]))["payload"] == unicode


def test_a_base64_encoded_body_is_verified_on_its_bytes(
    webhook: Webhook, source: dict[str, Any], table: Any
) -> None:
    reply = webhook.post(source["id"], LEAD, source["secret"], base64_body=True)
    assert reply.status == 202, reply.text


def test_a_body_at_the_limit_is_accepted(webhook: Webhook, source: dict[str, Any]) -> None:
    padding = MAX_BODY_BYTES - len(json.dumps({**LEAD, "notes": ""}).encode())
    body = json.dumps({**LEAD, "notes": "x" * padding}).encode()
    assert len(body) == MAX_BODY_BYTES
    assert webhook.post(source["id"], body, source["secret"]).status == 202


@pytest.mark.parametrize("skew", [-299, 0, 299])
def test_timestamps_within_tolerance(webhook: Webhook, source: dict[str, Any], skew: int) -> None:
    reply = webhook.post(source["id"], LEAD, source["secret"], timestamp=int(time.time()) + skew)
    assert reply.status == 202, reply.text


def test_one_good_signature_among_several_is_enough(
    webhook: Webhook, source: dict[str, Any]
) -> None:
    t = int(time.time())
    body = json.dumps(LEAD).encode()
    good = signature.sign(source["secret"], t, body)
    header = f"t={t},v1={'0' * 64},v0=legacy,v1={good}"
    assert webhook.post(source["id"], body, None, header=header).status == 202


# Refused: signatures ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        "",
        "v1=" + "a" * 64,
        "t=1700000000",
        "t=abc,v1=" + "a" * 64,
        "t=1700000000,v1=nothex",
        "t=1700000000,v1=" + "a" * 63,
        "t=1,t=2,v1=" + "a" * 64,
        "garbage",
        "t=" + "9" * 13 + ",v1=" + "a" * 64,
        "x" * 2000,
    ],
)
def test_malformed_signatures_are_401(
    webhook: Webhook, source: dict[str, Any], table: Any, header: str
) -> None:
    reply = webhook.post(source["id"], LEAD, None, header=header)
    assert_refused(reply, 401, table, signature.MALFORMED)


def test_a_missing_signature_is_401(webhook: Webhook, source: dict[str, Any], table: Any) -> None:
    assert_refused(webhook.post(source["id"], LEAD, None), 401, table, signature.MALFORMED)


@pytest.mark.parametrize("skew", [-301, 301, -86_400])
def test_timestamps_out_of_tolerance_are_401(
    webhook: Webhook, source: dict[str, Any], table: Any, skew: int
) -> None:
    reply = webhook.post(source["id"], LEAD, source["secret"], timestamp=int(time.time()) + skew)
    assert_refused(reply, 401, table, signature.STALE)


def test_wrong_secret_tampered_body_and_unknown_sources_look_alike(
    webhook: Webhook, source: dict[str, Any], lead_api: Api, table: Any
) -> None:
    """One answer for every way a signature fails, so nothing tells which part was wrong."""
    sid, secret = source["id"], source["secret"]
    t = int(time.time())
    body = json.dumps(LEAD).encode()
    tampered_header = signature.header(secret, t, body)
    other = create_source(lead_api, ADMIN, name="Other")
    disabled = create_source(lead_api, ADMIN, name="Gone")
    assert lead_api.call("DELETE", f"/lead-sources/{disabled['id']}", ADMIN).status == 204
    valid_later = signature.header(secret, t + 1, body)
    # Its last hex digit changed (to "0" it would stay valid one time in 16).
    wrong_digit = valid_later[:-1] + ("1" if valid_later.endswith("0") else "0")
    replies = [
        webhook.post(sid, body, "whsec_" + "A" * 43),
        webhook.post(sid, body, other["secret"]),  # another source's secret
        webhook.post(sid, body.replace(b"Ada", b"Eve"), None, header=tampered_header),
        webhook.post(sid, body, None, header=wrong_digit),
        webhook.post("01ARZ3NDEKTSV4RRFFQ69G5FAV", body, secret),  # unknown source
        webhook.post("not-a-source", body, secret),
        webhook.post(other["id"], body, secret),  # right secret, wrong source
        webhook.post(disabled["id"], body, disabled["secret"]),
    ]
    for reply in replies:
        assert_refused(reply, 401, table, MISMATCH)
    assert len({r.text for r in replies}) == 1


def test_rotation_accepts_both_secrets_then_only_the_new(
    webhook: Webhook, source: dict[str, Any], lead_api: Api, table: Any, lead_sources_module: Any
) -> None:
    sid, old = source["id"], source["secret"]
    new = lead_api.call("POST", f"/lead-sources/{sid}/rotate-secret", ADMIN).json["secret"]
    assert webhook.post(sid, {**LEAD, "n": 1}, old).status == 202
    assert webhook.post(sid, {**LEAD, "n": 2}, new).status == 202

    # Rotated again as if a day and a minute ago: the secret before it has expired by now.
    sources = __import__("lead_sources_api.context", fromlist=["sources"]).sources
    earlier = datetime.now(UTC) - timedelta(hours=24, minutes=1)
    _, newest = sources.rotate("acme", sid, None, now=earlier)
    assert webhook.post(sid, {**LEAD, "n": 3}, newest).status == 202
    refused = webhook.post(sid, {**LEAD, "n": 4}, new)
    assert refused.status == 401
    assert refused.json["detail"] == MISMATCH
    assert webhook.post(sid, {**LEAD, "n": 5}, old).status == 401


# Refused: bodies -------------------------------------------------------------------------
def test_a_huge_body_is_413(webhook: Webhook, source: dict[str, Any], table: Any) -> None:
    body = json.dumps({**LEAD, "notes": "x" * MAX_BODY_BYTES}).encode()
    assert_refused(webhook.post(source["id"], body, source["secret"]), 413, table)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data; boundary=x", "application/xml", ""]
)
def test_other_media_types_are_415(
    webhook: Webhook, source: dict[str, Any], table: Any, content_type: str
) -> None:
    reply = webhook.post(source["id"], LEAD, source["secret"], content_type=content_type)
    assert_refused(reply, 415, table)


def _nested(depth: int) -> bytes:
    """A JSON object `depth` levels deep."""
    return b'{"a": ' * (depth - 1) + b"{}" + b"}" * (depth - 1)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"   ", "application/json"),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"a string"', "application/json"),
        (b'{"email": "\\ud800"}', "application/json"),
        (b"[" * 100_000, "application/json"),
        # Not JSON by RFC 8259, though Python reads it; and what no JSON number can hold.
        (b'{"email": "ada@example.com", "score": NaN}', "application/json"),
        (b'{"email": "ada@example.com", "score": Infinity}', "application/json"),
        (b'{"email": "ada@example.com", "score": -Infinity}', "application/json"),
        (b'{"email": "ada@example.com", "score": 1e400}', "application/json"),
        (b'{"email": "ada@example.com", "id": ' + b"7" * 5000 + b"}", "application/json"),
        (b'{"email": "ada@example.com", "x": ' + _nested(MAX_DEPTH) + b"}", "application/json"),
        (b"", FORM),
        (b"email=%FF%FE", FORM),
        (b'{"external_id": "' + b"x" * 300 + b'"}', "application/json"),
    ],
)
def test_unreadable_bodies_are_400(
    webhook: Webhook, source: dict[str, Any], table: Any, body: bytes, content_type: str
) -> None:
    reply = webhook.post(source["id"], body, source["secret"], content_type=content_type)
    assert_refused(reply, 400, table)


def test_nesting_at_the_bound_is_accepted_and_the_refusal_says_the_bound(
    webhook: Webhook, source: dict[str, Any], table: Any
) -> None:
    at_bound = b'{"email": "ada@example.com", "x": ' + _nested(MAX_DEPTH - 1) + b"}"
    assert webhook.post(source["id"], at_bound, source["secret"]).status == 202
    over = b'{"email": "bob@example.com", "x": ' + _nested(MAX_DEPTH) + b"}"
    reply = webhook.post(source["id"], over, source["secret"])
    assert reply.status == 400, reply.text
    assert reply.json["detail"] == f"the body is nested deeper than {MAX_DEPTH} levels"


def test_a_body_that_is_not_utf8_is_400(
    webhook: Webhook, source: dict[str, Any], table: Any
) -> None:
    body = b'{"email": "\xff@example.com"}'
    reply = webhook.post(source["id"], body, source["secret"], base64_body=True)
    assert_refused(reply, 400, table)


def test_an_unsigned_huge_or_mistyped_body_is_refused_before_any_read(
    webhook: Webhook, source: dict[str, Any], table: Any, lead_webhook_module: Any
) -> None:
    """Size and type are checked first, then the header: none of them reads the table."""
    with count_calls(lead_webhook_module.table.client) as calls:
        webhook.post(source["id"], b"x" * (MAX_BODY_BYTES + 1), None)
        webhook.post(source["id"], LEAD, None, content_type="text/plain")
        webhook.post(source["id"], LEAD, None)
        webhook.post(source["id"], LEAD, source["secret"], timestamp=1)
    assert calls.count == 0


# Repeated deliveries ---------------------------------------------------------------------
def test_the_same_delivery_twice_is_one_lead(
    webhook: Webhook, source: dict[str, Any], table: Any
) -> None:
    t = int(time.time())
    first = webhook.post(source["id"], LEAD, source["secret"], timestamp=t)
    again = webhook.post(source["id"], LEAD, source["secret"], timestamp=t)
    assert first.status == again.status == 202
    assert again.json == first.json
    assert again.headers["idempotent-replayed"] == "true"
    leads = [i for i in stored_leads(table) if i.get("type") == "lead"]
    assert len(leads) == 1
    # Signed again a second later, the same body is a new delivery (a form sent twice).
    later = webhook.post(source["id"], LEAD, source["secret"], timestamp=t + 1)
    assert later.status == 202
    assert later.json != first.json


def test_the_same_external_id_is_one_lead(
    webhook: Webhook, source: dict[str, Any], table: Any
) -> None:
    first = webhook.post(source["id"], {**LEAD, "external_id": "sub-42"}, source["secret"])
    changed = {**LEAD, "first_name": "Ada L.", "external_id": "sub-42"}
    again = webhook.post(source["id"], changed, source["secret"], timestamp=int(time.time()) + 5)
    assert again.status == 202
    assert again.json == first.json
    # Numbers are ids too; another source may use the same id for its own lead.
    assert webhook.post(source["id"], {**LEAD, "external_id": 42}, source["secret"]).status == 202
    assert len([i for i in stored_leads(table) if i.get("type") == "lead"]) == 2


def test_the_mapped_external_id_path_is_used(webhook: Webhook, lead_api: Api, table: Any) -> None:
    source = create_source(lead_api, ADMIN, field_map={"external_id": "meta.id"})
    body = {**LEAD, "external_id": "ignored", "meta": {"id": "m-1"}}
    first = webhook.post(source["id"], body, source["secret"])
    body2 = {**LEAD, "external_id": "other", "meta": {"id": "m-1"}}
    again = webhook.post(source["id"], body2, source["secret"], timestamp=int(time.time()) + 1)
    assert again.json == first.json
    lead = table.get(keys.lead("acme", first.json["lead_id"]))
    assert lead["external_id"] == "m-1"


def test_concurrent_copies_of_one_delivery_are_one_lead(
    webhook: Webhook, source: dict[str, Any], table: Any
) -> None:
    """Six copies at once, each in its own execution environment (process)."""
    t = int(time.time())
    body = json.dumps(LEAD).encode()
    header = signature.header(source["secret"], t, body)
    event = webhook.api.event(
        "POST",
        f"/webhooks/leads/{source['id']}",
        None,
        raw_body=body.decode(),
        headers={signature.HEADER: header},
    )
    with lambda_pool("lead_webhook") as pool:
        answers = pool.together([event] * 6)
    assert {a.status for a in answers} == {202}, [a.text for a in answers]
    assert len({a.json["lead_id"] for a in answers}) == 1
    assert sorted(a.headers["idempotent-replayed"] for a in answers) == ["false"] + ["true"] * 5
    assert len([i for i in stored_leads(table) if i.get("type") == "lead"]) == 1


# Cost -------------------------------------------------------------------------------------
def test_a_delivery_costs_one_read_and_one_write(
    webhook: Webhook, source: dict[str, Any], table: Any, lead_webhook_module: Any
) -> None:
    """Once the secret is cached: GetItem of the route, one TransactWriteItems."""
    kms = lead_webhook_module.intake.box.kms
    webhook.post(source["id"], {**LEAD, "n": 0}, source["secret"])  # opens the secret
    with count_calls(lead_webhook_module.table.client, kms) as calls:
        for n in range(1, 4):
            assert webhook.post(source["id"], {**LEAD, "n": n}, source["secret"]).status == 202
    assert calls.by_operation == {"GetItem": 3, "TransactWriteItems": 3}
