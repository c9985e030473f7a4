"""What the activities tests share: a valid body of each type, and short forms of the calls."""

from __future__ import annotations

import sys
from typing import Any

from tests.support.api import Api, User
from tests.support.calls import create, get

# One valid body of each type users log, with everything it may carry.
BODIES: dict[str, dict[str, Any]] = {
    "call": {
        "type": "call",
        "direction": "outbound",
        "outcome": "connected",
        "duration_s": 300,
        "body": "Talked pricing; wants a demo.",
        "occurred_at": "2025-06-02T09:30:00Z",
    },
    "email": {
        "type": "email",
        "direction": "inbound",
        "subject": "Re: pricing",
        "from": "Ada@Example.com",
        "to": ["sales@acme.example"],
        "cc": ["boss@acme.example"],
        "body": "Thanks, see you Tuesday.",
        "occurred_at": "2025-06-02T10:00:00+02:00",
    },
    "meeting": {
        "type": "meeting",
        "title": "Demo",
        "starts_at": "2025-06-03T09:00:00+02:00",
        "ends_at": "2025-06-03T10:00:00+02:00",
        "attendees": ["ada@example.com", "Bob from IT"],
        "location": "Zoom",
        "outcome": "completed",
        "body": "Went well.",
        "occurred_at": "2025-06-03T07:00:00Z",
    },
    "note": {
        "type": "note",
        "body": "Met at the conference.",
        "occurred_at": "2025-06-01T12:00:00Z",
    },
    "task": {
        "type": "task",
        "subject": "Send the proposal",
        "due_at": "2030-01-15T09:00:00Z",
        "priority": "high",
        "body": "The two-year plan.",
        "occurred_at": "2025-06-04T08:00:00Z",
    },
}
TYPES = tuple(BODIES)


def new_contact(api: Api, user: User, email: str = "ada@example.com") -> str:
    return str(create(api, "/contacts", user, {"email": email})["id"])


def log(activity_api: Api, contact_id: str, user: User, **body: Any) -> dict[str, Any]:
    """Log an activity (the call must answer 201); `type` defaults to a note."""
    body.setdefault("type", "note")
    if body["type"] == "note":
        body.setdefault("body", "a note")
    return create(activity_api, f"/contacts/{contact_id}/activities", user, body)


def task(
    activity_api: Api, contact_id: str, user: User, due_at: str, **fields: Any
) -> dict[str, Any]:
    return log(
        activity_api, contact_id, user, type="task", subject="Follow up", due_at=due_at, **fields
    )


def path(activity: dict[str, Any]) -> str:
    return f"/contacts/{activity['contact_id']}/activities/{activity['id']}"


def contact_summary(api: Api, contact_id: str, user: User) -> tuple[Any, dict[str, int]]:
    """(last_activity_at, activity_counts) as GET /contacts/{id} shows them."""
    contact = get(api, f"/contacts/{contact_id}", user)
    return contact["last_activity_at"], contact["activity_counts"]


def activities_client() -> Any:
    """The activities function's own DynamoDB client, to count the calls its requests make."""
    return sys.modules["activities_api.context"].table.client


def activity_store() -> Any:
    """The function's store, for what another function does to activities (a merge's move)."""
    return sys.modules["activities_api.context"].activity_store


class Stores:
    """The contacts and activities of a test's table, used directly (no HTTP), as the
    asynchronous functions use them."""

    def __init__(self, table: Any) -> None:
        from crm_core.activities.store import ActivityStore
        from crm_core.contacts.store import ContactStore
        from crm_core.events.envelope import Origin

        self.table = table
        self.contacts = ContactStore(table)
        self.activities = ActivityStore(table)
        # The user whose changes these are, as the events they write say.
        self.origin = Origin.user("user-1", "req-1")

    def contact(self, tenant: str = "acme") -> str:
        """A new contact with a random address; its id."""
        import uuid

        from crm_core.records.contact import ContactCreate

        email = f"{uuid.uuid4().hex[:12]}@example.com"
        return self.contacts.create(tenant, ContactCreate(email=email), self.origin).id
