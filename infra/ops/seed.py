"""`crm seed`: realistic demo data, created through the API like any client would.

Companies, then contacts spread over them, then (`--deals`) the tenant's currencies and a
sales pipeline: deals across the default pipeline's stages, several owners and currencies,
close dates from three months back to nine ahead, each with a history (moved through its
stages, some repriced or rescheduled, some won, some lost with a reason). Every body is
planned from one seeded random generator before anything is sent, so a second run sends
the same requests: the companies and contacts there are found again (a replay of the same
Idempotency-Key, or a 409 naming them), the deals there (by their `seed_index` attribute)
are not created again, and a change already made is not made again (each PATCH names the
version it follows with If-Match). Then (`--cases`, infra/ops/seed_cases.py) a support
queue and its cases in every state.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

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

# Deals -------------------------------------------------------------------------------------
BASE_CURRENCY = "EUR"
# What one unit of each currency is worth in euros (round figures of recent years' rates).
RATES = {"USD": "0.92", "GBP": "1.17", "JPY": "0.0062", "CHF": "1.06", "SEK": "0.088"}
# The currencies deals are priced in, with how often.
DEAL_CURRENCIES = (("EUR", 55), ("USD", 25), ("GBP", 12), ("JPY", 8))
# The default pipeline's stages (crm_core.deals.pipeline_models.default_pipeline).
OPEN_STAGES = ("qualification", "needs-analysis", "proposal", "negotiation")
WON, LOST = "won", "lost"
LOST_REASONS = (
    ("price", 25),
    ("competitor", 25),
    ("no_budget", 15),
    ("no_decision", 15),
    ("timing", 10),
    ("fit", 6),
    ("other", 4),
)
LOST_NOTES = {
    "price": "Came in 20% above their budget line.",
    "competitor": "Went with an incumbent vendor.",
    "no_budget": "Budget frozen until next fiscal year.",
    "no_decision": "Stalled after the champion left.",
    "timing": "Revisit after their migration.",
    "fit": "Needs on-premise hosting.",
    "other": "Acquired; the parent company buys centrally.",
}
PRODUCTS = (
    "Platform licence",
    "Annual renewal",
    "Seat expansion",
    "Pilot",
    "Onboarding package",
    "Premium support",
    "Data migration",
    "Analytics add-on",
    "Enterprise upgrade",
    "Integration project",
)
DEAL_ROLES = (
    "decision maker",
    "champion",
    "economic buyer",
    "technical evaluator",
    "influencer",
)
NEXT_STEPS = (
    "Schedule a demo",
    "Send the proposal",
    "Security review",
    "Call with procurement",
    "Agree on the pilot's scope",
    "Legal review of the contract",
)
DEAL_SOURCES = ("inbound", "outbound", "partner", "event", "referral")
# Made-up sales reps: owners beside the tenant's own users (the CLI passes those).
REPS = ("rep-amara-okafor", "rep-jonas-berg", "rep-mei-chen")
# Past close dates and future ones, in days from today.
CLOSE_WINDOW = (-91, 273)
# A busy record (the pipeline's forecast months) answers 429: try again after a pause.
BUSY_RETRIES = 6
T = TypeVar("T")


def _progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    print(
        f"\r{label:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end="" if done < total else "\n",
        file=sys.stderr,
        flush=True,
    )


def _weighted(rng: random.Random, choices: Sequence[tuple[T, int]]) -> T:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


@dataclass
class DealPlan:
    """One deal: the body it is created with, then the PATCHes that make its history."""

    index: int
    body: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)


def amount_text(in_euros: float, currency: str) -> str:
    """A round amount in `currency` worth about `in_euros` (yen have no minor unit)."""
    if currency == "JPY":
        return str(max(10_000, round(in_euros / float(RATES["JPY"]) / 10_000) * 10_000))
    rate = 1.0 if currency == BASE_CURRENCY else float(RATES[currency])
    return f"{max(100, round(in_euros / rate / 100) * 100)}.00"


def plan_deals(
    rng: random.Random,
    count: int,
    today: date,
    owners: Sequence[str],
    companies: Sequence[tuple[str, str]],
    contacts_of: dict[str | None, list[str]],
) -> list[DealPlan]:
    """`count` deals; `companies` are (id, name), `contacts_of` a company's contact ids
    (None: contacts without a company)."""
    plans = []
    everyone = [c for people in contacts_of.values() for c in people]
    for index in range(count):
        offset = rng.randint(*CLOSE_WINDOW)
        close = today + timedelta(days=offset)
        if offset < 0:  # past its close date: mostly decided, some overdue
            outcome = _weighted(rng, (("won", 45), ("lost", 35), ("open", 20)))
        else:
            outcome = _weighted(rng, (("won", 6), ("lost", 8), ("open", 86)))
        if outcome == "open":  # deals closing soon are further along
            weights = (15, 20, 30, 35) if offset < 60 else (40, 30, 20, 10)
            last = rng.choices(range(len(OPEN_STAGES)), weights=weights)[0]
        elif outcome == WON:
            last = 3 if rng.random() < 0.7 else 2
        else:
            last = rng.randint(0, 3)
        first = 0 if rng.random() < 0.8 or last == 0 else rng.randint(1, last)
        path = [
            OPEN_STAGES[i] for i in range(first + 1, last + 1) if i == last or rng.random() >= 0.2
        ]
        if last >= 1 and rng.random() < 0.08:  # back one stage, then forward again
            path += [OPEN_STAGES[last - 1], OPEN_STAGES[last]]
        steps: list[dict[str, Any]] = [{"stage_id": stage} for stage in path]

        currency = _weighted(rng, DEAL_CURRENCIES)
        in_euros = (
            rng.choice((2, 5, 8, 12, 20, 35, 60, 90, 150, 250)) * 1000 * rng.uniform(0.8, 1.2)
        )
        amount = amount_text(in_euros, currency)
        if rng.random() < 0.25:  # repriced on the way
            repriced = amount_text(in_euros * rng.choice((0.6, 0.75, 0.85, 1.2, 1.4)), currency)
            if repriced != amount:
                steps.insert(rng.randint(0, len(steps)), {"amount": repriced})
        created_close = close
        if rng.random() < 0.22:  # rescheduled: mostly pushed out, sometimes pulled in
            shift = rng.randint(14, 75)
            created_close = close - timedelta(days=shift if rng.random() < 0.8 else -shift)
            steps.insert(rng.randint(0, len(steps)), {"close_date": close.isoformat()})
        if outcome == WON:
            steps.append({"stage_id": WON})
        elif outcome == LOST:
            reason = _weighted(rng, LOST_REASONS)
            lost: dict[str, Any] = {"reason": reason}
            if reason == "other" or rng.random() < 0.5:
                lost["note"] = LOST_NOTES[reason]
            steps.append({"stage_id": LOST, "lost_reason": lost})

        company = rng.choice(companies) if companies and rng.random() < 0.9 else None
        people = contacts_of.get(company[0] if company else None) or []
        if not people and everyone and rng.random() < 0.3:
            people = everyone
        chosen = rng.sample(people, min(len(people), rng.choice((1, 1, 2, 3))))
        body: dict[str, Any] = {
            "name": f"{company[1] if company else 'Direct'} - {rng.choice(PRODUCTS)}",
            "amount": amount,
            "currency": currency,
            "close_date": created_close.isoformat(),
            "owner_id": rng.choice(owners),
            "contacts": [
                {"contact_id": c, "role": rng.choice(DEAL_ROLES), "primary": n == 0}
                for n, c in enumerate(chosen)
            ],
            "attributes": {"seed_index": index, "source": rng.choice(DEAL_SOURCES)},
        }
        if first:
            body["stage_id"] = OPEN_STAGES[first]
        if company:
            body["company_id"] = company[0]
        if outcome == "open" and rng.random() < 0.6:
            body["next_step"] = rng.choice(NEXT_STEPS)
        plans.append(DealPlan(index, body, steps))
    return plans


class _Api:
    """The seed's calls: one token, retried while the API answers 429 (busy)."""

    def __init__(self, api_url: str, token: str) -> None:
        self.api_url = api_url
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        for attempt in range(BUSY_RETRIES):
            status, _, reply = request(
                method, f"{self.api_url}{path}", body, {**self.headers, **headers}
            )
            if status != 429:
                break
            time.sleep(0.1 * 2**attempt)
        return status, reply

    def expect(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        status, reply = self.call(method, path, body, **headers)
        if status >= 400:
            raise RuntimeError(f"{method} {path} answered {status}: {reply}")
        return reply


def seed(
    api_url: str,
    token: str,
    *,
    contacts: int,
    companies: int,
    deals: int = 0,
    owners: Sequence[str] = (),
    cases: int = 0,
    agents: Sequence[str] = (),
    seed_value: int = 7,
    today: date | None = None,
) -> dict[str, int]:
    """Create companies, contacts spread over them, then `deals` deals with their history,
    then a support queue of `agents` and `cases` cases in every state; returns counts created,
    existing (already there) and changed (deal PATCHes made)."""
    rng = random.Random(seed_value)  # noqa: S311 - demo data, not security
    api = _Api(api_url, token)
    counts = {"created": 0, "existing": 0, "changed": 0}

    def post(path: str, body: dict[str, Any], key: str) -> str | None:
        """The id created, or the existing one a 409 names."""
        status, reply = api.call("POST", path, body, **{"Idempotency-Key": key})
        if status == 409:
            counts["existing"] += 1
            existing = reply.get("existing_id") if isinstance(reply, dict) else None
            return str(existing) if existing else None
        if status >= 400:
            raise RuntimeError(f"POST {path} answered {status}: {reply}")
        counts["created"] += 1
        return str(reply["id"])

    company_ids: list[tuple[str, str]] = []
    for i in range(companies):
        name = f"{COMPANY[i % len(COMPANY)]} {SUFFIX[(i // len(COMPANY)) % len(SUFFIX)]}"
        body = {
            "name": name,
            "domain": f"{name.lower().replace(' ', '-')}.example.com",
            "industry": rng.choice(INDUSTRY),
            "employee_count": rng.randint(5, 5000),
            "country": rng.choice(COUNTRIES),
        }
        company_id = post("/companies", body, f"seed-company-{i}")
        if company_id:
            company_ids.append((company_id, name))
        _progress("companies", i + 1, companies)

    # Planned in order, then sent side by side: the same bodies on every run.
    people: list[dict[str, Any]] = []
    for i in range(contacts):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        person: dict[str, Any] = {
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
            person["company_id"] = rng.choice(company_ids)[0]
        people.append(person)

    contacts_of: dict[str | None, list[str]] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = pool.map(lambda i: post("/contacts", people[i], f"seed-contact-{i}"), range(contacts))
        for done, (person, contact_id) in enumerate(zip(people, ids, strict=True), start=1):
            if contact_id:
                contacts_of.setdefault(person.get("company_id"), []).append(contact_id)
            _progress("contacts", done, contacts)

    if deals > 0:
        set_currencies(api)
        day = today or datetime.now(UTC).date()
        plans = plan_deals(rng, deals, day, owners or REPS, company_ids, contacts_of)
        _seed_deals(api, plans, day, counts)
    if cases > 0:
        from infra.ops.seed_cases import seed_cases

        contact_ids = [c for ids in contacts_of.values() for c in ids]
        made = seed_cases(api, rng, cases, contact_ids, agents or REPS, _progress)
        counts["created"] += made["created"]
        counts["existing"] += made["existing"]
    return counts


def set_currencies(api: _Api) -> None:
    """Base EUR with a rate for each currency of RATES; a tenant's own EUR rates are kept."""
    settings = api.expect("GET", "/settings/currencies")
    rates = dict(settings["rates"]) if settings["base"] == BASE_CURRENCY else {}
    missing = {c: r for c, r in RATES.items() if c not in rates}
    if settings["base"] == BASE_CURRENCY and not missing:
        return
    body = {"base": BASE_CURRENCY, "rates": {**rates, **missing}}
    api.expect("PUT", "/settings/currencies", body, **{"If-Match": f'"{settings["version"]}"'})


def seeded_deals(api: _Api) -> dict[int, tuple[str, int]]:
    """The default pipeline's deals an earlier seed made: seed_index -> (id, version)."""
    found: dict[int, tuple[str, int]] = {}
    cursor: str | None = None
    while True:
        page = api.expect("GET", "/deals?limit=100" + (f"&cursor={cursor}" if cursor else ""))
        for deal in page["items"]:
            index = deal["attributes"].get("seed_index")
            if isinstance(index, int):
                found[index] = (deal["id"], deal["version"])
        cursor = page["next_cursor"]
        if not cursor:
            return found


def _seed_deals(api: _Api, plans: list[DealPlan], today: date, counts: dict[str, int]) -> None:
    already = seeded_deals(api)

    def make(plan: DealPlan) -> None:
        if plan.index in already:
            counts["existing"] += 1
            deal_id, version = already[plan.index]
        else:
            key = f"seed-deal-{today.isoformat()}-{plan.index}"
            created = api.expect("POST", "/deals", plan.body, **{"Idempotency-Key": key})
            counts["created"] += 1
            deal_id, version = created["id"], created["version"]
        # Each step makes one version: those below the deal's version were made before.
        for step in plan.steps[version - 1 :]:
            status, reply = api.call(
                "PATCH", f"/deals/{deal_id}", step, **{"If-Match": f'"{version}"'}
            )
            if status in (404, 412):
                return  # someone changed or deleted the deal meanwhile: theirs stands
            if status >= 400:
                raise RuntimeError(f"PATCH /deals/{deal_id} {step} answered {status}: {reply}")
            counts["changed"] += 1
            version = reply["version"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        for done, _ in enumerate(pool.map(make, plans), start=1):
            _progress("deals", done, len(plans))
