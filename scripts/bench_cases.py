"""Support cases: AWS calls per change, SLA breaches on time, lists fast with many open cases
(`crm dev` in a subprocess).

1. AWS calls of opening a case (with a contact, in a round-robin queue), of a public reply
   and of a status change, and of an email received (a new one, and the contact's next):
   the cases and inbound_mail functions in this process, on the local endpoint, in a
   tenant with 10 open cases and in one with N (default 1,000); the promise is the same
   calls for both.
2. A breach on time: a tenant whose urgent cases are due in one business minute (round the
   clock, warning at 50 %); K urgent cases left alone. For each, the moment its
   `CaseSlaBreached` is seen on the bus (the local cloud's recent events, polled every
   0.05 s) minus its `due_at`; the promise is at most 2 s.
3. `GET /cases` through the local API (HTTP, JWT authorizer, warm function) in the tenant
   with N open cases, each with its SLA schedule: median and p95 of R requests, every
   status filter and none; the promise is p95 under 300 ms.

    python scripts/bench_cases.py [--large 1000] [--breaches 5] [--requests 100]

The exit status is 1 when a promise is not kept.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "shared"))

from scripts.bench_functions import (  # noqa: E402
    LambdaContext,
    function_environment,
    http_event,
    load_function,
)
from tests.e2e.conftest import CloudProcess  # noqa: E402

SMALL = 10
MAX_BREACH_DELAY_S = 2.0
MAX_LIST_P95_MS = 300.0
POLL_SECONDS = 0.05
BUSY_RETRIES = 6
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ONE_MINUTE = {
    "business_hours": {"timezone": "UTC", "week": {d: [["00:00", "24:00"]] for d in WEEK}},
    "targets": {"urgent": {"first_response_minutes": 1, "resolution_minutes": 60}},
    "warn_at_percent": 50,
}


class BenchError(RuntimeError):
    pass


class Tenant:
    def __init__(self, name: str, cases: int) -> None:
        self.name, self.cases = name, cases
        self.token = ""
        self.contact_id = ""
        self.queue_id = ""


def call(cloud: CloudProcess, method: str, path: str, token: str, body: Any = None) -> Any:
    """The reply of a call that must succeed; a 429 (a queue busy assigning the cases opened
    side by side) is tried again, as a client does."""
    for attempt in range(BUSY_RETRIES):
        status, _, reply = cloud.call(method, path, token, body)
        if status != 429:
            break
        time.sleep(0.1 * 2**attempt)
    if status >= 300:
        raise BenchError(f"{method} {path} answered {status}: {reply}")
    return reply


def prepare(cloud: CloudProcess, tenant: Tenant) -> None:
    created = cloud.crm("tenant", "create", tenant.name)
    if created.returncode != 0:
        raise BenchError(f"crm tenant create: {created.stderr}")
    tenant.token = cloud.token(tenant.name, "admin")
    contact = {"email": f"customer@{tenant.name}.example.com"}
    tenant.contact_id = call(cloud, "POST", "/contacts", tenant.token, contact)["id"]
    queue = {
        "name": "Support",
        "members": ["ann", "bob", "cyd"],
        "assignment": "round_robin",
        "mailbox": "support",
    }
    tenant.queue_id = call(cloud, "POST", "/queues", tenant.token, queue)["id"]

    def open_one(n: int) -> None:
        body = {
            "subject": f"Case {n}",
            "priority": ("low", "normal", "high", "urgent")[n % 4],
            "queue_id": tenant.queue_id,
            "contact_id": tenant.contact_id,
        }
        call(cloud, "POST", "/cases", tenant.token, body)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(open_one, range(tenant.cases)))


def calls_of_changes(function: ModuleType, tenant: Tenant) -> dict[str, list[str]]:
    """The AWS calls of opening a case, a public reply and a status change."""
    from tests.support.aws_calls import count_calls

    table = sys.modules["cases_api.context"].table
    found: dict[str, list[str]] = {}

    def run(name: str, method: str, path: str, body: Any) -> Any:
        with count_calls(table.client) as log:
            event = http_event(tenant.name, method, path, body, user="bench-agent")
            reply = function.handler(event, LambdaContext("crm-local-cases"))
        if reply["statusCode"] >= 300:
            raise BenchError(f"{method} {path} answered {reply['statusCode']}: {reply['body']}")
        found[name] = list(log.calls)
        return json.loads(reply["body"])

    body = {"subject": "Measured", "contact_id": tenant.contact_id, "queue_id": tenant.queue_id}
    case = run("open a case (contact, round-robin queue)", "POST", "/cases", body)
    path = f"/cases/{case['id']}"
    run("public reply", "POST", f"{path}/replies", {"body": "On it", "public": True})
    run("status change", "PATCH", path, {"status": "pending"})
    return found


def calls_of_email(cloud: CloudProcess, tenant: Tenant) -> dict[str, list[str]]:
    """The AWS calls of inbound_mail (in this process, on the local endpoint) for a new
    message to the queue's address from the tenant's contact, and for the contact's next
    message answering it (In-Reply-To)."""
    import os
    import uuid
    from email.message import EmailMessage

    from infra.ops.mail_cli import ses_receipt_event
    from tests.support.aws_calls import count_calls

    outputs = cloud.running["outputs"]
    os.environ.update(
        {
            "MAIL_BUCKET": outputs["MailBucketName"],
            "CASE_MAIL_DOMAIN": "example.com",
            "CASE_MAIL_KEY_ID": outputs["UnsubscribeKeyArn"],
            "POWERTOOLS_SERVICE_NAME": "inbound_mail",
        }
    )
    function = load_function("inbound_mail")
    context = sys.modules["inbound_mail_consumer.context"]
    assert context.reply_key.secret  # once per process, out of the counts
    found: dict[str, list[str]] = {}
    first_id = f"<{uuid.uuid4().hex}@customer.example.com>"
    for name, extra in (
        ("receive a new email (known contact, round-robin queue)", {}),
        ("receive the contact's next email (In-Reply-To)", {"In-Reply-To": first_id}),
    ):
        message = EmailMessage()
        message["From"] = f"customer@{tenant.name}.example.com"
        message["To"] = f"{tenant.name}.support@example.com"
        message["Subject"] = "Measured by email"
        message["Message-ID"] = first_id if not extra else f"<{uuid.uuid4().hex}@c.example>"
        for header, value in extra.items():
            message[header] = value
        message.set_content("Hello")
        key = uuid.uuid4().hex
        context.intake.s3.put_object(
            Bucket=outputs["MailBucketName"], Key=f"inbound/{key}", Body=bytes(message)
        )
        event = ses_receipt_event(key, [str(message["To"])])
        with count_calls(context.table.client, context.intake.s3) as log:
            (result,) = function.handler(event, LambdaContext("crm-local-inbound-mail"))
        if result["outcome"] not in ("opened", "threaded"):
            raise BenchError(f"{name}: {result}")
        found[name] = list(log.calls)
    return found


def breaches(cloud: CloudProcess, count: int) -> list[float]:
    """Seconds from each urgent case's first-response due time to its breach on the bus."""
    tenant = Tenant("bench-cases-breach", 0)
    prepare(cloud, tenant)
    call(cloud, "PUT", "/settings/sla", tenant.token, ONE_MINUTE)
    due: dict[str, datetime] = {}
    for n in range(count):
        case = call(
            cloud, "POST", "/cases", tenant.token, {"subject": f"Late {n}", "priority": "urgent"}
        )
        due[case["id"]] = _moment(case["sla"]["first_response"]["due_at"])
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while len(seen) < count and time.monotonic() < deadline:
        status, _, recent = cloud.call("GET", "/_local/events", None, accept="application/json")
        now = time.time()
        if status == 200:
            for event in recent:
                if event.get("detail-type") != "CaseSlaBreached":
                    continue
                case_id = event["detail"]["data"]["case"]["id"]
                if case_id in due and case_id not in seen:
                    seen[case_id] = now - due[case_id].timestamp()
        time.sleep(POLL_SECONDS)
    if len(seen) < count:
        raise BenchError(f"{count - len(seen)} breach(es) never reached the bus")
    return sorted(seen.values())


