"""Lead intake through `crm dev`: an admin creates a source, signed webhooks bring leads in,
and each becomes a contact with a form_submission, or is rejected with a reason.

Each test works in a tenant of its own, so contact counts are exact.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from crm_core.leads import signature
from infra.ops.webhook_cli import Answer, send
from tests.e2e.conftest import CloudProcess

SETTLE_SECONDS = 600  # the burst's 500 deliveries, through the bus, on 2 cores
STOP_SECONDS = 120  # a clean stop saves every item of the table first


# Helpers -----------------------------------------------------------------------------------
def new_tenant(cloud: CloudProcess) -> tuple[str, str]:
    """A tenant of the test's own and its admin's token."""
    tenant = f"leads-{uuid.uuid4().hex[:10]}"
    created = cloud.crm("tenant", "create", tenant)
    assert created.returncode == 0, created.stderr
    return tenant, cloud.token(tenant, "admin")


def create_source(cloud: CloudProcess, token: str, name: str = "Website form") -> tuple[str, str]:
    status, headers, source = cloud.call("POST", "/lead-sources", token, {"name": name})
    assert status == 201, source
    assert source["secret"].startswith("whsec_")
    assert source["webhook_path"] == f"/webhooks/leads/{source['id']}"
    assert headers["location"] == f"/lead-sources/{source['id']}"
    return source["id"], source["secret"]


def pages(cloud: CloudProcess, token: str, path: str) -> list[dict[str, Any]]:
    """Every item of a list route, page by page."""
    items: list[dict[str, Any]] = []
    sep = "&" if "?" in path else "?"
    cursor = ""
    while True:
        for _ in range(3):
            status, _, page = cloud.call("GET", f"{path}{sep}limit=100{cursor}", token)
            if status < 500:  # a read past its timeout on a loaded machine: read again
                break
            time.sleep(2)
        assert status == 200, page
        items += page["items"]
        if not page["next_cursor"]:
            return items
        cursor = f"&cursor={page['next_cursor']}"


def deliveries(
    cloud: CloudProcess, token: str, source_id: str, status: str | None = None
) -> list[dict[str, Any]]:
    query = f"?status={status}" if status else ""
    return pages(cloud, token, f"/lead-sources/{source_id}/deliveries{query}")


def wait_until_settled(
    cloud: CloudProcess, token: str, source_id: str, timeout: float, every: float = 0.3
) -> None:
    """Until no delivery is `accepted` (waiting for lead_processor) or `failed` (waiting
    for a retry). At the deadline the caller's assertions say what is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = False
        for state in ("accepted", "failed"):
            path = f"/lead-sources/{source_id}/deliveries?status={state}&limit=1"
            status, _, page = cloud.call("GET", path, token)
            if status >= 500:  # the read past its timeout on a loaded machine: poll again
                print(f"{path}: {status}, polled again")
                waiting = True
                continue
            assert status == 200, (path, status, page)
            waiting = waiting or bool(page["items"])
        if not waiting:
            return
        time.sleep(every)


def lead_id_of(answer: Answer) -> str:
    assert answer.status == 202, (answer.status, answer.body)
    assert answer.headers["content-type"] == "application/json"
    return str(json.loads(answer.body)["lead_id"])


def contacts_of(cloud: CloudProcess, token: str, email: str) -> list[dict[str, Any]]:
    status, _, page = cloud.call("GET", f"/contacts?email={email}", token)
    assert status == 200, page
    return list(page["items"])


