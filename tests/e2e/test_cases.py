"""Support cases through the local cloud (`crm dev`): a round-robin queue stays fair when
separate processes open cases in it at once, and a case left alone breaches on its own,
on time, once."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import Any

import pytest

from infra.ops.local_http import request
from tests.e2e.conftest import CloudProcess

TENANT = "e2e-cases"
MEMBERS = ["ann", "bob", "cyd"]
PROCESSES = 3
CASES_EACH = 8
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def open_cases(api: str, token: str, queue_id: str, count: int) -> list[str]:
    """One client process: `count` cases in the queue, a 429 tried again as a client does;
    the assignee of each."""
    assignees = []
    headers = {"Authorization": f"Bearer {token}"}
    for n in range(count):
        body = {"subject": f"Burst {n}", "queue_id": queue_id}
        for attempt in range(8):
            status, _, reply = request("POST", f"{api}/cases", body, headers)
            if status != 429:
                break
            time.sleep(0.05 * 2**attempt)
        assert status == 201, reply
        assignees.append(str(reply["assignee_id"]))
    return assignees


@pytest.fixture(scope="module")
def left_alone(cloud: CloudProcess) -> dict[str, Any]:
    """An urgent case due in one business minute (round the clock, warning at half), opened
    first so that its minute runs while the module's other tests do."""
    tenant = f"{TENANT}-sla"
    assert cloud.crm("tenant", "create", tenant).returncode == 0
    token = cloud.token(tenant, "admin")
    policy = {
        "business_hours": {"timezone": "UTC", "week": {d: [["00:00", "24:00"]] for d in WEEK}},
        "targets": {"urgent": {"first_response_minutes": 1}},
        "warn_at_percent": 50,
    }
    status, _, saved = cloud.call("PUT", "/settings/sla", token, policy)
    assert status == 200, saved
    body = {"subject": "Down", "priority": "urgent"}
    status, _, case = cloud.call("POST", "/cases", token, body)
    assert status == 201, case
    return {"case": case, "token": token}


@pytest.mark.usefixtures("left_alone")
def test_round_robin_is_fair_across_processes(cloud: CloudProcess) -> None:
    assert cloud.crm("tenant", "create", TENANT).returncode == 0
    token = cloud.token(TENANT, "admin")
    queue = {"name": "Burst", "members": MEMBERS, "assignment": "round_robin"}
    status, _, created = cloud.call("POST", "/queues", token, queue)
    assert status == 201, created
    with ProcessPoolExecutor(max_workers=PROCESSES) as pool:
        runs = [
            pool.submit(open_cases, cloud.api, token, created["id"], CASES_EACH)
            for _ in range(PROCESSES)
        ]
        assignees = Counter(a for run in runs for a in run.result())
    each = PROCESSES * CASES_EACH // len(MEMBERS)
    assert assignees == dict.fromkeys(MEMBERS, each)
    status, _, shown = cloud.call("GET", f"/queues/{created['id']}", token)
    assert shown["open_by_member"] == dict.fromkeys(MEMBERS, each)


def sla_events(cloud: CloudProcess, case_id: str) -> list[str]:
    """The SLA events of the case among the bus's recent ones, oldest first."""
    _, _, recent = cloud.call("GET", "/_local/events", None, accept="application/json")
    return [
        e["detail-type"]
        for e in reversed(recent)
        if e.get("detail-type", "").startswith("CaseSla")
        and e["detail"]["data"]["case"]["id"] == case_id
    ]


def test_a_case_left_alone_breaches_on_time_once(
    cloud: CloudProcess, left_alone: dict[str, Any]
) -> None:
    """Opened before the fairness test (its minute runs meanwhile): the warning at half of
    it, the breach at its due time, each once, and the case listed as breached."""
    case, token = left_alone["case"], left_alone["token"]
    due = datetime.fromisoformat(case["sla"]["first_response"]["due_at"].replace("Z", "+00:00"))
    seen: list[str] = []
    while time.time() < due.timestamp() + 20 and "CaseSlaBreached" not in seen:
        seen = sla_events(cloud, case["id"])
        time.sleep(0.1)
    late = time.time() - due.timestamp()
    assert seen == ["CaseSlaWarning", "CaseSlaBreached"], seen
    assert late < 5, f"the breach came {late:.1f} s after its due time"
    time.sleep(2)  # a second firing, or a late one, announces nothing more
    assert sla_events(cloud, case["id"]) == ["CaseSlaWarning", "CaseSlaBreached"]
    status, _, listed = cloud.call("GET", "/cases?sla=breached", token)
    assert status == 200, listed
    assert [c["id"] for c in listed["items"]] == [case["id"]]