def list_latency(cloud: CloudProcess, tenant: Tenant, requests: int) -> dict[str, list[float]]:
    paths = {
        "GET /cases": "/cases",
        "GET /cases?status=new": "/cases?status=new",
        "GET /cases?queue_id=": f"/cases?queue_id={tenant.queue_id}",
        "GET /cases?priority=urgent": "/cases?priority=urgent",
    }
    found: dict[str, list[float]] = {}
    for name, path in paths.items():
        for _ in range(3):  # warm
            call(cloud, "GET", path, tenant.token)
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            call(cloud, "GET", path, tenant.token)
            times.append((time.perf_counter() - started) * 1000)
        found[name] = times
    return found


def percentile(series: list[float], p: float) -> float:
    ordered = sorted(series)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--large", type=int, default=1000, help="open cases in the big tenant")
    parser.add_argument("--breaches", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    small, large = Tenant("bench-cases-small", SMALL), Tenant("bench-cases-large", args.large)
    with tempfile.TemporaryDirectory() as state:
        cloud = CloudProcess(Path(state))
        cloud.start()
        try:
            started = time.monotonic()
            for tenant in (small, large):
                prepare(cloud, tenant)
            prepared_s = time.monotonic() - started
            function_environment(cloud.running["endpoint_url"], "cases")
            function = load_function("cases")
            calls = {t.name: calls_of_changes(function, t) for t in (small, large)}
            for tenant in (small, large):
                calls[tenant.name].update(calls_of_email(cloud, tenant))
            delays = breaches(cloud, args.breaches)
            lists = list_latency(cloud, large, args.requests)
        finally:
            cloud.stop()

    failed = []
    print(
        f"Support cases: {SMALL} and {args.large} open cases ({prepared_s:.0f} s to open them "
        "through the API, each with its SLA schedule)\n"
    )
    print(f"| change | AWS calls, {SMALL} cases | AWS calls, {args.large} cases | same |")
    print("|---|---|---|---|")
    for name in calls[small.name]:
        a, b = calls[small.name][name], calls[large.name][name]
        same = Counter(a) == Counter(b)
        failed += [] if same else [f"{name}: calls differ"]
        shown = f"| {name} | {len(a)} ({', '.join(a)}) | {len(b)} ({', '.join(b)}) |"
        print(f"{shown} {'yes' if same else 'NO'} |")
    print(
        f"\nBreaches on the bus after their due time (s), {len(delays)} urgent cases: "
        f"min {delays[0]:.2f}, median {statistics.median(delays):.2f}, max {delays[-1]:.2f} "
        f"(promise: at most {MAX_BREACH_DELAY_S:.0f} s)"
    )
    if delays[-1] > MAX_BREACH_DELAY_S:
        failed.append(f"a breach came {delays[-1]:.2f} s after its due time")
    print(
        f"\nLists through the local API with {args.large} open cases (ms, {args.requests} each)\n"
    )
    print("| request | median | p95 |")
    print("|---|---|---|")
    for name, times in lists.items():
        p95 = percentile(times, 95)
        print(f"| {name} | {statistics.median(times):.1f} | {p95:.1f} |")
        if p95 > MAX_LIST_P95_MS:
            failed.append(f"{name}: p95 {p95:.0f} ms")
    print("\nPromises: " + ("all kept" if not failed else "NOT KEPT: " + "; ".join(failed)))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
