"""Bad input to the activities function gets a clear 4xx problem+json, and writes nothing.

One table, as in test_bad_inputs.py: each row is a request a client could send and the
status it must get; every row also proves that the table is unchanged by the call.
"""

from __future__ import annotations

from typing import Any

import pytest

from crm_core.ids import new_ulid
from tests.support.activities import BODIES, log, new_contact, task
from tests.support.api import Api, User
from tests.support.bad_inputs import Row, assert_refused, b64, cursor, next_cursor

ADMIN = User("acme", ("admin",), sub="admin-1")
USERS: dict[str, User | None] = {
    "admin": ADMIN,
    "sales": User("acme", ("sales",), sub="sales-1"),
    "viewer": User("acme", ("viewer",), sub="viewer-1"),
    "no-claims": None,
    "no-tenant": User(None),
    "guest": User("acme", ("guest",)),
}
GLOBEX = User("globex", ("admin",), sub="globex-1")

LOG = "/contacts/{contact}/activities"
ONE = "/contacts/{contact}/activities/{note}"
TASK = "/contacts/{contact}/activities/{task}"
MEETING = "/contacts/{contact}/activities/{meeting}"
TIMELINE = "/contacts/{contact}/timeline"
NOTE = {"type": "note", "body": "hello"}
CALL = {"type": "call", "direction": "outbound", "outcome": "connected"}
EMAIL = {
    "type": "email",
    "direction": "outbound",
    "subject": "Hi",
    "from": "a@x.com",
    "to": ["b@y.com"],
}
MEET = {"type": "meeting", "starts_at": "2025-06-01T10:00:00Z", "ends_at": "2025-06-01T11:00:00Z"}
TODO = {"type": "task", "subject": "Call back", "due_at": "2030-01-01T09:00:00Z"}


def _post(id_: str, body: Any, status: int = 422, loc: str | None = None) -> Row:
    return Row(id_, "POST", LOG, status, body, loc=loc)


