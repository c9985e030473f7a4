"""Companies as a client sees them: unique domains, name listing, their contacts and counts."""

from __future__ import annotations

from typing import Any

import pytest

from crm_core.ids import is_ulid
from tests.support.api import Api, User
from tests.support.calls import create, get, ids, patch, walk
from tests.support.checks import assert_problem, table_items

ADMIN = User("acme", ("admin",))
SALES = User("acme", ("sales",))
# What a company's page shows of the deals of a company that has none.
NO_DEALS = {"open": 0, "won": 0, "won_amount": {}}


def company(api: Api, name: str, **fields: Any) -> dict[str, Any]:
    return create(api, "/companies", ADMIN, {"name": name, **fields})


def contact(api: Api, **fields: Any) -> dict[str, Any]:
    return create(api, "/contacts", ADMIN, fields)


def count(api: Api, company_id: str) -> int:
    value: int = get(api, f"/companies/{company_id}", ADMIN)["contact_count"]
    return value


def test_create_answers_201_with_location_etag_and_normalized_fields(api: Api) -> None:
    reply = api.call(
        "POST",
        "/companies",
        SALES,
        {
            "name": "  Acme Inc. ",
            "domain": "https://www.Acme.COM/x",
            "country": "US",
            "phone": "(415) 555-0100",
            "employee_count": 120,
            "industry": "Anvils",
            "tags": ["Enterprise", "enterprise"],
            "attributes": {"tier": 1},
        },
    )

    assert reply.status == 201, reply.text
    body = reply.json
    assert is_ulid(body["id"])
    assert reply.headers["location"] == f"/companies/{body['id']}"
    assert reply.headers["etag"] == '"1"'
    assert body["name"] == "Acme Inc."
    assert body["domain"] == "acme.com"
    assert body["country"] == "US"
    assert body["phone"] == "+14155550100"
    assert body["employee_count"] == 120
    assert body["tags"] == ["enterprise"]
    assert body["attributes"] == {"tier": 1}
    assert body["contact_count"] == 0
    assert body["version"] == 1
    got = api.call("GET", f"/companies/{body['id']}", ADMIN)
    assert got.status == 200
    assert got.json == {**body, "deals": NO_DEALS}
    assert got.headers["etag"] == '"1"'


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://www.Acme.COM/x", "acme.com"),
        ("ACME.com", "acme.com"),
        ("http://shop.acme.co.uk:8080/?q=1", "shop.acme.co.uk"),
        ("www.example.org.", "example.org"),
    ],
)
def test_domain_is_normalized(api: Api, typed: str, stored: str) -> None:
    assert company(api, "Co", domain=typed)["domain"] == stored


def test_domain_is_unique_per_tenant(api: Api, table: Any) -> None:
    acme = company(api, "Acme", domain="acme.com")
    before = table_items(table)

    reply = api.call("POST", "/companies", ADMIN, {"name": "Acme 2", "domain": "WWW.ACME.COM"})

    body = assert_problem(reply, 409)
    assert body["existing_id"] == acme["id"]
    assert table_items(table) == before
    other = create(api, "/companies", User("globex"), {"name": "Acme", "domain": "acme.com"})
    assert other["domain"] == "acme.com"


def test_domain_change_frees_the_old_one(api: Api) -> None:
    acme = company(api, "Acme", domain="acme.com")
    done = patch(api, f"/companies/{acme['id']}", ADMIN, {"domain": "acme.io"})
    assert done["domain"] == "acme.io"
    assert done["version"] == 2
    company(api, "New Acme", domain="acme.com")
    taken = assert_problem(
        api.call("POST", "/companies", ADMIN, {"name": "X", "domain": "acme.io"}), 409
    )
    assert taken["existing_id"] == acme["id"]
    cleared = patch(api, f"/companies/{acme['id']}", ADMIN, {"domain": None})
    assert cleared["domain"] is None
    company(api, "Another", domain="acme.io")


def test_patch_changes_sent_fields_and_null_clears(api: Api) -> None:
    acme = company(
        api, "Acme", industry="Anvils", employee_count=10, attributes={"tier": 1, "region": "west"}
    )

    reply = api.call(
        "PATCH",
        f"/companies/{acme['id']}",
        SALES,
        {"industry": None, "employee_count": 11, "attributes": {"tier": None, "since": 1999}},
        headers={"if-match": '"1"'},
    )

    assert reply.status == 200, reply.text
    assert reply.headers["etag"] == '"2"'
    done = reply.json
    assert done["industry"] is None
    assert done["employee_count"] == 11
    assert done["attributes"] == {"region": "west", "since": 1999}
    assert done["name"] == "Acme"
    assert get(api, f"/companies/{acme['id']}", ADMIN) == {**done, "deals": NO_DEALS}


def test_patch_normalizes_a_phone_with_the_stored_country(api: Api) -> None:
    acme = company(api, "Acme", country="GB")
    assert patch(api, f"/companies/{acme['id']}", ADMIN, {"phone": "020 7946 0958"})["phone"] == (
        "+442079460958"
    )


NAMES = ["Zeta", "acme", "Beta", "Acme Corp", "ACME Labs", "Acme-Ops", "acme b", "Äpfel", "Alpha"]


