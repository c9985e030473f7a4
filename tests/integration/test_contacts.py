"""Contacts as a client sees them: create, read, change, delete, lists, merge, idempotency."""

from __future__ import annotations

from typing import Any

import pytest

from crm_core import keys
from crm_core.ids import is_ulid
from tests.support.api import Api, User
from tests.support.calls import create, get, ids, patch, walk
from tests.support.checks import assert_problem, table_items

ADMIN = User("acme", ("admin",))
SALES = User("acme", ("sales",))
# What a contact's page shows of the deals of a contact that has none.
NO_DEALS = {"open": 0, "won": 0, "won_amount": {}}


def contact(api: Api, **fields: Any) -> dict[str, Any]:
    return create(api, "/contacts", ADMIN, fields)


def company(api: Api, name: str, **fields: Any) -> dict[str, Any]:
    return create(api, "/companies", ADMIN, {"name": name, **fields})


def contact_count(api: Api, company_id: str) -> int:
    count: int = get(api, f"/companies/{company_id}", ADMIN)["contact_count"]
    return count


# Create and read ------------------------------------------------------------------------------
def test_create_answers_201_with_location_etag_and_the_stored_contact(api: Api) -> None:
    reply = api.call("POST", "/contacts", SALES, {"email": "ada@example.com", "first_name": "Ada"})

    assert reply.status == 201, reply.text
    body = reply.json
    assert is_ulid(body["id"])
    assert reply.headers["location"] == f"/contacts/{body['id']}"
    assert reply.headers["etag"] == '"1"'
    assert reply.headers["content-type"] == "application/json"
    assert body["version"] == 1
    assert body["lifecycle_stage"] == "lead"
    assert body["email_consent"] == "unknown"
    assert body["tags"] == []
    assert body["attributes"] == {}
    assert body["other_emails"] == []
    assert body["score"] == 0
    assert body["created_at"] == body["updated_at"]
    assert body["created_at"].endswith("Z")

    got = api.call("GET", reply.headers["location"], SALES)
    assert got.status == 200
    assert got.json == {**body, "deals": NO_DEALS}
    assert got.headers["etag"] == '"1"'


def test_create_normalizes_what_people_type(api: Api) -> None:
    body = contact(
        api,
        email="Ada.Lovelace@Example.COM",
        first_name="  Ada ",
        phone="020 7946 0958",
        country="GB",
        tags=["VIP", "vip ", "Big  Deal", "big deal", "Partner"],
    )

    assert body["email"] == "ada.lovelace@example.com"
    assert body["first_name"] == "Ada"
    assert body["phone"] == "+442079460958"
    assert body["country"] == "GB"
    assert body["tags"] == ["vip", "big deal", "partner"]
    assert get(api, f"/contacts/{body['id']}", ADMIN) == {**body, "deals": NO_DEALS}


def test_a_phone_without_country_or_prefix_is_kept_as_typed(api: Api) -> None:
    body = contact(api, phone=" 555   0100 ")
    assert body["phone"] == "555 0100"
    assert body["email"] is None


def test_phone_with_international_prefix_becomes_e164(api: Api) -> None:
    assert contact(api, phone="+1 (415) 555-0100")["phone"] == "+14155550100"


# Change ------------------------------------------------------------------------------------
def test_patch_changes_only_the_fields_sent_and_counts_versions(api: Api) -> None:
    ada = contact(api, email="ada@example.com", first_name="Ada", title="Engineer")

    reply = api.call(
        "PATCH", f"/contacts/{ada['id']}", SALES, {"title": "CTO"}, headers={"if-match": '"1"'}
    )

    assert reply.status == 200, reply.text
    assert reply.headers["etag"] == '"2"'
    changed = reply.json
    assert changed["title"] == "CTO"
    assert changed["first_name"] == "Ada"
    assert changed["version"] == 2
    assert changed["created_at"] == ada["created_at"]
    assert changed["updated_at"] >= ada["updated_at"]
    assert get(api, f"/contacts/{ada['id']}", ADMIN) == {**changed, "deals": NO_DEALS}


