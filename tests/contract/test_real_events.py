"""The schemas describe what producers really write: the events the contacts function puts
in its outbox, wrapped as EventBridge delivers them, validate against events/schemas/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from crm_core.events import contacts
from crm_core.events.catalog import EVENT_TYPES, event_type
from infra.build import catalog
from tests.support.api import Api, User
from tests.support.calls import create, patch
from tests.support.checks import table_items

ROOT = Path(__file__).resolve().parents[2]
ADMIN = User("acme", ("admin",))


def delivered(item: dict[str, Any]) -> dict[str, Any]:
    """An outbox item as EventBridge delivers it (what outbox_publisher puts, plus the
    fields EventBridge adds)."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": item["detail_type"]["S"],
        "source": item["source"]["S"],
        "account": "123456789012",
        "time": item["occurred_at"]["S"][:19] + "Z",
        "region": "us-east-1",
        "resources": [],
        "detail": json.loads(item["detail"]["S"]),
    }


def test_the_events_of_the_contacts_function_validate_against_their_schemas(
    api: Api, table: Any
) -> None:
    globex = create(api, "/companies", ADMIN, {"name": "Globex", "domain": "globex.example"})
    ada = create(
        api,
        "/contacts",
        ADMIN,
        {
            "email": "ada@globex.example",
            "first_name": "Ada",
            "company_id": globex["id"],
            "tags": ["webinar"],
            "attributes": {"seats": 25, "newsletter": True, "plan": None},
        },
    )
    twin = create(api, "/contacts", ADMIN, {"phone": "+14155550123", "country": "US"})
    patch(api, f"/contacts/{ada['id']}", ADMIN, {"lifecycle_stage": "mql", "title": "CTO"})
    merged = api.call("POST", f"/contacts/{ada['id']}/merge", ADMIN, {"from_id": twin["id"]})
    assert merged.status == 200, merged.text
    assert api.call("DELETE", f"/contacts/{ada['id']}", ADMIN).status == 204
    patch(api, f"/companies/{globex['id']}", ADMIN, {"employee_count": 1200})
    assert api.call("DELETE", f"/companies/{globex['id']}", ADMIN).status == 204

    events = [delivered(i) for i in table_items(table) if i["type"]["S"] == "outbox_event"]

    seen = set()
    for event in events:
        model = event_type(event["source"], event["detail-type"])
        assert model is not None, f"{event['source']} {event['detail-type']} is not in the catalog"
        schema = json.loads((ROOT / catalog.schema_path(model)).read_text(encoding="utf-8"))
        validator = Draft202012Validator(schema, format_checker=FormatChecker())
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]
        assert not errors, f"{model.DETAIL_TYPE}:\n" + "\n".join(errors)
        assert model.model_validate(event["detail"]).model_dump(mode="json") == event["detail"]
        seen.add(model)
    # Every event type of the contacts function was produced once at least (ContactUnsubscribed
    # is the unsubscribe function's: tests/integration/test_unsubscribe.py checks it).
    assert seen == {
        t for t in EVENT_TYPES if t.SOURCE == contacts.SOURCE and t.PRODUCER == contacts.PRODUCER
    }
