"""Every change of the contacts function writes its domain event in the same transaction."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crm_core.events.catalog import event_type
from crm_core.events.envelope import Origin
from crm_core.events.outbox import MAX_EVENT_BYTES, EventTooLarge, outbox_item
from crm_core.ids import is_ulid
from tests.support.api import Api, User
from tests.support.calls import create, patch
from tests.support.checks import assert_problem, table_items

ADMIN = User("acme", ("admin",))
OTHER = User("globex", ("admin",))


def outbox(table: Any) -> list[dict[str, Any]]:
    """The outbox items of the table, oldest first, as the stream would carry them."""
    items = [i for i in table_items(table) if i.get("type", {}).get("S") == "outbox_event"]
    return sorted(items, key=lambda i: i["event_id"]["S"])


def detail(item: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(item["detail"]["S"])
    return found


def only_new(table: Any, before: int) -> dict[str, Any]:
    items = outbox(table)
    assert len(items) == before + 1, [i["detail_type"]["S"] for i in items]
    return items[-1]


def test_create_writes_contact_created_with_the_contact_and_its_origin(
    api: Api, table: Any
) -> None:
    reply = api.call("POST", "/contacts", ADMIN, {"email": "ada@example.com", "first_name": "Ada"})
    assert reply.status == 201

    (item,) = outbox(table)
    body = reply.json
    assert item["PK"]["S"] == f"T#acme#C#{body['id']}"
    assert item["SK"]["S"] == f"OUTBOX#{item['event_id']['S']}"
    assert (item["source"]["S"], item["detail_type"]["S"]) == ("crm.contacts", "ContactCreated")
    assert int(item["ttl"]["N"]) > 0
    event = detail(item)
    metadata = event["metadata"]
    assert is_ulid(metadata["event_id"])
    assert metadata["event_id"] == item["event_id"]["S"]
    assert metadata["tenant_id"] == "acme"
    assert metadata["event_version"] == 1
    assert metadata["actor"] == {"type": "user", "id": ADMIN.sub}
    assert metadata["correlation_id"]  # the API request id
    assert metadata["occurred_at"] == body["created_at"]
    assert event["data"] == {"contact": body}
    # The stored detail parses into its catalog model.
    model = event_type("crm.contacts", "ContactCreated")
    assert model is not None
    assert model.model_validate(event).data.contact.id == body["id"]


def test_update_names_the_changed_fields_and_their_previous_values(api: Api, table: Any) -> None:
    created = create(api, "/contacts", ADMIN, {"email": "ada@example.com", "title": "CTO"})
    before = len(outbox(table))

    changed = patch(
        api, f"/contacts/{created['id']}", ADMIN, {"title": "CEO", "phone": None, "tags": ["vip"]}
    )

    event = detail(only_new(table, before))
    assert event["data"]["contact"] == changed
    assert sorted(event["data"]["changed"]) == ["tags", "title"]  # phone was already unset
    assert event["data"]["previous"] == {"title": "CTO", "tags": []}


def test_a_patch_that_changes_nothing_emits_nothing(api: Api, table: Any) -> None:
    created = create(api, "/contacts", ADMIN, {"email": "ada@example.com", "title": "CTO"})
    before = len(outbox(table))
    patch(api, f"/contacts/{created['id']}", ADMIN, {"title": "CTO"})
    assert len(outbox(table)) == before


def test_delete_and_merge_events(api: Api, table: Any) -> None:
    company = create(api, "/companies", ADMIN, {"name": "Acme"})
    keep = create(api, "/contacts", ADMIN, {"email": "a@example.com"})
    lose = create(api, "/contacts", ADMIN, {"email": "b@example.com", "company_id": company["id"]})
    gone = create(api, "/contacts", ADMIN, {"email": "c@example.com", "owner_id": "owner-1"})

    before = len(outbox(table))
    merged = api.call("POST", f"/contacts/{keep['id']}/merge", ADMIN, {"from_id": lose["id"]})
    assert merged.status == 200
    item = only_new(table, before)
    assert item["detail_type"]["S"] == "ContactMerged"
    assert item["PK"]["S"] == f"T#acme#C#{keep['id']}"
    assert detail(item)["data"] == {
        "survivor_id": keep["id"],
        "merged_id": lose["id"],
        "contact": merged.json,
    }

    before = len(outbox(table))
    assert api.call("DELETE", f"/contacts/{gone['id']}", ADMIN).status == 204
    item = only_new(table, before)
    assert item["detail_type"]["S"] == "ContactDeleted"
    assert detail(item)["data"] == {
        "contact_id": gone["id"],
        "company_id": None,
        "owner_id": "owner-1",
    }


def test_company_events(api: Api, table: Any) -> None:
    company = create(api, "/companies", ADMIN, {"name": "Acme", "domain": "acme.example"})
    (item,) = outbox(table)
    assert item["detail_type"]["S"] == "CompanyCreated"
    assert item["PK"]["S"] == f"T#acme#CO#{company['id']}"
    assert detail(item)["data"] == {"company": company}

    changed = patch(api, f"/companies/{company['id']}", ADMIN, {"industry": "Rockets"})
    item = only_new(table, 1)
    assert item["detail_type"]["S"] == "CompanyUpdated"
    assert detail(item)["data"] == {
        "company": changed,
        "changed": ["industry"],
        "previous": {"industry": None},
    }

    assert api.call("DELETE", f"/companies/{company['id']}", ADMIN).status == 204
    item = only_new(table, 2)
    assert item["detail_type"]["S"] == "CompanyDeleted"
    assert detail(item)["data"] == {"company_id": company["id"]}


def test_a_refused_change_writes_no_event(api: Api, table: Any) -> None:
    create(api, "/contacts", ADMIN, {"email": "ada@example.com"})
    before = table_items(table)
    assert_problem(api.call("POST", "/contacts", ADMIN, {"email": "ada@example.com"}), 409)
    assert_problem(
        api.call(
            "POST",
            "/contacts",
            ADMIN,
            {"email": "x@example.com", "company_id": "01J0000000000000000000000Z"},
        ),
        422,
    )
    assert table_items(table) == before


def test_events_stay_in_their_tenant(api: Api, table: Any) -> None:
    create(api, "/contacts", ADMIN, {"email": "ada@example.com"})
    create(api, "/contacts", OTHER, {"email": "ada@example.com"})
    tenants = {
        (i["PK"]["S"].split("#")[1], detail(i)["metadata"]["tenant_id"]) for i in outbox(table)
    }
    assert tenants == {("acme", "acme"), ("globex", "globex")}


def test_an_event_over_256_kb_is_refused_before_anything_is_written(
    contacts_module: Any, table: Any
) -> None:
    """The API's 64 KiB body limit keeps events small; a store-level write that would
    produce a larger event is refused whole, with a clear error."""
    import sys

    from crm_core.records.contact import ContactCreate

    store = sys.modules["contacts_api.context"].contact_store
    origin = Origin.user("user-1", "request-1")
    contact = store.create("acme", ContactCreate(email="big@example.com"), origin)
    before = table_items(table)
    huge = {f"a{i}": "x" * 1000 for i in range(270)}  # a 270 KB item is within 400 KB

    with pytest.raises(EventTooLarge) as refused:
        store.update("acme", contact.id, {"attributes": huge}, None, origin)

    assert refused.value.status == 413
    assert "ContactUpdated" in refused.value.detail
    assert str(MAX_EVENT_BYTES) in refused.value.detail
    assert table_items(table) == before


def test_event_size_is_counted_as_eventbridge_counts_it() -> None:
    from crm_core.events import contacts as events
    from crm_core.events.outbox import entry_bytes

    event = events.CompanyDeleted.create(
        "acme",
        Origin.system("test"),
        events.CompanyDeletedData(company_id="01JBCMPNY00000000000000000"),
    )
    item = outbox_item("T#acme#CO#01JBCMPNY00000000000000000", event)
    expected = 14 + len("crm.contacts") + len("CompanyDeleted") + len(item["detail"].encode())
    assert entry_bytes("crm.contacts", "CompanyDeleted", item["detail"]) == expected
