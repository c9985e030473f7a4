"""Each entry of a case's conversation joins its contact's timeline as a `case_message`
activity (activity_events, on CaseReplied): once, whatever is delivered twice; on the
survivor of a merged contact; nowhere for a case without a contact."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from crm_core import keys
from crm_core.table import Table
from tests.conftest import ConsumerFunction, load_consumer
from tests.support.api import Api, LambdaContext, User
from tests.support.calls import create, get
from tests.support.events import outbox_events, redelivered

AGENT = User("acme", ("support",), sub="agent-a")
ADMIN = User("acme", ("admin",))


@pytest.fixture(scope="module")
def function(contacts_module: ModuleType) -> ConsumerFunction:
    return load_consumer("activity_events")


def replied(table: Table, case_id: str) -> list[dict[str, Any]]:
    return outbox_events(table, keys.case_partition("acme", case_id), "CaseReplied")


def timeline(api: Api, contact_id: str) -> list[dict[str, Any]]:
    page = get(api, f"/contacts/{contact_id}/timeline", ADMIN)
    return [a for a in page["items"] if a["type"] == "case_message"]


def test_replies_and_notes_join_the_contacts_timeline_once(
    api: Api, activity_api: Api, cases_api: Api, table: Table, function: ConsumerFunction
) -> None:
    contact = create(api, "/contacts", ADMIN, {"email": "ada@example.com"})["id"]
    case = create(cases_api, "/cases", AGENT, {"subject": "VAT number", "contact_id": contact})
    path = f"/cases/{case['id']}/replies"
    note = create(cases_api, path, AGENT, {"body": "Checking the ledger", "public": False})
    reply = create(cases_api, path, AGENT, {"body": "Fixed, sorry!", "public": True})
    events = replied(table, case["id"])
    assert len(events) == 2
    for event in events:
        assert function.handler(event, LambdaContext())["activity_id"] is not None
        function.handler(redelivered(event), LambdaContext())
    logged = timeline(activity_api, contact)
    assert sorted((a["entry_id"], a["kind"], a["public"]) for a in logged) == sorted(
        [(note["id"], "note", False), (reply["id"], "reply", True)]
    )
    assert {a["case_id"] for a in logged} == {case["id"]}
    assert {a["subject"] for a in logged} == {"VAT number"}
    assert {a["occurred_at"] for a in logged} == {note["created_at"], reply["created_at"]}


def test_a_case_without_a_contact_logs_nothing(
    cases_api: Api, table: Table, function: ConsumerFunction
) -> None:
    case = create(cases_api, "/cases", AGENT, {"subject": "Anonymous"})
    create(cases_api, f"/cases/{case['id']}/replies", AGENT, {"body": "Note", "public": False})
    (event,) = replied(table, case["id"])
    assert function.handler(event, LambdaContext()) == {"activity_id": None, "contact_id": None}


def test_a_merged_contacts_entry_goes_to_its_survivor(
    api: Api, activity_api: Api, cases_api: Api, table: Table, function: ConsumerFunction
) -> None:
    merged = create(api, "/contacts", ADMIN, {"email": "old@example.com"})["id"]
    survivor = create(api, "/contacts", ADMIN, {"email": "new@example.com"})["id"]
    case = create(cases_api, "/cases", AGENT, {"subject": "Login", "contact_id": merged})
    create(cases_api, f"/cases/{case['id']}/replies", AGENT, {"body": "Note", "public": False})
    reply = api.call("POST", f"/contacts/{survivor}/merge", ADMIN, {"from_id": merged})
    assert reply.status == 200, reply.text
    (event,) = replied(table, case["id"])
    assert function.handler(event, LambdaContext())["contact_id"] == survivor
    assert len(timeline(activity_api, survivor)) == 1