def test_patch_with_weak_or_star_if_match(api: Api) -> None:
    ada = contact(api, email="ada@example.com")
    patch(api, f"/contacts/{ada['id']}", ADMIN, {"title": "A"}, headers={"if-match": 'W/"1"'})
    done = patch(api, f"/contacts/{ada['id']}", ADMIN, {"title": "B"}, headers={"if-match": "*"})
    assert done["version"] == 3


def test_patch_accepts_json_merge_patch_media_type(api: Api) -> None:
    ada = contact(api, email="ada@example.com")
    done = patch(
        api,
        f"/contacts/{ada['id']}",
        ADMIN,
        {"title": "CTO"},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert done["title"] == "CTO"


def test_patch_null_clears_an_optional_field(api: Api) -> None:
    ada = contact(api, email="ada@example.com", phone="+14155550100", title="CTO", country="US")

    done = patch(
        api,
        f"/contacts/{ada['id']}",
        ADMIN,
        {"title": None, "phone": None, "country": None, "tags": None},
    )

    assert done["title"] is None
    assert done["phone"] is None
    assert done["country"] is None
    assert done["tags"] == []
    assert done["email"] == "ada@example.com"
    assert get(api, f"/contacts/{ada['id']}", ADMIN) == {**done, "deals": NO_DEALS}


def test_patch_attributes_merge_and_null_removes_a_key(api: Api) -> None:
    ada = contact(api, email="ada@example.com", attributes={"plan": "pro", "seats": 5, "vip": True})

    done = patch(
        api,
        f"/contacts/{ada['id']}",
        ADMIN,
        {"attributes": {"seats": None, "plan": "team", "nps": 9.5}},
    )

    assert done["attributes"] == {"plan": "team", "vip": True, "nps": 9.5}
    assert get(api, f"/contacts/{ada['id']}", ADMIN)["attributes"] == done["attributes"]


def test_create_drops_attributes_sent_as_null(api: Api) -> None:
    # Create is a patch of nothing: a null attribute means "no such attribute", as in PATCH.
    ada = create(
        api, "/contacts", ADMIN, {"email": "ada@example.com", "attributes": {"x": None, "y": 1}}
    )
    assert ada["attributes"] == {"y": 1}
    assert get(api, f"/contacts/{ada['id']}", ADMIN)["attributes"] == {"y": 1}


def test_patch_normalizes_a_phone_with_the_stored_country(api: Api) -> None:
    ada = contact(api, email="ada@example.com", country="GB")
    done = patch(api, f"/contacts/{ada['id']}", ADMIN, {"phone": "020 7946 0958"})
    assert done["phone"] == "+442079460958"


def test_patch_tags_moves_tag_membership(api: Api) -> None:
    ada = contact(api, email="ada@example.com", tags=["vip", "beta"])
    patch(api, f"/contacts/{ada['id']}", ADMIN, {"tags": ["Beta", "gold"]})

    assert ids(get(api, "/contacts", ADMIN, query={"tag": "vip"})["items"]) == []
    assert ids(get(api, "/contacts", ADMIN, query={"tag": "beta"})["items"]) == [ada["id"]]
    assert ids(get(api, "/contacts", ADMIN, query={"tag": "GOLD"})["items"]) == [ada["id"]]


def test_email_change_moves_uniqueness(api: Api) -> None:
    ada = contact(api, email="ada@example.com")

    patch(api, f"/contacts/{ada['id']}", ADMIN, {"email": "Ada@NewCo.example"})

    reused = contact(api, email="ada@example.com")
    taken = api.call("POST", "/contacts", ADMIN, {"email": "ada@newco.example"})
    body = assert_problem(taken, 409)
    assert body["existing_id"] == ada["id"]
    found = get(api, "/contacts", ADMIN, query={"email": "ADA@newco.example"})
    assert ids(found["items"]) == [ada["id"]]
    found = get(api, "/contacts", ADMIN, query={"email": "ada@example.com"})
    assert ids(found["items"]) == [reused["id"]]


def test_clearing_the_email_frees_it(api: Api) -> None:
    ada = contact(api, email="ada@example.com", phone="+14155550100")
    patch(api, f"/contacts/{ada['id']}", ADMIN, {"email": None})
    assert get(api, "/contacts", ADMIN, query={"email": "ada@example.com"})["items"] == []
    contact(api, email="ada@example.com")


def test_duplicate_email_is_409_naming_the_existing_contact(api: Api, table: Any) -> None:
    ada = contact(api, email="ada@example.com")
    before = table_items(table)

    reply = api.call("POST", "/contacts", SALES, {"email": "ADA@example.COM", "first_name": "A"})

    body = assert_problem(reply, 409)
    assert body["existing_id"] == ada["id"]
    assert table_items(table) == before


# Delete ------------------------------------------------------------------------------------
def test_delete_removes_the_contact_everywhere(api: Api, table: Any) -> None:
    acme = company(api, "Acme")
    ada = contact(
        api, email="ada@example.com", tags=["vip"], owner_id="owner-1", company_id=acme["id"]
    )

    reply = api.call("DELETE", f"/contacts/{ada['id']}", ADMIN, headers={"if-match": '"1"'})

    assert reply.status == 204
    assert reply.text == ""
    assert_problem(api.call("GET", f"/contacts/{ada['id']}", ADMIN), 404)
    for query in (
        {},
        {"tag": "vip"},
        {"owner_id": "owner-1"},
        {"company_id": acme["id"]},
        {"lifecycle_stage": "lead"},
        {"email": "ada@example.com"},
    ):
        assert get(api, "/contacts", ADMIN, query=query)["items"] == [], query
    assert contact_count(api, acme["id"]) == 0
    # Only its events stay behind, until the outbox's TTL removes them.
    left = [i for i in table_items(table) if i["PK"]["S"].startswith("T#acme#C#")]
    assert {i["type"]["S"] for i in left} == {"outbox_event"}
    contact(api, email="ada@example.com")


def test_delete_of_a_missing_contact_is_404(api: Api) -> None:
    ada = contact(api, email="ada@example.com")
    assert api.call("DELETE", f"/contacts/{ada['id']}", ADMIN).status == 204
    assert_problem(api.call("DELETE", f"/contacts/{ada['id']}", ADMIN), 404)


# Lists ---------------------------------------------------------------------------------------
@pytest.fixture
def crowd(api: Api) -> dict[str, Any]:
    """Seven contacts spread over stages, tags, owners, companies."""
    acme, globex = company(api, "Acme")["id"], company(api, "Globex")["id"]
    people = {
        "ada": contact(
            api,
            email="ada@example.com",
            lifecycle_stage="customer",
            tags=["vip"],
            owner_id="owner-1",
            company_id=acme,
        ),
        "bob": contact(
            api,
            email="bob@example.com",
            lifecycle_stage="lead",
            tags=["vip", "beta"],
            owner_id="owner-2",
            company_id=acme,
        ),
        "cy": contact(
            api,
            email="cy@example.com",
            lifecycle_stage="customer",
            tags=["beta"],
            owner_id="owner-1",
            company_id=globex,
        ),
        "di": contact(api, phone="+14155550101", lifecycle_stage="mql", owner_id="owner-1"),
        "ed": contact(
            api, email="ed@example.com", lifecycle_stage="customer", tags=["vip"], company_id=acme
        ),
        "fay": contact(
            api,
            email="fay@example.com",
            lifecycle_stage="lead",
            tags=["vip"],
            owner_id="owner-1",
            company_id=acme,
        ),
        "gus": contact(api, email="gus@example.com", lifecycle_stage="customer", tags=["vip"]),
    }
    return {"acme": acme, "globex": globex, **{k: v["id"] for k, v in people.items()}}


LISTS = [
    ("all", {}, ["ada", "bob", "cy", "di", "ed", "fay", "gus"]),
    ("stage-customer", {"lifecycle_stage": "customer"}, ["ada", "cy", "ed", "gus"]),
    ("stage-lead", {"lifecycle_stage": "lead"}, ["bob", "fay"]),
    ("stage-sql", {"lifecycle_stage": "sql"}, []),
    ("tag-vip", {"tag": "vip"}, ["ada", "bob", "ed", "fay", "gus"]),
    ("tag-beta", {"tag": " Beta "}, ["bob", "cy"]),
    ("owner-1", {"owner_id": "owner-1"}, ["ada", "cy", "di", "fay"]),
    ("company-acme", {"company_id": "{acme}"}, ["ada", "bob", "ed", "fay"]),
    ("company-globex", {"company_id": "{globex}"}, ["cy"]),
    ("email", {"email": "CY@example.com"}, ["cy"]),
    ("email-unknown", {"email": "zed@example.com"}, []),
]


def _query(query: dict[str, str], crowd: dict[str, Any]) -> dict[str, str]:
    return {k: crowd[v[1:-1]] if v.startswith("{") else v for k, v in query.items()}


@pytest.mark.parametrize(
    ("query", "expected"), [(q, e) for _, q, e in LISTS], ids=[name for name, _, _ in LISTS]
)
def test_each_filter_returns_exactly_its_contacts(
    api: Api, crowd: dict[str, Any], query: dict[str, str], expected: list[str]
) -> None:
    page = get(api, "/contacts", ADMIN, query=_query(query, crowd))
    assert sorted(ids(page["items"])) == sorted(crowd[name] for name in expected)
    assert page["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [(q, e) for _, q, e in LISTS if "email" not in q],
    ids=[name for name, q, _ in LISTS if "email" not in q],
)
def test_pagination_walks_every_contact_exactly_once(
    api: Api, crowd: dict[str, Any], query: dict[str, str], expected: list[str]
) -> None:
    pages = walk(api, "/contacts", ADMIN, _query(query, crowd), limit=2)

    seen = [item["id"] for page in pages for item in page]
    assert len(seen) == len(set(seen)), "an item was returned twice"
    assert sorted(seen) == sorted(crowd[name] for name in expected)
    assert all(len(page) == 2 for page in pages[: len(expected) // 2])


def test_company_contacts_pages_walk_every_contact_once(api: Api, crowd: dict[str, Any]) -> None:
    pages = walk(api, f"/companies/{crowd['acme']}/contacts", ADMIN, limit=2)
    seen = [item["id"] for page in pages for item in page]
    assert sorted(seen) == sorted(crowd[n] for n in ("ada", "bob", "ed", "fay"))
    assert len(seen) == len(set(seen))


def test_list_is_newest_update_first(api: Api, crowd: dict[str, Any]) -> None:
    patch(api, f"/contacts/{crowd['cy']}", ADMIN, {"title": "Latest"})
    items = get(api, "/contacts", ADMIN)["items"]
    assert items[0]["id"] == crowd["cy"]
    keys = [(item["updated_at"], item["id"]) for item in items]
    assert keys == sorted(keys, reverse=True)


def test_lists_follow_changes(api: Api, crowd: dict[str, Any]) -> None:
    patch(
        api,
        f"/contacts/{crowd['bob']}",
        ADMIN,
        {"lifecycle_stage": "customer", "owner_id": None, "company_id": crowd["globex"]},
    )

    stage = get(api, "/contacts", ADMIN, query={"lifecycle_stage": "lead"})
    assert ids(stage["items"]) == [crowd["fay"]]
    customers = get(api, "/contacts", ADMIN, query={"lifecycle_stage": "customer"})
    assert crowd["bob"] in ids(customers["items"])
    owner2 = get(api, "/contacts", ADMIN, query={"owner_id": "owner-2"})
    assert owner2["items"] == []
    globex = get(api, "/contacts", ADMIN, query={"company_id": crowd["globex"]})
    assert sorted(ids(globex["items"])) == sorted([crowd["bob"], crowd["cy"]])
    assert contact_count(api, crowd["acme"]) == 3
    assert contact_count(api, crowd["globex"]) == 2


# Merge -----------------------------------------------------------------------------------------
def test_merge_fills_blanks_unions_tags_and_redirects_the_loser(api: Api, table: Any) -> None:
    acme = company(api, "Acme")
    keep = contact(
        api,
        email="sam@example.com",
        first_name="Sam",
        tags=["vip", "beta"],
        attributes={"plan": "pro"},
    )
    lose = contact(
        api,
        email="Sam.Other@example.com",
        first_name="Samuel",
        last_name="Lee",
        phone="+14155550100",
        title="CTO",
        company_id=acme["id"],
        owner_id="owner-9",
        country="US",
        tags=["beta", "gold"],
        attributes={"plan": "free", "seats": 3},
    )

    reply = api.call("POST", f"/contacts/{keep['id']}/merge", ADMIN, {"from_id": lose["id"]})

    assert reply.status == 200, reply.text
    merged = reply.json
    assert reply.headers["etag"] == '"2"'
    assert merged["id"] == keep["id"]
    assert merged["version"] == 2
    assert merged["email"] == "sam@example.com"
    assert merged["first_name"] == "Sam"  # blanks only: the survivor's own value stays
    assert merged["last_name"] == "Lee"
    assert merged["phone"] == "+14155550100"
    assert merged["title"] == "CTO"
    assert merged["company_id"] == acme["id"]
    assert merged["owner_id"] == "owner-9"
    assert merged["country"] == "US"
    assert merged["tags"] == ["vip", "beta", "gold"]
    assert merged["attributes"] == {"plan": "pro", "seats": 3}
    assert merged["other_emails"] == ["sam.other@example.com"]
    assert get(api, f"/contacts/{keep['id']}", ADMIN) == {**merged, "deals": NO_DEALS}

    # The loser's email stays taken, by the survivor, and finds the survivor.
    taken = assert_problem(
        api.call("POST", "/contacts", ADMIN, {"email": "sam.other@example.com"}), 409
    )
    assert taken["existing_id"] == keep["id"]
    found = get(api, "/contacts", ADMIN, query={"email": "sam.other@example.com"})
    assert ids(found["items"]) == [keep["id"]]

    # The loser is gone from every list, and its id redirects to the survivor.
    assert ids(get(api, "/contacts", ADMIN)["items"]) == [keep["id"]]
    assert ids(get(api, "/contacts", ADMIN, query={"tag": "gold"})["items"]) == [keep["id"]]
    assert ids(get(api, "/contacts", ADMIN, query={"tag": "beta"})["items"]) == [keep["id"]]
    moved = api.call("GET", f"/contacts/{lose['id']}", ADMIN)
    body = assert_problem(moved, 308)
    assert moved.headers["location"] == f"/contacts/{keep['id']}"
    assert body["merged_into"] == keep["id"]
    assert contact_count(api, acme["id"]) == 1
    assert [c["id"] for c in get(api, f"/companies/{acme['id']}/contacts", ADMIN)["items"]] == [
        keep["id"]
    ]

    # A merged contact can be neither changed nor merged again.
    for method, path, body_ in (
        ("PATCH", f"/contacts/{lose['id']}", {"title": "x"}),
        ("DELETE", f"/contacts/{lose['id']}", None),
        ("POST", f"/contacts/{keep['id']}/merge", {"from_id": lose["id"]}),
    ):
        before = table_items(table)
        refused = assert_problem(api.call(method, path, ADMIN, body_), 409)
        assert refused["merged_into"] == keep["id"], (method, path)
        assert table_items(table) == before


def test_merge_promotes_the_losers_email_when_the_survivor_has_none(api: Api) -> None:
    keep = contact(api, phone="+14155550100")
    lose = contact(api, email="lee@example.com")

    merged = patch_merge(api, keep["id"], lose["id"])

    assert merged["email"] == "lee@example.com"
    assert merged["other_emails"] == []
    found = get(api, "/contacts", ADMIN, query={"email": "lee@example.com"})
    assert ids(found["items"]) == [keep["id"]]


def patch_merge(api: Api, keep: str, lose: str) -> dict[str, Any]:
    reply = api.call("POST", f"/contacts/{keep}/merge", ADMIN, {"from_id": lose})
    assert reply.status == 200, reply.text
    merged: dict[str, Any] = reply.json
    return merged


@pytest.mark.parametrize(
    ("keep_consent", "lose_consent", "expected"),
    [
        ("subscribed", "unsubscribed", "unsubscribed"),
        ("unsubscribed", "subscribed", "unsubscribed"),
        ("unknown", "subscribed", "subscribed"),
        ("subscribed", "unknown", "subscribed"),
        ("unknown", "unsubscribed", "unsubscribed"),
    ],
)
def test_merge_never_resubscribes(
    api: Api, keep_consent: str, lose_consent: str, expected: str
) -> None:
    keep = contact(api, email="k@example.com", email_consent=keep_consent)
    lose = contact(api, email="l@example.com", email_consent=lose_consent)
    assert patch_merge(api, keep["id"], lose["id"])["email_consent"] == expected


@pytest.mark.parametrize(
    ("keep_in", "lose_in", "counts"),
    [
        ("acme", "acme", {"acme": 1, "globex": 0}),
        (None, "acme", {"acme": 1, "globex": 0}),
        ("globex", "acme", {"acme": 0, "globex": 1}),
        ("acme", None, {"acme": 1, "globex": 0}),
    ],
)
def test_merge_adjusts_company_contact_counts(
    api: Api, keep_in: str | None, lose_in: str | None, counts: dict[str, int]
) -> None:
    companies = {name: company(api, name.title())["id"] for name in ("acme", "globex")}
    keep = contact(
        api, email="k@example.com", **({"company_id": companies[keep_in]} if keep_in else {})
    )
    lose = contact(
        api, email="l@example.com", **({"company_id": companies[lose_in]} if lose_in else {})
    )

    patch_merge(api, keep["id"], lose["id"])

    assert {name: contact_count(api, cid) for name, cid in companies.items()} == counts
    for name, cid in companies.items():
        listed = get(api, f"/companies/{cid}/contacts", ADMIN)["items"]
        assert ids(listed) == ([keep["id"]] if counts[name] else []), name


def test_merge_chain_keeps_every_address(api: Api) -> None:
    a = contact(api, email="a@example.com")
    b = contact(api, email="b@example.com")
    c = contact(api, email="c@example.com")
    patch_merge(api, b["id"], c["id"])
    merged = patch_merge(api, a["id"], b["id"])

    assert merged["other_emails"] == ["b@example.com", "c@example.com"]
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        found = get(api, "/contacts", ADMIN, query={"email": email})
        assert ids(found["items"]) == [a["id"]], email
    # Deleting the survivor frees every address it held.
    assert api.call("DELETE", f"/contacts/{a['id']}", ADMIN).status == 204
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        contact(api, email=email)


def test_promoting_a_merged_address_to_primary(api: Api) -> None:
    keep = contact(api, email="a@example.com")
    lose = contact(api, email="b@example.com")
    patch_merge(api, keep["id"], lose["id"])

    done = patch(api, f"/contacts/{keep['id']}", ADMIN, {"email": "b@example.com"})

    assert done["email"] == "b@example.com"
    assert done["other_emails"] == []
    # What is stored agrees with the answer (the list used to keep the promoted address).
    assert get(api, f"/contacts/{keep['id']}", ADMIN)["other_emails"] == []
    assert ids(get(api, "/contacts", ADMIN, query={"email": "b@example.com"})["items"]) == [
        keep["id"]
    ]
    contact(api, email="a@example.com")


# Idempotency-Key -----------------------------------------------------------------------------
def test_idempotency_key_replays_the_first_response(api: Api, table: Any) -> None:
    key = {"idempotency-key": "7c1e6a52-create-ada"}
    first = api.call("POST", "/contacts", SALES, {"email": "ada@example.com"}, headers=key)
    assert first.status == 201, first.text
    assert first.headers["idempotent-replayed"] == "false"
    before = table_items(table)

    again = api.call("POST", "/contacts", SALES, {"email": "ada@example.com"}, headers=key)

    assert again.status == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json == first.json
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    assert table_items(table) == before
    assert ids(get(api, "/contacts", SALES)["items"]) == [first.json["id"]]


def test_idempotency_keys_are_per_tenant_and_per_route(api: Api) -> None:
    key = {"idempotency-key": "same-key"}
    acme = api.call("POST", "/contacts", ADMIN, {"email": "ada@example.com"}, headers=key)
    globex = api.call(
        "POST", "/contacts", User("globex"), {"email": "ada@example.com"}, headers=key
    )
    co = api.call("POST", "/companies", ADMIN, {"name": "Acme"}, headers=key)

    assert (acme.status, globex.status, co.status) == (201, 201, 201)
    assert acme.json["id"] != globex.json["id"]
    assert globex.headers["idempotent-replayed"] == "false"
    assert co.headers["idempotent-replayed"] == "false"


def test_a_refused_keyed_request_can_be_retried(api: Api) -> None:
    """A failure is not stored: the same key may be used again once the cause is gone."""
    acme = company(api, "Acme", domain="acme.com")
    key = {"idempotency-key": "retry-me"}
    body = {"name": "Acme Again", "domain": "acme.com"}
    assert_problem(api.call("POST", "/companies", ADMIN, body, headers=key), 409)
    assert api.call("DELETE", f"/companies/{acme['id']}", ADMIN).status == 204

    retried = api.call("POST", "/companies", ADMIN, body, headers=key)

    assert retried.status == 201, retried.text
    assert retried.headers["idempotent-replayed"] == "false"


def test_idempotent_merge_replays(api: Api) -> None:
    keep = contact(api, email="k@example.com")
    lose = contact(api, email="l@example.com")
    key = {"idempotency-key": "merge-1"}
    path = f"/contacts/{keep['id']}/merge"
    first = api.call("POST", path, ADMIN, {"from_id": lose["id"]}, headers=key)
    again = api.call("POST", path, ADMIN, {"from_id": lose["id"]}, headers=key)

    assert (first.status, again.status) == (200, 200)
    assert again.json == first.json
    assert again.headers["idempotent-replayed"] == "true"
    assert get(api, f"/contacts/{keep['id']}", ADMIN)["version"] == 2


# Consent: an unsubscribe is the person's, and only their own opt-in reverses it ------------------
MARKETING = User("acme", ("marketing",))
SUPPRESSED_AS_UNSUBSCRIBED = "https://crm.dev/problems/unsubscribed"


def suppression(table: Any, email: str) -> dict[str, Any] | None:
    """The tenant's suppression item of `email`, as stored."""
    item = table.get(keys.suppression("acme", email))
    return None if item is None else dict(item)


def assert_suppressed_as_unsubscribed(table: Any, *emails: str) -> None:
    for email in emails:
        item = suppression(table, email)
        assert item is not None, email
        assert item["unsubscribed_at"], item
        assert item["email"] == email


def assert_refused_as_unsubscribed(reply: Any) -> dict[str, Any]:
    body = assert_problem(reply, 409)
    assert body["type"] == SUPPRESSED_AS_UNSUBSCRIBED, body
    assert "unsubscribed" in body["detail"], body
    assert "opt-in" in body["detail"], body
    assert body["errors"] == [{"loc": ["body", "email_consent"], "msg": body["errors"][0]["msg"]}]
    return body


@pytest.mark.parametrize("user", [ADMIN, SALES, MARKETING], ids=["admin", "sales", "marketing"])
def test_no_role_can_subscribe_an_unsubscribed_contact_again(
    api: Api, table: Any, user: User
) -> None:
    ada = contact(api, email="ada@example.com", email_consent="subscribed")
    # Staff record the person's request: that is an unsubscribe like any other.
    done = patch(api, f"/contacts/{ada['id']}", user, {"email_consent": "unsubscribed"})
    assert done["email_consent"] == "unsubscribed"
    assert_suppressed_as_unsubscribed(table, "ada@example.com")
    before = table_items(table)

    for consent in ("subscribed", "unknown"):
        reply = api.call("PATCH", f"/contacts/{ada['id']}", user, {"email_consent": consent})
        assert_refused_as_unsubscribed(reply)
    # With another change too: nothing of it is written.
    both = api.call(
        "PATCH", f"/contacts/{ada['id']}", user, {"tags": ["x"], "email_consent": "subscribed"}
    )
    assert_refused_as_unsubscribed(both)

    assert table_items(table) == before
    assert get(api, f"/contacts/{ada['id']}", user)["email_consent"] == "unsubscribed"


def test_subscribing_a_contact_who_never_unsubscribed_is_fine(api: Api, table: Any) -> None:
    bob = contact(api, email="bob@example.com")
    assert (
        patch(api, f"/contacts/{bob['id']}", MARKETING, {"email_consent": "subscribed"})[
            "email_consent"
        ]
        == "subscribed"
    )
    assert suppression(table, "bob@example.com") is None


def test_deleting_and_creating_again_does_not_resubscribe(api: Api, table: Any) -> None:
    ada = contact(api, email="ada@example.com", email_consent="subscribed")
    patch(api, f"/contacts/{ada['id']}", ADMIN, {"email_consent": "unsubscribed"})
    assert api.call("DELETE", f"/contacts/{ada['id']}", ADMIN).status == 204
    assert_suppressed_as_unsubscribed(table, "ada@example.com")

    # As subscribed: refused, whatever case the address is typed in; nothing written.
    before = table_items(table)
    for email in ("ada@example.com", "ADA@Example.COM"):
        reply = api.call(
            "POST", "/contacts", SALES, {"email": email, "email_consent": "subscribed"}
        )
        assert_refused_as_unsubscribed(reply)
    assert table_items(table) == before

    # Without consent (or `unknown`): created, and the record says what the person chose.
    again = contact(api, email="ada@example.com", first_name="Ada")
    assert again["email_consent"] == "unsubscribed"
    assert get(api, f"/contacts/{again['id']}", ADMIN)["email_consent"] == "unsubscribed"
    assert api.call("DELETE", f"/contacts/{again['id']}", ADMIN).status == 204
    assert contact(api, email="ada@example.com", email_consent="unknown")["email_consent"] == (
        "unsubscribed"
    )


def test_an_address_suppressed_as_unsubscribed_cannot_be_subscribed_on_another_contact(
    api: Api, table: Any
) -> None:
    ada = contact(api, email="ada@example.com", email_consent="unsubscribed")
    assert_suppressed_as_unsubscribed(table, "ada@example.com")
    assert api.call("DELETE", f"/contacts/{ada['id']}", ADMIN).status == 204
    bob = contact(api, email="bob@example.com")

    # The address and the consent at once: refused.
    reply = api.call(
        "PATCH",
        f"/contacts/{bob['id']}",
        ADMIN,
        {"email": "ada@example.com", "email_consent": "subscribed"},
    )
    assert_refused_as_unsubscribed(reply)
    # The address alone is a change of address (the sender checks the list when it mails);
    # subscribing that address afterwards is refused.
    moved = patch(api, f"/contacts/{bob['id']}", ADMIN, {"email": "ada@example.com"})
    assert moved["email_consent"] == "unknown"
    reply = api.call("PATCH", f"/contacts/{bob['id']}", ADMIN, {"email_consent": "subscribed"})
    assert_refused_as_unsubscribed(reply)
    assert get(api, f"/contacts/{bob['id']}", ADMIN)["email_consent"] == "unknown"


def test_an_unsubscribed_contacts_new_address_is_suppressed_too(api: Api, table: Any) -> None:
    ada = contact(api, email="ada@example.com", email_consent="unsubscribed")
    patch(api, f"/contacts/{ada['id']}", ADMIN, {"email": "ada@work.example.com"})
    assert_suppressed_as_unsubscribed(table, "ada@example.com", "ada@work.example.com")


@pytest.mark.parametrize(
    ("keep_consent", "lose_consent"),
    [("subscribed", "unsubscribed"), ("unsubscribed", "subscribed"), ("unknown", "unsubscribed")],
)
def test_a_merge_that_keeps_an_unsubscribe_suppresses_every_address(
    api: Api, table: Any, keep_consent: str, lose_consent: str
) -> None:
    keep = contact(api, email="k@example.com", email_consent=keep_consent)
    lose = contact(api, email="l@example.com", email_consent=lose_consent)

    merged = patch_merge(api, keep["id"], lose["id"])

    assert merged["email_consent"] == "unsubscribed"
    assert_suppressed_as_unsubscribed(table, "k@example.com", "l@example.com")
    # The survivor stays unsubscribed through the API, and so do its addresses.
    reply = api.call("PATCH", f"/contacts/{keep['id']}", ADMIN, {"email_consent": "subscribed"})
    assert_refused_as_unsubscribed(reply)
    assert api.call("DELETE", f"/contacts/{keep['id']}", ADMIN).status == 204
    for email in ("k@example.com", "l@example.com"):
        assert contact(api, email=email)["email_consent"] == "unsubscribed", email


def test_a_merge_without_an_unsubscribe_suppresses_nothing(api: Api, table: Any) -> None:
    keep = contact(api, email="k@example.com", email_consent="subscribed")
    lose = contact(api, email="l@example.com")
    assert patch_merge(api, keep["id"], lose["id"])["email_consent"] == "subscribed"
    assert suppression(table, "k@example.com") is None
    assert suppression(table, "l@example.com") is None
