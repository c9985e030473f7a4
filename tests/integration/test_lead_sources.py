"""Lead sources over the HTTP API: admin only, the secret shown once and stored sealed,
rotation with 24 h for the previous secret, disable keeping history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_core import keys
from tests.support.api import Api, User
from tests.support.leads import create_source

ADMIN = User("acme", ("admin",))


def test_create_returns_the_secret_once(lead_api: Api, table: Any) -> None:
    reply = lead_api.call(
        "POST",
        "/lead-sources",
        ADMIN,
        {
            "name": "Website",
            "field_map": {"email": "contact.email", "attributes.budget": "answers.0.value"},
            "default_tags": ["Web"],
            "default_owner_id": "owner-1",
        },
    )
    assert reply.status == 201, reply.text
    source = reply.json
    assert source["secret"].startswith("whsec_")
    assert len(source["secret"]) > 40
    assert source["status"] == "active"
    assert source["webhook_path"] == f"/webhooks/leads/{source['id']}"
    assert source["default_tags"] == ["web"]
    assert reply.headers["location"] == f"/lead-sources/{source['id']}"
    assert reply.headers["etag"] == '"1"'

    again = lead_api.call("GET", f"/lead-sources/{source['id']}", ADMIN)
    assert again.status == 200
    assert "secret" not in again.json
    assert source["secret"] not in again.text
    listed = lead_api.call("GET", "/lead-sources", ADMIN).json
    assert [s["id"] for s in listed["items"]] == [source["id"]]
    assert source["secret"] not in str(listed)


def test_the_secret_is_stored_sealed(lead_api: Api, table: Any) -> None:
    source = create_source(lead_api, ADMIN)
    stored = [
        table.get(keys.lead_source("acme", source["id"])),
        table.get(keys.lead_source_route(source["id"])),
    ]
    assert all(stored)
    assert source["secret"] not in str(stored)
    route = stored[1]
    assert route is not None
    assert route["tenant_id"] == "acme"
    assert len(route["secrets"]) == 1
    assert route["secrets"][0]["sealed"]


def test_a_sealed_secret_opens_only_for_its_own_source(
    lead_api: Api, table: Any, lead_sources_module: Any
) -> None:
    """The encryption context binds a ciphertext to its tenant and source."""
    from botocore.exceptions import ClientError

    box = __import__("lead_sources_api.context", fromlist=["box"]).box
    one, other = create_source(lead_api, ADMIN), create_source(lead_api, ADMIN)
    sealed = table.get(keys.lead_source_route(one["id"]))["secrets"][0]["sealed"]
    assert box.open("acme", one["id"], sealed) == one["secret"]
    with pytest.raises(ClientError):
        box.open("acme", other["id"], sealed)
    with pytest.raises(ClientError):
        box.open("other-tenant", one["id"], sealed)


def test_an_idempotent_replay_does_not_repeat_the_secret(lead_api: Api, table: Any) -> None:
    body = {"name": "Partner"}
    headers = {"Idempotency-Key": "create-partner-1"}
    first = lead_api.call("POST", "/lead-sources", ADMIN, body, headers=headers)
    replay = lead_api.call("POST", "/lead-sources", ADMIN, body, headers=headers)
    assert first.status == replay.status == 201
    assert first.json["secret"]
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json["id"] == first.json["id"]
    assert replay.json["secret"] is None
    # The stored replay record holds no secret either.
    records = table.client.scan(TableName=table.name)["Items"]
    assert first.json["secret"] not in str(records)


@pytest.mark.parametrize("role", ["sales", "marketing", "support", "viewer"])
def test_only_admins_manage_lead_sources(lead_api: Api, table: Any, role: str) -> None:
    source = create_source(lead_api, ADMIN)
    user = User("acme", (role,))
    sid = source["id"]
    for method, path, body in [
        ("POST", "/lead-sources", {"name": "x"}),
        ("GET", "/lead-sources", None),
        ("GET", f"/lead-sources/{sid}", None),
        ("PATCH", f"/lead-sources/{sid}", {"name": "y"}),
        ("DELETE", f"/lead-sources/{sid}", None),
        ("POST", f"/lead-sources/{sid}/rotate-secret", None),
        ("GET", f"/lead-sources/{sid}/deliveries", None),
    ]:
        reply = lead_api.call(method, path, user, body)
        assert reply.status == 403, (method, path, reply.text)
        assert reply.headers["content-type"] == "application/problem+json"


def test_another_tenants_source_is_not_found(lead_api: Api, table: Any) -> None:
    source = create_source(lead_api, ADMIN)
    intruder = User("globex", ("admin",))
    sid = source["id"]
    for method, path, body in [
        ("GET", f"/lead-sources/{sid}", None),
        ("PATCH", f"/lead-sources/{sid}", {"name": "mine now"}),
        ("DELETE", f"/lead-sources/{sid}", None),
        ("POST", f"/lead-sources/{sid}/rotate-secret", None),
        ("GET", f"/lead-sources/{sid}/deliveries", None),
    ]:
        reply = lead_api.call(method, path, intruder, body)
        assert reply.status == 404, (method, path, reply.text)
    assert lead_api.call("GET", "/lead-sources", intruder).json["items"] == []
    unchanged = lead_api.call("GET", f"/lead-sources/{sid}", ADMIN).json
    assert unchanged["name"] == "Website"
    assert unchanged["status"] == "active"


def test_patch_changes_what_is_sent_and_honours_if_match(lead_api: Api, table: Any) -> None:
    source = create_source(lead_api, ADMIN, default_owner_id="owner-1")
    path = f"/lead-sources/{source['id']}"
    reply = lead_api.call(
        "PATCH",
        path,
        ADMIN,
        {"field_map": {"external_id": "meta.submission"}, "default_owner_id": None},
        headers={"If-Match": '"1"'},
    )
    assert reply.status == 200, reply.text
    assert reply.json["field_map"] == {"external_id": "meta.submission"}
    assert reply.json["default_owner_id"] is None
    assert reply.json["name"] == "Website"
    assert reply.headers["etag"] == '"2"'
    route = table.get(keys.lead_source_route(source["id"]))
    assert route["external_id_path"] == "meta.submission"
    stale = lead_api.call("PATCH", path, ADMIN, {"name": "x"}, headers={"If-Match": '"1"'})
    assert stale.status == 412


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"name": "Web", "secret": "whsec_mine"},
        {"name": "Web", "id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"},
        {"name": "Web", "field_map": {"favourite_colour": "colour"}},
        {"name": "Web", "field_map": {"email": "a..b"}},
        {"name": "Web", "field_map": {"email": ".".join(["a"] * 9)}},
        {"name": "Web", "field_map": {"email": "$.x"}},
        {"name": "Web", "field_map": {f"attributes.a{i}": "x" for i in range(51)}},
        {"name": "Web", "default_tags": ["x" * 200]},
        {"name": "Web", "default_owner_id": "no spaces please"},
        {"name": ["Web"]},
    ],
)
def test_bad_sources_are_refused(lead_api: Api, table: Any, body: dict[str, Any]) -> None:
    reply = lead_api.call("POST", "/lead-sources", ADMIN, body)
    assert reply.status == 422, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert lead_api.call("GET", "/lead-sources", ADMIN).json["items"] == []


def test_patch_refuses_nulls_and_empty_patches(lead_api: Api, table: Any) -> None:
    path = f"/lead-sources/{create_source(lead_api, ADMIN)['id']}"
    for body in ({}, {"name": None}, {"field_map": None}, {"secret": "x"}, {"status": "active"}):
        assert lead_api.call("PATCH", path, ADMIN, body).status == 422, body


def test_disable_keeps_the_source_and_its_history(lead_api: Api, table: Any) -> None:
    source = create_source(lead_api, ADMIN)
    path = f"/lead-sources/{source['id']}"
    assert lead_api.call("DELETE", path, ADMIN).status == 204
    assert lead_api.call("DELETE", path, ADMIN).status == 204  # already disabled: the same
    shown = lead_api.call("GET", path, ADMIN).json
    assert shown["status"] == "disabled"
    assert shown["disabled_at"]
    route = table.get(keys.lead_source_route(source["id"]))
    assert route["status"] == "disabled"
    assert "secrets" not in route
    assert lead_api.call("POST", f"{path}/rotate-secret", ADMIN).status == 409
    assert lead_api.call("GET", f"{path}/deliveries", ADMIN).status == 200


def test_rotation_keeps_the_previous_secret_for_24_hours(lead_api: Api, table: Any) -> None:
    source = create_source(lead_api, ADMIN)
    path = f"/lead-sources/{source['id']}"
    reply = lead_api.call("POST", f"{path}/rotate-secret", ADMIN)
    assert reply.status == 200, reply.text
    rotated = reply.json
    assert rotated["secret"] != source["secret"]
    assert rotated["secret"].startswith("whsec_")
    rotated_at = datetime.fromisoformat(rotated["secret_rotated_at"])
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert expires - rotated_at == timedelta(hours=24)
    assert rotated["version"] == 2
    route = table.get(keys.lead_source_route(source["id"]))
    assert [bool(s.get("expires_at")) for s in route["secrets"]] == [False, True]
    assert rotated["secret"] not in str(route)
    assert source["secret"] not in str(route)

    # A second rotation keeps only the newest two: the first secret is gone at once.
    third = lead_api.call("POST", f"{path}/rotate-secret", ADMIN).json
    route = table.get(keys.lead_source_route(source["id"]))
    assert len(route["secrets"]) == 2
    box = __import__("lead_sources_api.context", fromlist=["box"]).box
    opened = [box.open("acme", source["id"], s["sealed"]) for s in route["secrets"]]
    assert opened == [third["secret"], rotated["secret"]]
    assert datetime.fromisoformat(third["secret_rotated_at"]) > datetime.now(UTC) - timedelta(
        minutes=1
    )


def test_lists_page_in_creation_order(lead_api: Api, table: Any) -> None:
    made = [create_source(lead_api, ADMIN, name=f"Source {n}")["id"] for n in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = lead_api.call("GET", "/lead-sources", ADMIN, query=query).json
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == made
    bad = lead_api.call("GET", "/lead-sources", ADMIN, query={"cursor": "garbage"})
    assert bad.status == 400