def test_list_is_ordered_by_name_case_insensitively(api: Api) -> None:
    for name in NAMES:
        company(api, name)

    listed = [c["name"] for page in walk(api, "/companies", ADMIN, limit=2) for c in page]

    assert listed == sorted(NAMES, key=str.casefold)


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("ac", ["acme", "acme b", "Acme Corp", "ACME Labs", "Acme-Ops"]),
        ("ACME ", ["acme b", "Acme Corp", "ACME Labs"]),
        ("acme c", ["Acme Corp"]),
        ("ä", ["Äpfel"]),
        ("q", []),
    ],
)
def test_name_prefix_lists_matching_companies_in_name_order(
    api: Api, prefix: str, expected: list[str]
) -> None:
    for name in NAMES:
        company(api, name)

    pages = walk(api, "/companies", ADMIN, {"name_prefix": prefix}, limit=2)

    assert [c["name"] for page in pages for c in page] == expected


def test_pagination_walks_every_company_exactly_once(api: Api) -> None:
    made = [company(api, f"Co {i}")["id"] for i in range(7)]
    seen = [c["id"] for page in walk(api, "/companies", ADMIN, limit=2) for c in page]
    assert sorted(seen) == sorted(made)
    assert len(seen) == len(set(seen))


def test_rename_moves_the_company_in_the_list(api: Api) -> None:
    acme = company(api, "Acme")
    company(api, "Beta")
    patch(api, f"/companies/{acme['id']}", ADMIN, {"name": "Zulu"})
    assert [c["name"] for c in get(api, "/companies", ADMIN)["items"]] == ["Beta", "Zulu"]
    assert get(api, "/companies", ADMIN, query={"name_prefix": "ac"})["items"] == []


def test_company_contacts_and_contact_count_follow_every_change(api: Api) -> None:
    acme, globex = company(api, "Acme")["id"], company(api, "Globex")["id"]

    ada = contact(api, email="ada@example.com", company_id=acme)
    bob = contact(api, email="bob@example.com", company_id=acme)
    cy = contact(api, email="cy@example.com")
    assert (count(api, acme), count(api, globex)) == (2, 0)
    assert sorted(ids(get(api, f"/companies/{acme}/contacts", ADMIN)["items"])) == sorted(
        [ada["id"], bob["id"]]
    )

    patch(api, f"/contacts/{bob['id']}", ADMIN, {"company_id": globex})
    assert (count(api, acme), count(api, globex)) == (1, 1)
    assert ids(get(api, f"/companies/{globex}/contacts", ADMIN)["items"]) == [bob["id"]]

    patch(api, f"/contacts/{cy['id']}", ADMIN, {"company_id": acme})
    assert (count(api, acme), count(api, globex)) == (2, 1)

    patch(api, f"/contacts/{ada['id']}", ADMIN, {"company_id": None})
    assert (count(api, acme), count(api, globex)) == (1, 1)

    patch(api, f"/contacts/{cy['id']}", ADMIN, {"title": "No company change"})
    assert (count(api, acme), count(api, globex)) == (1, 1)

    assert api.call("DELETE", f"/contacts/{bob['id']}", ADMIN).status == 204
    assert (count(api, acme), count(api, globex)) == (1, 0)

    merged = api.call("POST", f"/contacts/{ada['id']}/merge", ADMIN, {"from_id": cy["id"]})
    assert merged.status == 200, merged.text
    assert merged.json["company_id"] == acme
    assert (count(api, acme), count(api, globex)) == (1, 0)
    assert ids(get(api, f"/companies/{acme}/contacts", ADMIN)["items"]) == [ada["id"]]


def test_delete_of_a_company_with_contacts_is_409_and_without_is_204(api: Api, table: Any) -> None:
    acme = company(api, "Acme", domain="acme.com")
    ada = contact(api, email="ada@example.com", company_id=acme["id"])
    before = table_items(table)

    refused = api.call("DELETE", f"/companies/{acme['id']}", ADMIN)

    assert_problem(refused, 409)
    assert table_items(table) == before

    patch(api, f"/contacts/{ada['id']}", ADMIN, {"company_id": None})
    # Contacts coming and going change the count, not the company's own version.
    deleted = api.call("DELETE", f"/companies/{acme['id']}", ADMIN, headers={"if-match": '"1"'})
    assert deleted.status == 204, deleted.text
    assert deleted.text == ""
    assert_problem(api.call("GET", f"/companies/{acme['id']}", ADMIN), 404)
    assert_problem(api.call("GET", f"/companies/{acme['id']}/contacts", ADMIN), 404)
    assert get(api, "/companies", ADMIN)["items"] == []
    company(api, "Acme Reborn", domain="acme.com")


def test_creating_a_contact_in_an_unknown_company_is_422(api: Api, table: Any) -> None:
    acme = company(api, "Acme")
    assert api.call("DELETE", f"/companies/{acme['id']}", ADMIN).status == 204
    before = table_items(table)

    reply = api.call(
        "POST", "/contacts", ADMIN, {"email": "a@example.com", "company_id": acme["id"]}
    )

    assert_problem(reply, 422, field="company_id")
    assert table_items(table) == before


def test_company_contacts_of_a_company_without_contacts_is_empty(api: Api) -> None:
    acme = company(api, "Acme")
    assert get(api, f"/companies/{acme['id']}/contacts", ADMIN) == {
        "items": [],
        "next_cursor": None,
    }
