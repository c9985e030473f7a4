"""The event backbone through `crm dev`: changes made over the HTTP API reach the stage's
bus through the outbox, and `crm events tail` shows them."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

from tests.e2e.conftest import ROOT, CloudProcess


def test_tail_shows_every_change_made_through_the_api(cloud: CloudProcess) -> None:
    tail = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "events", "tail", "--json", "--count", "3",
         "--timeout", "60", "--detail-type", "ContactCreated", "--detail-type", "ContactUpdated",
         "--detail-type", "ContactDeleted"],
        cwd=ROOT,
        env=cloud.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert tail.stderr is not None
    ready = threading.Event()
    banner: list[str] = []

    def watch_banner() -> None:
        assert tail.stderr is not None
        for line in tail.stderr:
            banner.append(line)
            if line.startswith("tailing "):
                ready.set()

    threading.Thread(target=watch_banner, daemon=True).start()
    assert ready.wait(30), "".join(banner)

    token = cloud.token("demo", "admin")
    status, _, created = cloud.call("POST", "/contacts", token, {"email": "tail@example.com"})
    assert status == 201, created
    status, _, _ = cloud.call("PATCH", f"/contacts/{created['id']}", token, {"title": "CEO"})
    assert status == 200
    status, _, _ = cloud.call("DELETE", f"/contacts/{created['id']}", token)
    assert status == 204

    out, _ = tail.communicate(timeout=90)
    assert tail.returncode == 0, "".join(banner)
    events: list[dict[str, Any]] = [json.loads(line) for line in out.splitlines()]
    assert sorted(e["detail-type"] for e in events) == [
        "ContactCreated",
        "ContactDeleted",
        "ContactUpdated",
    ]
    for event in events:
        assert event["source"] == "crm.contacts"
        metadata = event["detail"]["metadata"]
        assert metadata["tenant_id"] == "demo"
        assert metadata["actor"]["type"] == "user"
        assert metadata["correlation_id"]
    updated = next(e for e in events if e["detail-type"] == "ContactUpdated")
    assert updated["detail"]["data"]["changed"] == ["title"]
    assert updated["detail"]["data"]["contact"]["id"] == created["id"]
    deleted = next(e for e in events if e["detail-type"] == "ContactDeleted")
    assert deleted["detail"]["data"]["contact_id"] == created["id"]


def test_recent_events_page_lists_the_bus_events(cloud: CloudProcess) -> None:
    token = cloud.token("demo", "admin")
    status, _, created = cloud.call("POST", "/contacts", token, {"email": "page@example.com"})
    assert status == 201
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, _, recent = cloud.call("GET", "/_local/events", None, Accept="application/json")
        assert status == 200
        # The page lists every bus's events: AWS services' (SES's, after a campaign test
        # sent mail on the shared cloud) have a detail of their own shape.
        ids = [e["detail"].get("data", {}).get("contact", {}).get("id") for e in recent]
        if created["id"] in ids:
            return
        time.sleep(0.2)
    raise AssertionError("the ContactCreated event never appeared on /_local/events")
