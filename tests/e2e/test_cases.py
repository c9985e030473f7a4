"""Support cases through the local cloud (`crm dev`): a round-robin queue stays fair when
separate processes open cases in it at once; an urgent email becomes an assigned case, an
agent's note and public reply (which meets first response) reach the conversation and the
customer's mailbox, the customer's answer threads back, and solving it mails a satisfaction
link that records a score; and cases left alone (one from the API, one from an email)
breach on their own, on time, once."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
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


def receive(cloud: CloudProcess, message: EmailMessage, folder: Path) -> dict[str, Any]:
    """`crm mail receive`: the message through the mail bucket and inbound_mail, as SES."""
    path = folder / f"{abs(hash(message['Message-ID']))}.eml"
    path.write_bytes(bytes(message))
    done = cloud.crm("mail", "receive", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = json.loads(done.stdout)
    return dict(result)


def customer_email(subject: str, to: str, text: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Grace Hopper <grace@example.org>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{time.time_ns()}@example.org>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message


@pytest.fixture(scope="module")
def help_desk(
    cloud: CloudProcess, left_alone: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The SLA tenant's queue with a mailbox (round robin over two agents), and an urgent
    email to it left alone from the start, so that its minute runs meanwhile too."""
    token = left_alone["token"]
    queue = {"name": "Help", "members": ["ann", "bob"], "assignment": "round_robin"}
    status, _, created = cloud.call("POST", "/queues", token, {**queue, "mailbox": "help"})
    assert status == 201, created
    folder = tmp_path_factory.mktemp("mail")
    ignored = customer_email("Login broken", created["address"], "Cannot log in.", X_Priority="1")
    received = receive(cloud, ignored, folder)
    assert received["outcome"] == "opened", received
    return {"queue": created, "token": token, "folder": folder, "ignored": received["case_id"]}


def waited(check: Callable[[], Any], seconds: float = 20) -> Any:
    """`check()`'s first truthy answer within `seconds` (asynchronous paths: the bus, the
    mailer)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"nothing after {seconds} s")


def mailbox(cloud: CloudProcess, case_id: str) -> list[dict[str, Any]]:
    status, _, emails = cloud.call("GET", "/_local/mailbox", None, Accept="application/json")
    assert status == 200, emails
    return [e for e in emails if e["headers"].get("X-CRM-Case") == case_id]


def bus(cloud: CloudProcess, detail_type: str, case_id: str) -> list[dict[str, Any]]:
    _, _, recent = cloud.call("GET", "/_local/events", None, accept="application/json")
    return [
        e
        for e in recent
        if e.get("detail-type") == detail_type
        and (e["detail"]["data"].get("case") or {}).get("id", e["detail"]["data"].get("case_id"))
        == case_id
    ]


def test_an_urgent_email_becomes_a_case_answered_solved_and_rated(
    cloud: CloudProcess, help_desk: dict[str, Any]
) -> None:
    token, queue, folder = help_desk["token"], help_desk["queue"], help_desk["folder"]
    email = customer_email("Site down", queue["address"], "Our site is down!", X_Priority="1")
    opened = receive(cloud, email, folder)
    assert opened["outcome"] == "opened", opened
    case_id = opened["case_id"]
    status, _, case = cloud.call("GET", f"/cases/{case_id}", token)
    assert status == 200, case
    assert (case["priority"], case["channel"], case["queue_id"]) == ("urgent", "email", queue["id"])
    assert case["assignee_id"] in ("ann", "bob")  # the queue assigned it

    path = f"/cases/{case_id}/replies"
    note = {"body": "Paging the on-call engineer.", "public": False}
    status, _, _ = cloud.call("POST", path, token, note)
    assert status == 201
    answer = {"body": "We are on it; back within the hour.", "public": True}
    status, _, _ = cloud.call("POST", path, token, answer)
    assert status == 201
    status, _, case = cloud.call("GET", f"/cases/{case_id}", token)
    first = case["sla"]["first_response"]
    assert first["met_at"] is not None
    assert first["breached"] is False
    (sent,) = waited(lambda: mailbox(cloud, case_id))
    assert sent["to"] == ["grace@example.org"]
    assert "We are on it" in sent["text"]
    assert "Paging" not in json.dumps(sent)  # the note stays internal
    reply_to = sent["headers"]["Reply-To"]
    assert reply_to.startswith("e2e-cases-sla.help+")

    again = customer_email("Re: Site down", reply_to, "Thanks, it is back.")
    threaded = receive(cloud, again, folder)
    assert (threaded["outcome"], threaded["case_id"]) == ("threaded", case_id)
    status, _, conversation = cloud.call("GET", f"/cases/{case_id}/conversation", token)
    kinds = [(e["kind"], e["public"]) for e in conversation["items"]]
    assert kinds == [("inbound", True), ("note", False), ("reply", True), ("inbound", True)]

    status, _, case = cloud.call("GET", f"/cases/{case_id}", token)
    solved = cloud.call(
        "PATCH",
        f"/cases/{case_id}",
        token,
        {"status": "solved"},
        **{"If-Match": f'"{case["version"]}"'},
    )
    assert solved[0] == 200, solved
    notice = waited(lambda: [m for m in mailbox(cloud, case_id) if "is solved" in m["text"]])[0]
    link = re.search(r"(http://\S+/csat\?token=\S+)", notice["text"])
    assert link, notice["text"]
    with urllib.request.urlopen(link.group(1), timeout=30) as page:
        assert page.status == 200
        assert b"Site down" in page.read()
    rate = urllib.request.Request(
        link.group(1),
        data=b"score=5&comment=Fast",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(rate, timeout=30) as recorded:
        assert recorded.status == 200
    status, _, case = cloud.call("GET", f"/cases/{case_id}", token)
    assert case["satisfaction"]["score"] == 5
    assert waited(lambda: bus(cloud, "CaseRated", case_id))


@pytest.mark.usefixtures("left_alone", "help_desk")
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
    assert case["id"] in [c["id"] for c in listed["items"]]


def test_an_email_case_left_alone_breaches_once(
    cloud: CloudProcess, help_desk: dict[str, Any]
) -> None:
    """The urgent email received first, never answered: breached on its own."""
    case_id = help_desk["ignored"]
    waited(lambda: "CaseSlaBreached" in sla_events(cloud, case_id), seconds=90)
    assert sla_events(cloud, case_id) == ["CaseSlaWarning", "CaseSlaBreached"]
    _status, _, listed = cloud.call("GET", "/cases?sla=breached", help_desk["token"])
    assert case_id in [c["id"] for c in listed["items"]]
