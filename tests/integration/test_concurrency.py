"""Concurrent requests against the same function: exactly one winner, nothing lost.

Each request runs in its own worker process (a Lambda execution environment), released
together by a barrier; all share one table. See tests/support/lambda_pool.py for why
processes and not threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.api import Api, User
from tests.support.calls import create, get
from tests.support.checks import assert_problem, table_items
from tests.support.lambda_pool import LambdaPool, lambda_pool

ADMIN = User("acme", ("admin",))
ROUNDS = 3


@pytest.fixture(scope="module")
def pool(contacts_module: Any) -> Iterator[LambdaPool]:
    with lambda_pool("contacts") as workers:
        yield workers


@pytest.mark.parametrize("workers", [2, 8])
def test_creates_with_the_same_email_make_exactly_one_contact(
    api: Api, table: Any, pool: LambdaPool, workers: int
) -> None:
    for round_ in range(ROUNDS):
        email = f"race-{round_}@example.com"
        events = [
            api.event("POST", "/contacts", ADMIN, {"email": email.upper(), "first_name": f"W{i}"})
            for i in range(workers)
        ]

        replies = pool.together(events)

        statuses = sorted(r.status for r in replies)
        assert statuses == [201] + [409] * (workers - 1), [r.text for r in replies]
        winner = next(r.json for r in replies if r.status == 201)
        for reply in replies:
            if reply.status == 409:
                assert assert_problem(reply, 409)["existing_id"] == winner["id"]
        found = get(api, "/contacts", ADMIN, query={"email": email})["items"]
        assert found == [winner]

    contacts = [i for i in table_items(table) if i.get("type", {}).get("S") == "contact"]
    owners = [i for i in table_items(table) if i.get("type", {}).get("S") == "contact_email"]
    assert len(contacts) == ROUNDS
    assert len(owners) == ROUNDS


def test_patches_with_the_same_if_match_make_exactly_one_change(api: Api, pool: LambdaPool) -> None:
    for round_ in range(ROUNDS):
        ada = create(api, "/contacts", ADMIN, {"email": f"ada-{round_}@example.com"})
        path = f"/contacts/{ada['id']}"
        events = [
            api.event("PATCH", path, ADMIN, {"title": title}, headers={"if-match": '"1"'})
            for title in ("CEO", "CTO")
        ]

        replies = pool.together(events)

        assert sorted(r.status for r in replies) == [200, 412], [r.text for r in replies]
        winner = next(r for r in replies if r.status == 200)
        assert_problem(next(r for r in replies if r.status == 412), 412)
        stored = get(api, path, ADMIN)
        # The page also shows the contact's deals, which a PATCH does not read.
        assert stored == {**winner.json, "deals": {"open": 0, "won": 0, "won_amount": {}}}
        assert stored["version"] == 2
        assert winner.headers["etag"] == '"2"'


CHANGES = [
    {"first_name": "Ada"},
    {"last_name": "Lovelace"},
    {"title": "Countess"},
    {"phone": "+442079460958"},
    {"country": "GB"},
    {"owner_id": "owner-7"},
    {"lifecycle_stage": "customer"},
    {"attributes": {"born": 1815}},
]


@pytest.mark.parametrize("workers", [2, 4, 8])
def test_patches_without_if_match_all_apply(api: Api, pool: LambdaPool, workers: int) -> None:
    for round_ in range(ROUNDS):
        ada = create(api, "/contacts", ADMIN, {"email": f"ada-{round_}@example.com"})
        path = f"/contacts/{ada['id']}"
        changes = CHANGES[:workers]

        replies = pool.together([api.event("PATCH", path, ADMIN, body) for body in changes])

        assert [r.status for r in replies] == [200] * workers, [r.text for r in replies]
        stored = get(api, path, ADMIN)
        for body in changes:
            for name, value in body.items():
                assert stored[name] == value, (name, stored)
        assert stored["version"] == 1 + workers
        assert sorted(r.json["version"] for r in replies) == list(range(2, 2 + workers))


COMPANY_CHANGES = [
    {"industry": "Anvils"},
    {"employee_count": 12},
    {"country": "US"},
    {"owner_id": "owner-3"},
]


def test_company_patches_without_if_match_all_apply(api: Api, pool: LambdaPool) -> None:
    for round_ in range(ROUNDS):
        acme = create(api, "/companies", ADMIN, {"name": f"Acme {round_}"})
        path = f"/companies/{acme['id']}"

        replies = pool.together([api.event("PATCH", path, ADMIN, b) for b in COMPANY_CHANGES])

        assert [r.status for r in replies] == [200] * len(COMPANY_CHANGES), [
            r.text for r in replies
        ]
        stored = get(api, path, ADMIN)
        for body in COMPANY_CHANGES:
            for name, value in body.items():
                assert stored[name] == value, (name, stored)
        assert stored["version"] == 1 + len(COMPANY_CHANGES)


def test_contacts_joining_a_company_at_once_are_all_counted(api: Api, pool: LambdaPool) -> None:
    acme = create(api, "/companies", ADMIN, {"name": "Acme"})
    events = [
        api.event(
            "POST", "/contacts", ADMIN, {"email": f"c{i}@example.com", "company_id": acme["id"]}
        )
        for i in range(8)
    ]

    replies = pool.together(events)

    assert [r.status for r in replies] == [201] * 8, [r.text for r in replies]
    assert get(api, f"/companies/{acme['id']}", ADMIN)["contact_count"] == 8
    listed = get(api, f"/companies/{acme['id']}/contacts", ADMIN)["items"]
    assert sorted(c["id"] for c in listed) == sorted(r.json["id"] for r in replies)


def test_company_patches_racing_contacts_joining_lose_no_count(api: Api, pool: LambdaPool) -> None:
    for round_ in range(ROUNDS):
        acme = create(api, "/companies", ADMIN, {"name": f"Acme {round_}"})
        path = f"/companies/{acme['id']}"
        joins = [
            api.event(
                "POST",
                "/contacts",
                ADMIN,
                {"email": f"c{i}-{round_}@example.com", "company_id": acme["id"]},
            )
            for i in range(4)
        ]
        patches = [api.event("PATCH", path, ADMIN, body) for body in COMPANY_CHANGES]

        replies = pool.together([e for pair in zip(joins, patches, strict=True) for e in pair])

        assert [r.status for r in replies] == [201, 200] * 4, [r.text for r in replies]
        stored = get(api, path, ADMIN)
        assert stored["contact_count"] == 4
        assert stored["version"] == 1 + len(COMPANY_CHANGES)


def test_a_company_patch_with_if_match_survives_contacts_joining(
    api: Api, pool: LambdaPool
) -> None:
    """A joining contact changes the count, not the company: the ETag still holds."""
    for round_ in range(ROUNDS):
        acme = create(api, "/companies", ADMIN, {"name": f"Acme {round_}"})
        path = f"/companies/{acme['id']}"
        events = [
            api.event("PATCH", path, ADMIN, {"industry": "Anvils"}, headers={"if-match": '"1"'}),
            *[
                api.event(
                    "POST",
                    "/contacts",
                    ADMIN,
                    {"email": f"c{i}-{round_}@example.com", "company_id": acme["id"]},
                )
                for i in range(3)
            ],
        ]

        replies = pool.together(events)

        assert [r.status for r in replies] == [200, 201, 201, 201], [r.text for r in replies]
        stored = get(api, path, ADMIN)
        assert (stored["industry"], stored["version"], stored["contact_count"]) == ("Anvils", 2, 3)


def test_a_delete_without_if_match_wins_over_racing_patches(api: Api, pool: LambdaPool) -> None:
    """No precondition was asked for, so a concurrent change is retried, never a 412."""
    for round_ in range(ROUNDS):
        ada = create(api, "/contacts", ADMIN, {"email": f"ada-{round_}@example.com"})
        path = f"/contacts/{ada['id']}"
        events = [
            api.event("DELETE", path, ADMIN),
            *[api.event("PATCH", path, ADMIN, body) for body in CHANGES[:3]],
        ]

        replies = pool.together(events)

        assert replies[0].status == 204, replies[0].text
        assert {r.status for r in replies[1:]} <= {200, 404}, [r.text for r in replies]
        assert_problem(api.call("GET", path, ADMIN), 404)


def test_a_merge_without_if_match_wins_over_racing_patches(api: Api, pool: LambdaPool) -> None:
    for round_ in range(ROUNDS):
        ada = create(api, "/contacts", ADMIN, {"email": f"ada-{round_}@example.com"})
        dup = create(api, "/contacts", ADMIN, {"email": f"dup-{round_}@example.com"})
        events = [
            api.event("POST", f"/contacts/{ada['id']}/merge", ADMIN, {"from_id": dup["id"]}),
            *[api.event("PATCH", f"/contacts/{dup['id']}", ADMIN, b) for b in CHANGES[:2]],
            *[api.event("PATCH", f"/contacts/{ada['id']}", ADMIN, b) for b in CHANGES[2:4]],
        ]

        replies = pool.together(events)

        assert replies[0].status == 200, replies[0].text
        # A patch of the merged contact either landed before the merge or finds it merged.
        assert {r.status for r in replies[1:3]} <= {200, 409}, [r.text for r in replies]
        assert [r.status for r in replies[3:]] == [200, 200], [r.text for r in replies]
        survivor = get(api, f"/contacts/{ada['id']}", ADMIN)
        assert f"dup-{round_}@example.com" in survivor["other_emails"]
        for body in CHANGES[2:4]:
            for name, value in body.items():
                assert survivor[name] == value
