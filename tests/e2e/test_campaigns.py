"""Campaigns through `crm dev` (issue 8's done-when).

A segment of four newsletter contacts (three subscribed, one whose consent is unknown) and a
campaign scheduled a minute ahead: at that time, and not before, it sends to exactly the
three consenting contacts; the mailbox shows their emails with RFC 8058 headers; one of them
unsubscribes with the one-click POST of their List-Unsubscribe link; a second campaign to
the same segment, sent now, skips them; the stats of both add up.

The test works in a tenant of its own, so the mailbox's emails are told apart by the
campaign header.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from tests.e2e.conftest import CloudProcess

SCHEDULE_AHEAD = timedelta(seconds=60)
# Generous for a loaded CI machine: the schedule fires within a tick (0.5 s) of its time,
# and a few emails then take about a second.
SENT_WITHIN = 90.0
ZONE = "Europe/Paris"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], within: float, every: float = 0.25) -> T:
    deadline = time.monotonic() + within
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(every)


class Scene:
    def __init__(self, cloud: CloudProcess) -> None:
        self.cloud = cloud
        self.tenant = f"campaigns-{uuid.uuid4().hex[:10]}"
        created = cloud.crm("tenant", "create", self.tenant)
        assert created.returncode == 0, created.stderr
        self.token = cloud.token(self.tenant, "admin")

    def call(self, method: str, path: str, body: Any = None, ok: int = 200) -> Any:
        status, _, answer = self.cloud.call(method, path, self.token, body)
        assert status == ok, (method, path, status, answer)
        return answer

    def contact(self, email: str, consent: str, tags: list[str]) -> str:
        body = {"email": email, "first_name": email.split("@")[0].title(), "tags": tags}
        body["email_consent"] = consent
        return str(self.call("POST", "/contacts", body, 201)["id"])

    def campaign(self, segment_id: str, name: str) -> dict[str, Any]:
        body = {
            "name": name,
            "segment_id": segment_id,
            # The tenant's namespace on the local cloud's sending domain (SenderDomain).
            "from_address": f"{self.tenant.lower()}.news@example.com",
            "from_name": "Acme News",
            "subject": "{{ first_name | default('Hello') }}, our {{ 'June' }} news",
            "html": "<p>Hi {{ first_name | default('there') }},</p><p>News.</p>",
            "text": "Hi {{ first_name | default('there') }},\n\nNews.",
        }
        return dict(self.call("POST", "/campaigns", body, 201))

    def state(self, campaign_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/campaigns/{campaign_id}"))

    def mailbox(self, campaign_id: str) -> list[dict[str, Any]]:
        status, _, emails = self.cloud.call(
            "GET", "/_local/mailbox", None, Accept="application/json"
        )
        assert status == 200, emails
        return [e for e in emails if e["headers"].get("X-CRM-Campaign") == campaign_id]


def addresses(emails: list[dict[str, Any]]) -> list[str]:
    return sorted(to.rpartition("<")[2].rstrip(">") for e in emails for to in e["to"])


def settled(scene: Scene, campaign_id: str, delivered: int) -> dict[str, Any] | None:
    """The campaign once sent and its deliveries counted (SES events come a second later)."""
    campaign = scene.state(campaign_id)
    done = campaign["state"] == "sent" and campaign["stats"]["delivered"] == delivered
    return campaign if done else None


def one_click(link: str) -> int:
    """What a mailbox provider does for RFC 8058: POST the link, form-encoded, no cookies."""
    request = urllib.request.Request(
        link,
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_a_scheduled_campaign_reaches_exactly_the_consenting_once_and_unsubscribe_sticks(
    cloud: CloudProcess,
) -> None:
    scene = Scene(cloud)
    ada = scene.contact("ada@example.com", "subscribed", ["newsletter"])
    scene.contact("grace@example.com", "subscribed", ["newsletter"])
    scene.contact("linus@example.com", "subscribed", ["newsletter", "beta"])
    scene.contact("unsure@example.com", "unknown", ["newsletter"])
    scene.contact("other@example.com", "subscribed", ["partners"])
    scene.call("PUT", "/settings/email", {"postal_address": "1 Rue de la Paix, 75002 Paris"})
    segment = scene.call(
        "POST",
        "/segments",
        {"name": "Newsletter", "filter": {"tags": {"any": ["newsletter"]}}},
        201,
    )
    preview = scene.call("GET", f"/segments/{segment['id']}/preview")
    assert preview["count"] == 4

    # Scheduled a minute ahead, as a wall-clock time in Paris.
    first = scene.campaign(segment["id"], "June news")
    send_at = datetime.now(UTC) + SCHEDULE_AHEAD
    local = send_at.astimezone(ZoneInfo(ZONE)).replace(tzinfo=None, microsecond=0)
    scheduled = scene.call(
        "POST",
        f"/campaigns/{first['id']}/schedule",
        {"send_at": local.isoformat(), "timezone": ZONE},
    )
    assert scheduled["state"] == "scheduled"
    due = datetime.fromisoformat(scheduled["send_at"].replace("Z", "+00:00"))
    assert abs((due - send_at).total_seconds()) < 1.5

    # Not before its time...
    while datetime.now(UTC) < due - timedelta(seconds=3):
        assert scene.state(first["id"])["state"] == "scheduled"
        assert scene.mailbox(first["id"]) == []
        time.sleep(1)
    # ...then to exactly the three who consented, once each.
    sent = wait_for("the first campaign sent", lambda: settled(scene, first["id"], 3), SENT_WITHIN)
    started = datetime.fromisoformat(sent["sending_started_at"].replace("Z", "+00:00"))
    assert started >= due - timedelta(seconds=1)
    print(f"\nscheduled for {due.isoformat()}, sending from {started.isoformat()}")
    emails = scene.mailbox(first["id"])
    assert addresses(emails) == ["ada@example.com", "grace@example.com", "linus@example.com"]
    for email in emails:
        headers = email["headers"]
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert headers["List-Unsubscribe"].startswith(f"<{cloud.api}/unsubscribe?token=")
        assert "1 Rue de la Paix" in email["text"]
        assert "1 Rue de la Paix" in email["html"]
    stats = sent["stats"]
    assert (stats["audience"], stats["sent"], stats["skipped"], stats["failed"]) == (4, 3, 1, 0)
    skipped = scene.call("GET", f"/campaigns/{first['id']}/recipients?status=skipped")
    assert [r["skip_reason"] for r in skipped["items"]] == ["consent"]

    # Ada unsubscribes with the one-click POST of her link.
    (ada_email,) = [e for e in emails if "ada@example.com" in e["to"][0]]
    link = ada_email["headers"]["List-Unsubscribe"].strip("<>")
    assert one_click(link) == 200
    assert scene.call("GET", f"/contacts/{ada}")["email_consent"] == "unsubscribed"
    wait_for(
        "the unsubscribe counted on the first campaign",
        lambda: True if scene.state(first["id"])["stats"]["unsubscribed"] == 1 else None,
        30.0,
    )

    # A second campaign to the same segment, sent now, skips her.
    second = scene.campaign(segment["id"], "July news")
    assert scene.call("POST", f"/campaigns/{second['id']}/send", ok=202)["state"] == "sending"
    done = wait_for(
        "the second campaign sent", lambda: settled(scene, second["id"], 2), SENT_WITHIN
    )
    assert addresses(scene.mailbox(second["id"])) == ["grace@example.com", "linus@example.com"]
    stats = done["stats"]
    assert (stats["audience"], stats["sent"], stats["skipped"], stats["failed"]) == (4, 2, 2, 0)
    assert stats["delivered"] == 2
    reasons = scene.call("GET", f"/campaigns/{second['id']}/recipients?status=skipped")["items"]
    assert sorted(r["skip_reason"] for r in reasons) == ["consent", "consent"]

    # The first campaign's stats add up.
    final = scene.state(first["id"])["stats"]
    assert final["sent"] + final["skipped"] + final["failed"] == final["audience"]
    assert final["delivered"] == 3
    assert final["unsubscribed"] == 1
    assert final["unsubscribe_rate"] == round(1 / 3, 4)
    # The mailbox never got a second email for anyone.
    assert len(scene.mailbox(first["id"])) == 3