# (a) The done-when -------------------------------------------------------------------------
def test_a_lead_sent_with_crm_webhook_send_becomes_a_contact_with_a_form_submission(
    cloud: CloudProcess, tmp_path: Path
) -> None:
    _, token = new_tenant(cloud)
    source_id, secret = create_source(cloud, token)
    lead = tmp_path / "lead.json"
    lead.write_bytes(
        b'{"email": "Ada.Lovelace@Example.com", "first_name": "Ada", "last_name": "Lovelace",'
        b' "company": "Analytical Engines", "utm_source": "e2e"}\n'
    )
    sent = cloud.crm(
        "webhook", "send", "--source", source_id, "--secret", secret, "--file", str(lead)
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    status_line, body = sent.stdout.split("\n", 1)
    assert status_line == "202 Accepted"
    assert secret not in sent.stdout + sent.stderr
    lead_id = json.loads(body)["lead_id"]

    wait_until_settled(cloud, token, source_id, 30)
    status, _, delivery = cloud.call(
        "GET", f"/lead-sources/{source_id}/deliveries/{lead_id}", token
    )
    assert status == 200, delivery
    assert delivery["status"] == "processed", delivery
    assert delivery["payload"] == lead.read_text()  # the raw body, exactly as sent
    contact_id = delivery["contact_id"]
    assert contact_id

    status, _, contact = cloud.call("GET", f"/contacts/{contact_id}", token)
    assert status == 200, contact
    assert (contact["email"], contact["first_name"], contact["last_name"]) == (
        "ada.lovelace@example.com",
        "Ada",
        "Lovelace",
    )
    status, _, timeline = cloud.call("GET", f"/contacts/{contact_id}/timeline", token)
    assert status == 200, timeline
    submissions = [a for a in timeline["items"] if a["type"] == "form_submission"]
    assert len(submissions) == 1, timeline
    if delivery.get("activity_id"):
        assert submissions[0]["id"] == delivery["activity_id"]

    (listed,) = deliveries(cloud, token, source_id)
    assert (listed["lead_id"], listed["status"], listed["contact_id"]) == (
        lead_id,
        "processed",
        contact_id,
    )
    assert listed.get("reason") is None

    # The same person again, form-encoded: the same contact, a second submission.
    form = tmp_path / "lead.form"
    form.write_bytes(urlencode({"email": "ada.lovelace@example.com", "title": "Countess"}).encode())
    again = cloud.crm(
        "webhook", "send", "--source", source_id, "--secret", secret, "--file", str(form), "--form"
    )
    assert again.returncode == 0, again.stdout + again.stderr
    wait_until_settled(cloud, token, source_id, 30)
    items = deliveries(cloud, token, source_id)
    assert [(d["status"], d["contact_id"]) for d in items] == [("processed", contact_id)] * 2
    assert [c["id"] for c in contacts_of(cloud, token, "ada.lovelace@example.com")] == [contact_id]
    status, _, timeline = cloud.call("GET", f"/contacts/{contact_id}/timeline", token)
    assert [a["type"] for a in timeline["items"]].count("form_submission") == 2


# (b) Refused deliveries leave nothing ------------------------------------------------------
def test_forged_stale_or_malformed_deliveries_are_refused_and_leave_nothing(
    cloud: CloudProcess,
) -> None:
    _, token = new_tenant(cloud)
    source_id, secret = create_source(cloud, token)
    body = json.dumps({"email": "mallory@example.com", "first_name": "Mallory"}).encode()
    forged_secret = "whsec_" + "A" * 43
    now = int(time.time())
    refusals: list[tuple[str, Answer, int]] = [
        ("wrong secret", send(cloud.api, source_id, forged_secret, body), 401),
        ("stale", send(cloud.api, source_id, secret, body, timestamp=now - 400), 401),
        ("from the future", send(cloud.api, source_id, secret, body, timestamp=now + 400), 401),
        ("unknown source", send(cloud.api, "01" + "Z" * 24, secret, body), 401),
        ("not JSON", send(cloud.api, source_id, secret, b"{not json"), 400),
        ("a JSON list", send(cloud.api, source_id, secret, b"[1, 2]"), 400),
        ("too large", send(cloud.api, source_id, secret, b" " * (128 * 1024 + 1)), 413),
    ]
    for case, answer, expected in refusals:
        assert answer.status == expected, (case, answer)
        assert answer.headers["content-type"] == "application/problem+json", case
        problem = json.loads(answer.body)
        assert problem["status"] == expected, (case, problem)
        assert secret not in answer.body.decode(), case
    # A signature over other bytes than those sent (the body changed on the way).
    status, _, reply = _post(cloud, source_id, body + b" ", signature.header(secret, now, body))
    assert status == 401, reply
    status, _, reply = _post(cloud, source_id, body, None)
    assert status == 401, reply
    status, _, reply = _post(
        cloud, source_id, body, signature.header(secret, now, body), content_type="text/plain"
    )
    assert status == 415, reply

    assert deliveries(cloud, token, source_id) == []
    assert contacts_of(cloud, token, "mallory@example.com") == []
    # The source still works with its real secret.
    lead_id = lead_id_of(send(cloud.api, source_id, secret, body))
    assert [d["lead_id"] for d in deliveries(cloud, token, source_id)] == [lead_id]


def _post(
    cloud: CloudProcess,
    source_id: str,
    body: bytes,
    signed: str | None,
    content_type: str = "application/json",
) -> tuple[int, dict[str, str], Any]:
    """A raw delivery: any signature header (or none), any content type."""
    headers = {"Content-Type": content_type}
    if signed is not None:
        headers["Crm-Signature"] = signed
    request = urllib.request.Request(
        f"{cloud.api}/webhooks/leads/{source_id}", data=body, method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


# (c) A burst -------------------------------------------------------------------------------
DISTINCT = 440  # leads with an email of their own
DUPLICATE_EMAILS = 10  # of those emails, each sent 3 more times (other bodies)
DUPLICATES_EACH = 3
UNUSABLE = 25  # neither email nor phone: rejected
RESENT = 5  # exact re-sends of earlier deliveries (same bytes, same timestamp)
FORM_EVERY = 20  # every 20th distinct lead form-encoded


@pytest.fixture
def own_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudProcess]:
    """A local cloud for one test: the burst's thousands of items neither slow the shared
    cloud's other tests nor are slowed by theirs."""
    cloud = CloudProcess(tmp_path_factory.mktemp("crm-leads"))
    cloud.start()
    try:
        yield cloud
    finally:
        cloud.stop(STOP_SECONDS)  # how it stops is test_restart's and (d)'s business


def test_a_burst_of_500_deliveries_ends_processed_or_rejected_each_exactly_once(
    own_cloud: CloudProcess,
) -> None:
    cloud = own_cloud
    _, token = new_tenant(cloud)
    source_id, secret = create_source(cloud, token, "Burst")
    run = uuid.uuid4().hex[:6]
    resent_at = int(time.time())

    def email(n: int) -> str:
        return f"burst-{run}-{n}@example.com"

    planned: list[tuple[str, bytes, bool]] = []  # (kind, body, form)
    for n in range(DISTINCT):
        fields = {"email": email(n), "first_name": "Lead", "last_name": str(n)}
        if n % FORM_EVERY == 0:
            planned.append(("distinct", urlencode(fields).encode(), True))
        else:
            planned.append(("distinct", json.dumps(fields).encode(), False))
    for n in range(DUPLICATE_EMAILS):
        for k in range(DUPLICATES_EACH):
            # Another body for the same person; one in upper case (emails are normalized).
            address = email(n).upper() if k == 0 else email(n)
            fields = {"email": address, "first_name": "Again", "last_name": f"{n}-{k}"}
            planned.append(("duplicate", json.dumps(fields).encode(), False))
    for n in range(UNUSABLE):
        fields = {"first_name": "Nobody", "company": f"Unknown {n}", "utm_source": "burst"}
        planned.append(("unusable", json.dumps(fields).encode(), False))
    # Exact re-sends of distinct JSON leads, right after their originals: both in flight at once.
    resent = [i for i in range(1, DISTINCT) if i % FORM_EVERY][:RESENT]
    order = [i for index in range(len(planned)) for i in [index] * (2 if index in resent else 1)]
    assert len(order) == 500

    retried: list[int] = []

    def deliver(index: int) -> tuple[int, str]:
        _, body, form = planned[index]
        # A re-sent delivery and its original are signed at the same second: the same delivery.
        signed_at = resent_at if index in resent else int(time.time())
        # A 5xx (the webhook past its timeout on a loaded machine) is retried with the same
        # bytes and signature, as lead sources retry: still the same delivery, once.
        for _ in range(2):
            answer = send(cloud.api, source_id, secret, body, form=form, timestamp=signed_at)
            if answer.status < 500:
                break
            retried.append(index)
            time.sleep(1)
        else:
            answer = send(cloud.api, source_id, secret, body, form=form, timestamp=signed_at)
        return index, lead_id_of(answer)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answered = list(pool.map(deliver, order))
    print(
        f"{len(retried)} deliveries retried after a 5xx; sent in {time.monotonic() - started:.0f} s"
    )

    lead_ids: dict[int, set[str]] = {}
    for index, lead_id in answered:
        lead_ids.setdefault(index, set()).add(lead_id)
    assert sorted(i for i, n in Counter(i for i, _ in answered).items() if n == 2) == resent
    # An exact re-send answers the first delivery's lead_id; every other delivery its own.
    assert all(len(ids) == 1 for ids in lead_ids.values()), {
        i: ids for i, ids in lead_ids.items() if len(ids) > 1
    }
    accepted = {index: ids.pop() for index, ids in lead_ids.items()}
    assert len(accepted) == len(planned) == len(set(accepted.values())) == 495

    # Polled every 5 s: each poll is an index Query, which the local endpoint answers by
    # looking at every item of the table once (docs/local-cloud.md).
    started = time.monotonic()
    wait_until_settled(cloud, token, source_id, SETTLE_SECONDS, every=5.0)
    print(f"settled in {time.monotonic() - started:.0f} s")
    logged = deliveries(cloud, token, source_id)
    times = Counter(d["lead_id"] for d in logged)
    assert [i for i, n in times.items() if n > 1] == []
    assert set(times) == set(accepted.values())  # none missing, none extra
    by_id = {d["lead_id"]: d for d in logged}
    outcome = Counter(by_id[lead_id]["status"] for lead_id in accepted.values())
    unsettled = [
        (d["lead_id"], d["status"], d.get("reason"))
        for d in logged
        if d["status"] not in ("processed", "rejected")
    ]
    usable = DISTINCT + DUPLICATE_EMAILS * DUPLICATES_EACH
    assert outcome == {"processed": usable, "rejected": UNUSABLE}, unsettled
    contact_of_email: dict[str, str] = {}
    for index, lead_id in accepted.items():
        kind, body, form = planned[index]
        delivery = by_id[lead_id]
        if kind == "unusable":
            assert delivery["status"] == "rejected"
            assert delivery["reason"], delivery
            assert delivery.get("contact_id") is None, delivery
            continue
        assert delivery["status"] == "processed", delivery
        assert delivery["contact_id"], delivery
        fields = dict(_fields(body, form))
        address = str(fields["email"]).lower()
        # Every lead of one email lands on one contact.
        first = contact_of_email.setdefault(address, delivery["contact_id"])
        assert first == delivery["contact_id"], (address, first, delivery)
    assert len(contact_of_email) == DISTINCT

    contacts = pages(cloud, token, "/contacts")
    assert len(contacts) == DISTINCT == len({c["email"] for c in contacts})
    assert {c["id"] for c in contacts} == set(contact_of_email.values())


def _fields(body: bytes, form: bool) -> dict[str, Any]:
    if form:
        return dict(parse_qsl(body.decode()))
    return dict(json.loads(body))


# (d) A restart keeps the sources' secrets --------------------------------------------------
def test_a_source_created_before_a_restart_still_verifies_after_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Secrets are sealed with the stage's KMS key: the local cloud must bring the same key
    back (docs/local-cloud.md), or no source created before the restart could sign again."""
    cloud = CloudProcess(tmp_path_factory.mktemp("crm-leads-restart"))
    cloud.start()
    try:
        token = cloud.token("demo", "admin")
        source_id, secret = create_source(cloud, token, "Before the restart")
    finally:
        assert cloud.stop(STOP_SECONDS) == 0  # a clean stop saves the state, keys included
    cloud.start()
    try:
        token = cloud.token("demo", "admin")
        body = b'{"email": "after-restart@example.com"}'
        lead_id = lead_id_of(send(cloud.api, source_id, secret, body))
        wrong = send(cloud.api, source_id, "whsec_" + "B" * 43, body + b" ")
        assert wrong.status == 401, wrong
        wait_until_settled(cloud, token, source_id, 30)
        status, _, delivery = cloud.call(
            "GET", f"/lead-sources/{source_id}/deliveries/{lead_id}", token
        )
        assert (status, delivery["status"]) == (200, "processed"), delivery
    finally:
        assert cloud.stop(STOP_SECONDS) == 0
