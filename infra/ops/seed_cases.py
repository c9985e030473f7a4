"""`crm seed --cases N`: a support queue and cases in every state, through the API.

A queue "Support" (round robin over the tenant's support and admin users, mailbox
`support`), then N cases planned from the seed's random generator: every priority and
channel, about half with a contact, each taken to its status the way an agent would (a
note, a public reply, waiting on the customer, on hold, solved, closed). Run again, it
finds the queue by name and the cases by their `seed_index` attribute, and adds nothing
twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

QUEUE_NAME = "Support"
QUEUE_MAILBOX = "support"
# Every status, with how often (a help desk has mostly open work and a long solved tail).
STATUSES = (
    ("new", 4),
    ("open", 5),
    ("pending", 3),
    ("on_hold", 2),
    ("solved", 4),
    ("closed", 2),
)
PRIORITIES = (("low", 2), ("normal", 5), ("high", 2), ("urgent", 1))
CHANNELS = (("email", 5), ("web", 3), ("phone", 2), ("api", 1))
TYPES = ("question", "incident", "problem", "task")
SUBJECTS = (
    "Invoices show the wrong VAT number",
    "Cannot log in after the password reset",
    "Export to CSV times out",
    "Add a second admin to our account",
    "Webhook deliveries fail with 401",
    "Dashboard numbers differ from the report",
    "Refund for a duplicate charge",
    "How do I move contacts between owners?",
    "Email campaign stuck in sending",
    "Calendar sync stopped yesterday",
)
NOTES = (
    "Reproduced on staging; looks like a cache issue.",
    "Asked billing to check the ledger.",
    "Customer is on the enterprise plan: priority handling.",
)
REPLIES = (
    "Thanks for the report: we are on it and will update you shortly.",
    "Could you send us a screenshot of the error?",
    "This is fixed now. Could you confirm on your side?",
)
# The replies (public when the case has a contact, else notes) and status moves that take a
# case from new to its planned status, as an agent would.
STEPS: dict[str, list[dict[str, Any]]] = {
    "new": [],
    "open": [{"reply": True, "status": "open"}],
    "pending": [{"reply": True, "status": "pending"}],
    "on_hold": [{"reply": False}, {"status": "on_hold"}],
    "solved": [{"reply": True, "status": "pending"}, {"reply": True, "status": "solved"}],
    "closed": [{"reply": True, "status": "solved"}, {"status": "closed"}],
}


class Api(Protocol):
    def call(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]: ...

    def expect(self, method: str, path: str, body: Any = None, **headers: str) -> Any: ...


@dataclass
class CasePlan:
    index: int
    body: dict[str, Any]
    status: str
    steps: list[dict[str, Any]] = field(default_factory=list)


def _weighted(rng: random.Random, choices: Sequence[tuple[str, int]]) -> str:
    values, weights = zip(*choices, strict=True)
    return str(rng.choices(values, weights=weights)[0])


def plan_cases(rng: random.Random, count: int, contact_ids: Sequence[str]) -> list[CasePlan]:
    """`count` cases, every status among the first six (then by weight)."""
    plans = []
    for index in range(count):
        status = STATUSES[index][0] if index < len(STATUSES) else _weighted(rng, STATUSES)
        has_contact = bool(contact_ids) and (status != "new" or rng.random() < 0.5)
        body: dict[str, Any] = {
            "subject": rng.choice(SUBJECTS),
            "description": "Reported by the customer; details in the conversation.",
            "priority": _weighted(rng, PRIORITIES),
            "channel": _weighted(rng, CHANNELS),
            "type": rng.choice(TYPES),
            "tags": rng.sample(("billing", "login", "api", "email", "vip"), rng.randint(0, 2)),
            "attributes": {"seed_index": index},
        }
        if has_contact:
            body["contact_id"] = rng.choice(contact_ids)
        steps: list[dict[str, Any]] = []
        for step in STEPS[status]:
            moved = {"status": step["status"]} if "status" in step else {}
            if "reply" not in step:
                steps.append({"patch": moved})
                continue
            public = bool(step["reply"]) and has_contact
            text = rng.choice(REPLIES if public else NOTES)
            steps.append({"reply": {"body": text, "public": public, **moved}})
        plans.append(CasePlan(index, body, status, steps))
    return plans


def seed_cases(
    api: Api,
    rng: random.Random,
    count: int,
    contact_ids: Sequence[str],
    agents: Sequence[str],
    progress: Callable[[str, int, int], None],
) -> dict[str, int]:
    """The queue and `count` cases; counts of cases created and already there."""
    queue_id = _queue(api, agents)
    already = _seeded(api)
    counts = {"created": 0, "existing": 0}
    for done, plan in enumerate(plan_cases(rng, count, contact_ids), start=1):
        if plan.index in already:
            counts["existing"] += 1
        else:
            key = f"seed-case-{plan.index}"
            body = {**plan.body, "queue_id": queue_id}
            case = api.expect("POST", "/cases", body, **{"Idempotency-Key": key})
            path = f"/cases/{case['id']}"
            for n, step in enumerate(plan.steps):
                if "reply" in step:
                    headers = {"Idempotency-Key": f"{key}-{n}"}
                    api.expect("POST", f"{path}/replies", step["reply"], **headers)
                else:
                    api.expect("PATCH", path, step["patch"])
            counts["created"] += 1
        progress("cases", done, count)
    return counts


def _queue(api: Api, agents: Sequence[str]) -> str:
    page = api.expect("GET", "/queues?limit=100")
    for queue in page["items"]:
        if queue["name"] == QUEUE_NAME:
            return str(queue["id"])
    body = {
        "name": QUEUE_NAME,
        "members": list(agents),
        "assignment": "round_robin",
        "mailbox": QUEUE_MAILBOX,
    }
    status, reply = api.call("POST", "/queues", body, **{"Idempotency-Key": "seed-queue"})
    if status == 409:  # the mailbox is another queue's: the queue without it
        body.pop("mailbox")
        reply = api.expect("POST", "/queues", body, **{"Idempotency-Key": "seed-queue-2"})
    elif status >= 400:
        raise RuntimeError(f"POST /queues answered {status}: {reply}")
    return str(reply["id"])


def _seeded(api: Api) -> set[int]:
    """The seed indexes of the cases an earlier seed made."""
    found: set[int] = set()
    cursor = None
    while True:
        page = api.expect("GET", "/cases?limit=100" + (f"&cursor={cursor}" if cursor else ""))
        for case in page["items"]:
            index = case.get("attributes", {}).get("seed_index")
            if isinstance(index, int):
                found.add(index)
        cursor = page.get("next_cursor")
        if not cursor:
            return found
