"""`crm seed`: realistic demo data, created through the API like any client would."""

from __future__ import annotations

import random
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from infra.ops.local_http import request

FIRST = (
    "Ada Grace Alan Edsger Barbara Donald Frances Margaret Linus Radia Ken Dennis Katherine "
    "Tim Vint Anita Hedy Sophie Guido Yukihiro Lin Mei Aiko Omar Leila Priya Ravi Nia Jonas "
    "Elena Mateo Sofia Lucas Emma Noah Chloe Felix Ingrid Sven Amara"
).split()
LAST = (
    "Lovelace Hopper Turing Dijkstra Liskov Knuth Allen Hamilton Torvalds Perlman Thompson "
    "Ritchie Johnson Berners-Lee Cerf Borg Lamarr Wilson Rossum Matsumoto Chen Wang Tanaka "
    "Haddad Nasser Patel Kumar Okafor Berg Petrova Garcia Rossi Dubois Schmidt Jansen"
).split()
COMPANY = (
    "Acme Globex Initech Umbrella Hooli Stark Wayne Tyrell Cyberdyne Soylent Aperture "
    "Massive Dynamic Vandelay Wonka Gringotts Oceanic Pied Piper Monarch Prestige"
).split()
SUFFIX = ("Labs", "Systems", "Group", "Industries", "Analytics", "Foods", "Logistics", "Health")
INDUSTRY = ("Software", "Manufacturing", "Retail", "Healthcare", "Finance", "Logistics", "Media")
TITLES = (
    "CEO",
    "CTO",
    "VP Sales",
    "VP Marketing",
    "Head of Operations",
    "Engineer",
    "Buyer",
    "Marketing Manager",
    "Procurement Lead",
    "Founder",
    "Analyst",
    "Director of IT",
)
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "SE", "ES", "IT", "CA", "AU", "JP", "BR", "IN")
STAGES = ("subscriber", "lead", "lead", "lead", "mql", "sql", "opportunity", "customer", "other")
TAGS = ("newsletter", "webinar", "trade-show", "partner", "vip", "trial", "enterprise", "smb")


def _progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    print(
        f"\r{label:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end="" if done < total else "\n",
        file=sys.stderr,
        flush=True,
    )


def seed(
    api_url: str, token: str, *, contacts: int, companies: int, seed_value: int = 7
) -> dict[str, int]:
    """Create companies, then contacts spread over them; returns counts created and existing."""
    rng = random.Random(seed_value)  # noqa: S311 - demo data, not security
    headers = {"Authorization": f"Bearer {token}"}
    counts = {"created": 0, "existing": 0}

    def post(path: str, body: dict[str, Any], key: str) -> dict[str, Any] | None:
        status, _, reply = request(
            "POST", f"{api_url}{path}", body, {**headers, "Idempotency-Key": key}
        )
        if status == 409:
            counts["existing"] += 1
            return None
        if status >= 400:
            raise RuntimeError(f"POST {path} answered {status}: {reply}")
        counts["created"] += 1
        return dict(reply)

    company_ids: list[str] = []
    for i in range(companies):
        name = f"{COMPANY[i % len(COMPANY)]} {SUFFIX[(i // len(COMPANY)) % len(SUFFIX)]}"
        body = {
            "name": name,
            "domain": f"{name.lower().replace(' ', '-')}.example.com",
            "industry": rng.choice(INDUSTRY),
            "employee_count": rng.randint(5, 5000),
            "country": rng.choice(COUNTRIES),
        }
        created = post("/companies", body, f"seed-company-{i}")
        if created:
            company_ids.append(created["id"])
        _progress("companies", i + 1, companies)

    def contact(i: int) -> None:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        body: dict[str, Any] = {
            "email": f"{first}.{last}.{i}@example.com".lower(),
            "first_name": first,
            "last_name": last,
            "title": rng.choice(TITLES),
            "country": rng.choice(COUNTRIES),
            "lifecycle_stage": rng.choice(STAGES),
            "tags": rng.sample(TAGS, rng.randint(0, 3)),
            "email_consent": rng.choice(("subscribed", "subscribed", "unknown", "unsubscribed")),
            "attributes": {"source": rng.choice(("web", "event", "referral", "ads"))},
        }
        if company_ids and rng.random() < 0.8:
            body["company_id"] = rng.choice(company_ids)
        post("/contacts", body, f"seed-contact-{i}")

    bodies = list(range(contacts))
    with ThreadPoolExecutor(max_workers=4) as pool:
        for done, _ in enumerate(pool.map(contact, bodies), start=1):
            _progress("contacts", done, contacts)
    return counts
