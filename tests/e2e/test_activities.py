"""Activities through `crm dev`: log each type, read the timeline, list my open tasks,
complete one; ActivityLogged reaches the bus; a merge brings the timeline along."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import CloudProcess


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _events(cloud: CloudProcess, detail_type: str, wanted: set[str], key: str) -> set[str]:
    """Ids (`data.<key>.id`) of the recent `detail_type` events on the bus, until all wanted."""
    seen: set[str] = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, _, recent = cloud.call("GET", "/_local/events", None, Accept="application/json")
        assert status == 200
        seen = {e["detail"]["data"][key]["id"] for e in recent if e["detail-type"] == detail_type}
        if wanted <= seen:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"{detail_type} of {wanted - seen} never appeared on /_local/events")


def test_a_salesperson_logs_reads_and_completes_through_the_local_cloud(
    cloud: CloudProcess,
) -> None:
    token = cloud.token("demo", "sales")
    status, _, contact = cloud.call("POST", "/contacts", token, {"email": "e2e-act@example.com"})
    assert status == 201, contact
    cid = contact["id"]
    now = datetime.now(UTC)
    bodies: list[dict[str, Any]] = [
        {"type": "note", "body": "Met at a fair.", "occurred_at": _iso(now - timedelta(days=3))},
        {"type": "call", "direction": "outbound", "outcome": "connected", "duration_s": 420},
        {
            "type": "email",
            "direction": "outbound",
            "subject": "Our proposal",
            "from": "sales@demo.example.com",
            "to": ["e2e-act@example.com"],
            "body": "Please find it attached.",
        },
        {
            "type": "meeting",
            "title": "Demo",
            "starts_at": _iso(now - timedelta(days=1, hours=1)),
            "ends_at": _iso(now - timedelta(days=1)),
            "attendees": ["e2e-act@example.com"],
        },
        {"type": "task", "subject": "Send the contract", "due_at": _iso(now + timedelta(days=2))},
    ]  # fmt: skip
    logged = []
    for body in bodies:
        status, headers, activity = cloud.call("POST", f"/contacts/{cid}/activities", token, body)
        assert status == 201, activity
        assert headers["location"] == f"/contacts/{cid}/activities/{activity['id']}"
        logged.append(activity)

    status, _, page = cloud.call("GET", f"/contacts/{cid}/timeline", token)
    assert status == 200, page
    assert [a["type"] for a in page["items"]] == ["task", "email", "call", "meeting", "note"]
    status, _, calls = cloud.call("GET", f"/contacts/{cid}/timeline?type=call,meeting", token)
    assert [a["type"] for a in calls["items"]] == ["call", "meeting"]

    status, _, tasks = cloud.call("GET", "/tasks?assignee=me&status=open", token)
    assert status == 200, tasks
    task = logged[-1]
    assert task["id"] in [t["id"] for t in tasks["items"]]
    path = f"/contacts/{cid}/activities/{task['id']}"
    status, _, done = cloud.call(
        "PATCH", path, token, {"status": "completed"}, **{"If-Match": '"1"'}
    )
    assert status == 200, done
    assert done["status"] == "completed"
    assert done["completed_at"]
    status, _, tasks = cloud.call("GET", "/tasks?assignee=me&status=open", token)
    assert task["id"] not in [t["id"] for t in tasks["items"]]

    status, _, read = cloud.call("GET", f"/contacts/{cid}", token)
    assert read["activity_counts"] == {"call": 1, "email": 1, "meeting": 1, "note": 1, "task": 1}
    assert read["last_activity_at"] == logged[-1]["occurred_at"]

    _events(cloud, "ActivityLogged", {a["id"] for a in logged}, "activity")


def test_a_merge_brings_the_merged_contacts_timeline_along(cloud: CloudProcess) -> None:
    token = cloud.token("demo", "admin")
    ids = []
    for email in ("keep@example.com", "dupe@example.com"):
        status, _, contact = cloud.call("POST", "/contacts", token, {"email": email})
        assert status == 201, contact
        ids.append(contact["id"])
    survivor, loser = ids
    moved = set()
    for n in range(3):
        status, _, note = cloud.call(
            "POST", f"/contacts/{loser}/activities", token, {"type": "note", "body": f"n{n}"}
        )
        assert status == 201, note
        moved.add(note["id"])
    status, _, merged = cloud.call("POST", f"/contacts/{survivor}/merge", token, {"from_id": loser})
    assert status == 200, merged

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, _, page = cloud.call("GET", f"/contacts/{survivor}/timeline", token)
        if {a["id"] for a in page["items"]} == moved:
            break
        time.sleep(0.2)
    assert {a["id"] for a in page["items"]} == moved
    status, _, contact = cloud.call("GET", f"/contacts/{survivor}", token)
    assert contact["activity_counts"] == {"note": 3}
    # The old address of a moved activity redirects (308) to it under the survivor; the
    # client here follows redirects, as browsers and most HTTP libraries do.
    status, _, activity = cloud.call("GET", f"/contacts/{loser}/activities/{min(moved)}", token)
    assert status == 200, activity
    assert activity["id"] == min(moved)
    assert activity["contact_id"] == survivor