ROWS: list[Row] = [
    # Not a JSON object, or too big ------------------------------------------------------------
    Row("malformed-json", "POST", LOG, 400, raw='{"type": "note", "body": '),
    Row("malformed-json-patch", "PATCH", ONE, 400, raw="{body: x}"),
    Row("json-array", "POST", LOG, 422, raw='[{"type": "note", "body": "x"}]'),
    Row("json-string", "POST", LOG, 422, raw='"note"'),
    Row("json-null", "POST", LOG, 422, raw="null"),
    Row("body-over-64-kib", "POST", LOG, 413, {"type": "note", "body": "x" * 70_000}),
    Row(
        "not-json-media-type",
        "POST",
        LOG,
        415,
        raw="type=note",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    # The type ---------------------------------------------------------------------------------
    _post("type-missing", {"body": "no type"}),
    _post("type-unknown", {"type": "sms", "body": "x"}),
    _post("type-int", {"type": 5, "body": "x"}),
    _post("type-upper-case", {"type": "NOTE", "body": "x"}),
    *[
        _post(f"system-type-{name}", {"type": name, **fields})
        for name, fields in {
            "form_submission": {"lead_id": new_ulid(), "source_id": new_ulid()},
            "email_opened": {},
            "email_clicked": {"url": "https://example.com"},
            "email_bounced": {"bounce_type": "permanent"},
            "email_delivered": {},
            "unsubscribed": {"method": "link"},
        }.items()
    ],
    # Fields of another type, unknown and server-owned fields ----------------------------------
    _post("note-with-a-call-field", {**NOTE, "direction": "inbound"}, loc="direction"),
    _post("call-with-a-task-field", {**CALL, "due_at": "2030-01-01T00:00:00Z"}, loc="due_at"),
    _post("task-with-an-email-field", {**TODO, "from": "a@x.com"}, loc="from"),
    _post("email-with-a-meeting-field", {**EMAIL, "attendees": []}, loc="attendees"),
    _post("unknown-field", {**NOTE, "mood": "happy"}, loc="mood"),
    *[
        _post(f"server-owned-{name}", {**NOTE, name: value}, loc=name)
        for name, value in {
            "id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "contact_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "created_by": "someone",
            "created_at": "2025-01-01T00:00:00Z",
            "version": 7,
        }.items()
    ],
    _post(
        "task-completed-at", {**TODO, "completed_at": "2025-01-01T00:00:00Z"}, loc="completed_at"
    ),
    _post("task-overdue-at", {**TODO, "overdue_at": "2025-01-01T00:00:00Z"}, loc="overdue_at"),
    # Notes ------------------------------------------------------------------------------------
    _post("note-without-body", {"type": "note"}, loc="body"),
    _post("note-empty-body", {"type": "note", "body": ""}, loc="body"),
    _post("note-body-int", {"type": "note", "body": 5}, loc="body"),
    _post("note-over-the-char-limit", {"type": "note", "body": "x" * 20_001}, loc="body"),
    # Calls ------------------------------------------------------------------------------------
    _post("call-direction-unknown", {**CALL, "direction": "sideways"}, loc="direction"),
    _post("call-outcome-unknown", {**CALL, "outcome": "great"}, loc="outcome"),
    _post("call-without-outcome", {"type": "call", "direction": "inbound"}, loc="outcome"),
    _post("call-duration-negative", {**CALL, "duration_s": -1}, loc="duration_s"),
    _post("call-duration-string", {**CALL, "duration_s": "60"}, loc="duration_s"),
    _post("call-duration-float", {**CALL, "duration_s": 1.5}, loc="duration_s"),
    _post("call-over-a-day", {**CALL, "duration_s": 86_401}, loc="duration_s"),
    # Emails -----------------------------------------------------------------------------------
    _post("email-without-from", {k: v for k, v in EMAIL.items() if k != "from"}, loc="from"),
    _post("email-from-invalid", {**EMAIL, "from": "not an address"}, loc="from"),
    _post("email-to-empty", {**EMAIL, "to": []}, loc="to"),
    _post("email-to-a-string", {**EMAIL, "to": "b@y.com"}, loc="to"),
    _post("email-to-invalid", {**EMAIL, "to": ["nobody"]}, loc="to"),
    _post("email-too-many-cc", {**EMAIL, "cc": [f"c{i}@y.com" for i in range(51)]}, loc="cc"),
    _post("email-subject-blank", {**EMAIL, "subject": "   "}, loc="subject"),
    _post("email-body-over-limit", {**EMAIL, "body": "x" * 50_001}, loc="body"),
    # Meetings ---------------------------------------------------------------------------------
    _post("meeting-ends-before-start", {**MEET, "ends_at": "2025-06-01T09:00:00Z"}),
    _post("meeting-ends-at-start", {**MEET, "ends_at": MEET["starts_at"]}),
    _post("meeting-ends-before-start-by-zone", {**MEET, "ends_at": "2025-06-01T11:00:00+02:00"}),
    _post("meeting-over-7-days", {**MEET, "ends_at": "2025-06-08T10:00:01Z"}),
    _post("meeting-naive-start", {**MEET, "starts_at": "2025-06-01T10:00:00"}, loc="starts_at"),
    _post("meeting-not-a-time", {**MEET, "starts_at": "tomorrow"}, loc="starts_at"),
    _post("meeting-outcome-unknown", {**MEET, "outcome": "great"}, loc="outcome"),
    _post("meeting-attendees-string", {**MEET, "attendees": "ada"}, loc="attendees"),
    _post("meeting-too-many-attendees", {**MEET, "attendees": ["a"] * 101}, loc="attendees"),
    _post("meeting-title-too-long", {**MEET, "title": "x" * 201}, loc="title"),
    # Tasks ------------------------------------------------------------------------------------
    _post("task-without-due", {"type": "task", "subject": "x"}, loc="due_at"),
    _post("task-naive-due", {**TODO, "due_at": "2030-01-01T09:00:00"}, loc="due_at"),
    _post("task-due-before-1970", {**TODO, "due_at": "1969-12-31T23:59:59Z"}, loc="due_at"),
    _post("task-without-subject", {"type": "task", "due_at": TODO["due_at"]}, loc="subject"),
    _post("task-subject-too-long", {**TODO, "subject": "x" * 201}, loc="subject"),
    _post("task-status-unknown", {**TODO, "status": "done"}, loc="status"),
    _post("task-priority-unknown", {**TODO, "priority": "urgent"}, loc="priority"),
    _post("task-assignee-invalid", {**TODO, "assignee_id": "not an id!"}, loc="assignee_id"),
    # occurred_at ------------------------------------------------------------------------------
    _post("occurred-in-the-future", {**NOTE, "occurred_at": "2099-01-01T00:00:00Z"}),
    _post("occurred-naive", {**NOTE, "occurred_at": "2025-01-01T00:00:00"}, loc="occurred_at"),
    _post("occurred-not-a-time", {**NOTE, "occurred_at": "yesterday"}, loc="occurred_at"),
    _post("occurred-before-1970", {**NOTE, "occurred_at": "1969-07-20T20:17:00Z"}),
    _post("occurred-a-number", {**NOTE, "occurred_at": 1_700_000_000}, loc="occurred_at"),
    _post("occurred-digits", {**NOTE, "occurred_at": "1700000000"}, loc="occurred_at"),
    _post("task-due-a-number", {**TODO, "due_at": 1_900_000_000_000}, loc="due_at"),
    # The contact ------------------------------------------------------------------------------
    Row("contact-id-not-ulid", "POST", "/contacts/ada/activities", 422, NOTE, loc="contact_id"),
    Row("contact-missing", "POST", "/contacts/{missing}/activities", 404, NOTE),
    Row("contact-of-another-tenant", "POST", "/contacts/{globex_contact}/activities", 404, NOTE),
    Row("activity-id-not-ulid", "GET", "/contacts/{contact}/activities/x", 422, loc="activity_id"),
    Row("activity-missing", "GET", "/contacts/{contact}/activities/{missing}", 404),
    Row("activity-of-another-tenant", "GET", "/contacts/{contact}/activities/{globex_note}", 404),
    # Who --------------------------------------------------------------------------------------
    Row("viewer-logs", "POST", LOG, 403, NOTE, user="viewer"),
    Row("no-claims", "POST", LOG, 401, NOTE, user="no-claims"),
    Row("no-tenant", "GET", TIMELINE, 401, user="no-tenant"),
    Row("unknown-group", "GET", TIMELINE, 403, user="guest"),
    Row("not-the-author-patches", "PATCH", ONE, 403, {"body": "x"}, user="sales"),
    Row("not-the-author-deletes", "DELETE", ONE, 403, user="sales"),
    # PATCH ------------------------------------------------------------------------------------
    Row("patch-empty", "PATCH", ONE, 422, {}),
    Row("patch-type", "PATCH", ONE, 422, {"type": "call"}, loc="type"),
    Row("patch-occurred-at", "PATCH", ONE, 422, {"occurred_at": "2025-01-01T00:00:00Z"}),
    Row("patch-unknown-field", "PATCH", ONE, 422, {"mood": "sad"}, loc="mood"),
    Row("patch-field-of-another-type", "PATCH", ONE, 422, {"direction": "inbound"}),
    Row("patch-note-body-null", "PATCH", ONE, 422, {"body": None}, loc="body"),
    Row("patch-note-body-over-limit", "PATCH", ONE, 422, {"body": "x" * 20_001}, loc="body"),
    Row("patch-meeting-ends-first", "PATCH", MEETING, 422, {"ends_at": "2025-06-01T09:00:00Z"}),
    Row("patch-meeting-naive-end", "PATCH", MEETING, 422, {"ends_at": "2025-06-01T12:00:00"}),
    Row("patch-task-naive-due", "PATCH", TASK, 422, {"due_at": "2031-01-01T00:00:00"}),
    Row("patch-task-status-unknown", "PATCH", TASK, 422, {"status": "done"}, loc="status"),
    Row("patch-task-subject-null", "PATCH", TASK, 422, {"subject": None}),
    Row("patch-task-assignee-invalid", "PATCH", TASK, 422, {"assignee_id": "not an id!"}),
    Row("patch-stale-if-match", "PATCH", ONE, 412, {"body": "x"}, headers={"if-match": '"9"'}),
    Row("patch-bad-if-match", "PATCH", ONE, 400, {"body": "x"}, headers={"if-match": "v1"}),
    Row("patch-missing", "PATCH", "/contacts/{contact}/activities/{missing}", 404, {"body": "x"}),
    Row("delete-stale-if-match", "DELETE", ONE, 412, headers={"if-match": '"2"'}),
    Row("delete-missing", "DELETE", "/contacts/{contact}/activities/{missing}", 404),
    # The timeline -----------------------------------------------------------------------------
    Row("timeline-type-unknown", "GET", TIMELINE, 422, query={"type": "sms"}, loc="type"),
    Row("timeline-one-type-unknown", "GET", TIMELINE, 422, query={"type": "call,sms"}),
    Row("timeline-type-empty", "GET", TIMELINE, 422, query={"type": ""}, loc="type"),
    Row("timeline-since-naive", "GET", TIMELINE, 422, query={"since": "2025-01-01T00:00:00"}),
    Row("timeline-until-not-a-time", "GET", TIMELINE, 422, query={"until": "now"}, loc="until"),
    Row("timeline-since-digits", "GET", TIMELINE, 422, query={"since": "1700000000"}, loc="since"),
    Row(
        "timeline-since-after-until",
        "GET",
        TIMELINE,
        400,
        query={"since": "2025-06-02T00:00:00Z", "until": "2025-06-01T00:00:00Z"},
    ),
    Row(
        "timeline-since-equals-until",
        "GET",
        TIMELINE,
        400,
        query={"since": "2025-06-01T00:00:00Z", "until": "2025-06-01T00:00:00+00:00"},
    ),
    Row("timeline-limit-0", "GET", TIMELINE, 422, query={"limit": "0"}, loc="limit"),
    Row("timeline-limit-101", "GET", TIMELINE, 422, query={"limit": "101"}, loc="limit"),
    Row("timeline-limit-word", "GET", TIMELINE, 422, query={"limit": "ten"}, loc="limit"),
    Row("timeline-cursor-garbage", "GET", TIMELINE, 400, query={"cursor": "not a cursor!"}),
    Row("timeline-cursor-empty-json", "GET", TIMELINE, 400, query={"cursor": b64(b"{}")}),
    Row("timeline-cursor-too-long", "GET", TIMELINE, 400, query={"cursor": "A" * 3000}),
    Row("timeline-cursor-of-tasks", "GET", TIMELINE, 400, query={"cursor": "{tasks_cursor}"}),
    Row(
        "timeline-cursor-of-another-contact",
        "GET",
        TIMELINE,
        400,
        query={"cursor": "{other_timeline_cursor}"},
    ),
    Row(
        "timeline-cursor-of-another-tenant",
        "GET",
        TIMELINE,
        400,
        query={"cursor": "{globex_timeline_cursor}"},
    ),
    Row(
        "timeline-cursor-of-a-type-on-all",
        "GET",
        TIMELINE,
        400,
        query={"cursor": "{note_timeline_cursor}"},
    ),
    Row(
        "timeline-cursor-of-notes-on-calls",
        "GET",
        TIMELINE,
        400,
        query={"cursor": "{note_timeline_cursor}", "type": "call"},
    ),
    Row(
        "timeline-cursor-outside-the-window",
        "GET",
        TIMELINE,
        400,
        query={"cursor": "{timeline_cursor}", "until": "2000-01-01T00:00:00Z"},
    ),
    Row(
        "timeline-cursor-forged-partition",
        "GET",
        TIMELINE,
        400,
        query={"cursor": cursor("timeline", {"PK": "T#globex#C#x", "SK": "ACT#x"})},
    ),
    Row("timeline-missing-contact", "GET", "/contacts/{missing}/timeline", 404),
    Row("timeline-another-tenant", "GET", "/contacts/{globex_contact}/timeline", 404),
    # Tasks ------------------------------------------------------------------------------------
    Row("tasks-assignee-invalid", "GET", "/tasks", 422, query={"assignee": "a b"}, loc="assignee"),
    Row("tasks-status-unknown", "GET", "/tasks", 422, query={"status": "done"}, loc="status"),
    Row("tasks-due-naive", "GET", "/tasks", 422, query={"due_before": "2030-01-01T00:00:00"}),
    Row("tasks-due-digits", "GET", "/tasks", 422, query={"due_after": "0"}, loc="due_after"),
    Row(
        "tasks-due-after-not-before",
        "GET",
        "/tasks",
        400,
        query={"due_after": "2030-01-02T00:00:00Z", "due_before": "2030-01-01T00:00:00Z"},
    ),
    Row("tasks-limit-0", "GET", "/tasks", 422, query={"limit": "0"}, loc="limit"),
    Row("tasks-cursor-garbage", "GET", "/tasks", 400, query={"cursor": "%%%"}),
    Row("tasks-cursor-of-timeline", "GET", "/tasks", 400, query={"cursor": "{timeline_cursor}"}),
    Row(
        "tasks-cursor-of-an-assignee-on-all",
        "GET",
        "/tasks",
        400,
        query={"cursor": "{my_tasks_cursor}"},
    ),
    Row(
        "tasks-cursor-of-another-assignee",
        "GET",
        "/tasks",
        400,
        query={"cursor": "{my_tasks_cursor}", "assignee": "someone-else"},
    ),
    Row(
        "tasks-cursor-of-another-status",
        "GET",
        "/tasks",
        400,
        query={"cursor": "{tasks_cursor}", "status": "completed"},
    ),
    Row(
        "tasks-cursor-of-another-tenant",
        "GET",
        "/tasks",
        400,
        query={"cursor": "{globex_tasks_cursor}"},
    ),
]


@pytest.fixture
def world(api: Api, activity_api: Api) -> dict[str, str]:
    """Acme: a contact with a note, a meeting and tasks by the admin, another contact with
    notes; globex: a contact with notes and tasks. Cursors of each list."""
    contact = new_contact(api, ADMIN)
    other = new_contact(api, ADMIN, "bob@example.com")
    note = log(activity_api, contact, ADMIN, **NOTE)
    log(activity_api, contact, ADMIN, body="second note")
    meeting = log(activity_api, contact, ADMIN, **BODIES["meeting"])
    todo = task(activity_api, contact, ADMIN, "2030-01-01T09:00:00Z")
    task(activity_api, contact, ADMIN, "2030-01-02T09:00:00Z")
    for _ in range(2):
        log(activity_api, other, ADMIN)
    globex_contact = new_contact(api, GLOBEX, "ada@globex.example")
    globex_note = log(activity_api, globex_contact, GLOBEX)
    log(activity_api, globex_contact, GLOBEX)
    for due in ("2030-01-01T09:00:00Z", "2030-01-02T09:00:00Z"):
        task(activity_api, globex_contact, GLOBEX, due)
    return {
        "contact": contact,
        "note": note["id"],
        "meeting": meeting["id"],
        "task": todo["id"],
        "missing": new_ulid(),
        "globex_contact": globex_contact,
        "globex_note": globex_note["id"],
        "timeline_cursor": next_cursor(activity_api, f"/contacts/{contact}/timeline", ADMIN),
        "note_timeline_cursor": next_cursor(
            activity_api, f"/contacts/{contact}/timeline", ADMIN, {"type": "note"}
        ),
        "other_timeline_cursor": next_cursor(activity_api, f"/contacts/{other}/timeline", ADMIN),
        "globex_timeline_cursor": next_cursor(
            activity_api, f"/contacts/{globex_contact}/timeline", GLOBEX
        ),
        "tasks_cursor": next_cursor(activity_api, "/tasks", ADMIN),
        "my_tasks_cursor": next_cursor(activity_api, "/tasks", ADMIN, {"assignee": "me"}),
        "globex_tasks_cursor": next_cursor(activity_api, "/tasks", GLOBEX),
    }


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_is_refused_and_writes_nothing(
    activity_api: Api, table: Any, world: dict[str, str], row: Row
) -> None:
    assert_refused(activity_api, table, USERS, world, row)


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(ROWS) >= 100
    assert len({row.id for row in ROWS}) == len(ROWS)


def test_valid_versions_of_the_rows_bodies_are_accepted(
    activity_api: Api, world: dict[str, str]
) -> None:
    """The rows fail for the one thing they change: their bases are valid."""
    for body in (NOTE, CALL, EMAIL, MEET, TODO):
        log(activity_api, world["contact"], ADMIN, **body)
