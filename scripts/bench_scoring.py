"""Lead scoring: events scored per second through `crm dev`, and one event's AWS calls
whatever the contact's history.

1. Through the local cloud (`crm dev` in a subprocess, a tenant of its own): C leads
   created over the API and scored on their ContactCreated; then N activities (connected
   calls, +10, and completed meetings, +25: each changes a score) posted by a small thread
   pool across them, `POST /contacts/{id}/activities`: the API's latency, p50 and p95; and
   end to end, from the first POST until every activity's score change is visible in
   `GET /contacts/{id}/score` (polled): events scored per second, and the API's latency of
   that read.
2. In-process on moto (the table from template.yaml, as the tests create it; the
   lead_scoring handler as Lambda runs it): a lead with 10 and one with 10,000 past
   activities (written with BatchWriteItem, created at their time, spread over two years).
   The first ActivityLogged of a contact never scored rebuilds its score from its history
   (once); the AWS calls of the next ones, by operation, must not depend on the history.

    python scripts/bench_scoring.py [--contacts 30] [--activities 300] [--concurrency 8]
        [--large 10000] [--part all|cloud|calls] [--timeout 300]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "shared"))

from tests.e2e.conftest import CloudProcess  # noqa: E402
from tests.support.events import delivered  # noqa: E402

# Each poll reads one contact's score (GetItem, GetItem, Query): polled faster, the bench
# would slow down what it measures.
POLL_SECONDS = 0.5
MAX_POLL_FAILURES = 5
POINTS = {"call": 10, "meeting": 25}  # the default model's call-connected, meeting-held


class BenchError(RuntimeError):
    """The bench could not measure what it set out to (the message says what went wrong)."""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# 1. Through the local cloud ----------------------------------------------------------------
@dataclass
class Lead:
    id: str
    activities: set[str] = field(default_factory=set)
    points: int = 0
    done: bool = False


def activity_body(kind: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    if kind == "call":
        return {"type": "call", "direction": "outbound", "outcome": "connected", "duration_s": 60}
    return {
        "type": "meeting",
        "title": "Demo",
        "starts_at": iso(now - timedelta(minutes=30)),
        "ends_at": iso(now),
        "outcome": "completed",
        "occurred_at": iso(now),
    }


def timed_call(
    cloud: CloudProcess, method: str, path: str, token: str, body: Any = None
) -> tuple[float, int, Any]:
    """(latency ms, status, body); no answer at all is status 0."""
    started = time.perf_counter()
    try:
        status, _, reply = cloud.call(method, path, token, body)
    except OSError as error:
        return (time.perf_counter() - started) * 1000, 0, str(error)
    return (time.perf_counter() - started) * 1000, status, reply


def new_tenant(cloud: CloudProcess) -> str:
    tenant = f"bench-scoring-{uuid.uuid4().hex[:6]}"
    created = cloud.crm("tenant", "create", tenant)
    if created.returncode != 0:
        raise BenchError(f"crm tenant create: {created.stderr}")
    return cloud.token(tenant, "admin")


def create_leads(
    cloud: CloudProcess, token: str, count: int, threads: int, name: str = "lead"
) -> list[Lead]:
    def one(n: int) -> Lead:
        body = {"email": f"{name}-{n}@bench.example.com", "lifecycle_stage": "lead"}
        _, status, reply = timed_call(cloud, "POST", "/contacts", token, body)
        if status != 201:
            raise BenchError(f"POST /contacts answered {status}: {reply}")
        return Lead(str(reply["id"]))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, range(count)))


def score_of(cloud: CloudProcess, token: str, lead: Lead) -> tuple[float, dict[str, Any] | None]:
    ms, status, reply = timed_call(cloud, "GET", f"/contacts/{lead.id}/score", token)
    if status != 200:
        print(f"bench_scoring: GET score answered {status}: {reply}", file=sys.stderr)
        return ms, None
    return ms, dict(reply)


def wait_until_scored(
    cloud: CloudProcess,
    token: str,
    leads: list[Lead],
    settled: Any,
    deadline: float,
    read_ms: list[float] | None = None,
) -> float:
    """Poll the leads not yet `settled(lead, score)` until none is left: the moment the last
    was seen so (monotonic). A failed read is tried again (MAX_POLL_FAILURES in a row)."""
    left = list(leads)
    failures = 0
    while True:
        still = []
        for lead in left:
            ms, score = score_of(cloud, token, lead)
            if read_ms is not None:
                read_ms.append(ms)
            if score is None:
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    raise BenchError(f"{failures} score reads in a row failed")
                still.append(lead)
                continue
            failures = 0
            if not settled(lead, score):
                still.append(lead)
        now = time.monotonic()
        if not still:
            return now
        if now > deadline:
            raise BenchError(
                f"{len(still)} of {len(leads)} contacts not scored at the deadline: "
                "is lead_scoring running? (crm dev's log below)"
            )
        left = still
        time.sleep(POLL_SECONDS)


def counted_all(lead: Lead, score: dict[str, Any]) -> bool:
    """Every activity of the lead has its score change (there are at most 50 shown)."""
    counted = {c["cause"].get("activity_id") for c in score["changes"]}
    return lead.activities <= counted


def through_the_cloud(args: argparse.Namespace, cloud: CloudProcess) -> dict[str, Any]:
    token = new_tenant(cloud)
    deadline = time.monotonic() + args.timeout
    leads = create_leads(cloud, token, args.contacts, args.concurrency)
    warm = create_leads(cloud, token, 1, 1, "warm-up")[0]
    # Scored on its ContactCreated (its fit) first, so each activity counts by its own event.
    wait_until_scored(cloud, token, [*leads, warm], lambda _, s: s["model_version"] == 0, deadline)

    # Warm-up: the activities function and lead_scoring's paths, before timing.
    for kind in ("call", "meeting", "call", "meeting"):
        _, status, reply = timed_call(
            cloud, "POST", f"/contacts/{warm.id}/activities", token, activity_body(kind)
        )
        if status != 201:
            raise BenchError(f"warm-up activity answered {status}: {reply}")
        warm.activities.add(reply["id"])
    wait_until_scored(cloud, token, [warm], counted_all, deadline)

    plan = [
        (leads[n % len(leads)], "call" if n % 2 == 0 else "meeting") for n in range(args.activities)
    ]

    def post(step: tuple[Lead, str]) -> tuple[float, int, Any]:
        lead, kind = step
        return timed_call(
            cloud, "POST", f"/contacts/{lead.id}/activities", token, activity_body(kind)
        )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        results = list(pool.map(post, plan))
    sent = time.monotonic()
    refused = Counter(status for _, status, _ in results if status != 201)
    if refused:
        example = next(reply for _, status, reply in results if status != 201)
        raise BenchError(f"activities not logged, by status: {dict(refused)}; e.g. {example}")
    for (lead, kind), (_, _, reply) in zip(plan, results, strict=True):
        lead.activities.add(reply["id"])
        lead.points += POINTS[kind]

    read_ms: list[float] = []
    settled = wait_until_scored(cloud, token, leads, counted_all, deadline, read_ms)

    # Every point counted: the engagement is the sum (decayed for the seconds since).
    wrong = []
    for lead in leads:
        _, score = score_of(cloud, token, lead)
        if score is None or abs(score["engagement"] - lead.points) > 0.05 * lead.points:
            wrong.append((lead.id, lead.points, score and score["engagement"]))
    if wrong:
        raise BenchError(f"engagement is not the points earned (id, points, engagement): {wrong}")

    # The score's read on a quiet cloud.
    quiet = [score_of(cloud, token, leads[n % len(leads)])[0] for n in range(args.reads)]
    posted = [ms for ms, _, _ in results]
    log = (cloud.state_dir / "crm-dev.log").read_text(errors="replace").splitlines()
    scoring = [line for line in log if line.startswith("[crm-local-lead-scoring]")]
    return {
        "scoring_errors": sum('"level":"ERROR"' in line for line in scoring),
        "scoring_retries": sum("ConcurrentChange" in line for line in scoring),
        "logged_s": sent - started,
        "post_p50": statistics.median(posted),
        "post_p95": percentile(posted, 0.95),
        "scored_s": settled - started,
        "lag_s": settled - sent,
        "busy_read_p50": statistics.median(read_ms),
        "busy_read_p95": percentile(read_ms, 0.95),
        "busy_reads": len(read_ms),
        "quiet_read_p50": statistics.median(quiet),
        "quiet_read_p95": percentile(quiet, 0.95),
    }


def run_cloud(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as state:
        cloud = CloudProcess(Path(state))
        cloud.start()
        try:
            return through_the_cloud(args, cloud)
        except BenchError as error:
            print(
                f"bench_scoring: {error}\n\ncrm dev's last lines:\n{cloud.log_tail()}",
                file=sys.stderr,
            )
            sys.exit(1)
        finally:
            cloud.stop()


# 2. AWS calls per event, in-process on moto ------------------------------------------------
SEED_KINDS: list[tuple[str, dict[str, Any]]] = [
    ("call", {"direction": "outbound", "outcome": "connected", "duration_s": 120}),
    ("note", {"body": "Talked about pricing and timing. " * 5}),
    (
        "meeting",
        {
            "title": "Demo",
            "starts_at": "2025-01-01T10:00:00Z",
            "ends_at": "2025-01-01T11:00:00Z",
            "outcome": "completed",
        },
    ),
    ("email_opened", {"subject": "Spring offer"}),
    ("email_clicked", {"subject": "Spring offer", "url": "https://example.com/pricing"}),
]


def in_process_environment() -> None:
    """What tests/conftest.py sets for the functions (moto credentials, table, Powertools)."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "TABLE_NAME": "crm-bench",
            "STAGE": "bench",
            "POWERTOOLS_SERVICE_NAME": "lead_scoring",
            "POWERTOOLS_METRICS_NAMESPACE": "CRM",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)


def load_lead_scoring() -> ModuleType:
    """functions/lead_scoring/app.py, imported as Lambda imports it."""
    import importlib

    folder = str(ROOT / "functions" / "lead_scoring")
    for module in [m for m in sys.modules if m == "app" or m.startswith("lead_scoring_consumer")]:
        del sys.modules[module]
    sys.path.insert(0, folder)
    try:
        return importlib.import_module("app")
    finally:
        sys.path.remove(folder)


class LambdaContext:
    """What the handler reads of Lambda's context (a re-score run checks the time left)."""

    function_name = "crm-bench-lead-scoring"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:crm-bench-lead-scoring"
    memory_limit_in_mb = 512
    log_group_name = "/aws/lambda/crm-bench-lead-scoring"
    log_stream_name = "bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class InProcess:
    """The lead_scoring function on a fresh table, and the stores that make its events."""

    def __init__(self, function: ModuleType) -> None:
        from crm_core.activities.store import ActivityStore
        from crm_core.contacts.store import ContactStore
        from crm_core.events.envelope import Origin

        self.function = function
        # What the cold start made: functions/lead_scoring/lead_scoring_consumer/context.py.
        self.table = sys.modules["lead_scoring_consumer.context"].table
        self.contacts = ContactStore(self.table)
        self.activities = ActivityStore(self.table)
        self.origin = Origin.user("bench-user", "bench")

    def lead(self, tenant: str) -> str:
        from crm_core.records.contact import ContactCreate

        email = f"{uuid.uuid4().hex[:12]}@example.com"
        return self.contacts.create(tenant, ContactCreate(email=email), self.origin).id

    def seed(self, tenant: str, contact_id: str, count: int) -> float:
        """`count` past activities as `ActivityStore.log` writes them (created when they
        happened, over the last two years), by BatchWriteItem; the seconds it took."""
        from crm_core.activities.models import ActivityType, validate_fields
        from crm_core.activities.store import new_activity
        from crm_core.clock import format_iso
        from crm_core.dynamo import to_item

        started = time.perf_counter()
        now = datetime.now(UTC)
        span = timedelta(days=730)
        fields = {kind: validate_fields(ActivityType(kind), f) for kind, f in SEED_KINDS}
        requests = []
        for n in range(count):
            kind = SEED_KINDS[n % len(SEED_KINDS)][0]
            moment = now - span + span * (n + 0.5) / count
            item = new_activity(
                tenant,
                contact_id,
                ActivityType(kind),
                fields[kind],
                moment,
                "bench-seed",
                format_iso(moment),
            )
            requests.append({"PutRequest": {"Item": to_item(item)}})
        client, name = self.table.client, self.table.name
        for i in range(0, len(requests), 25):
            pending = requests[i : i + 25]
            while pending:
                reply = client.batch_write_item(RequestItems={name: pending})
                pending = reply.get("UnprocessedItems", {}).get(name, [])
        return time.perf_counter() - started

    def logged(self, tenant: str, contact_id: str) -> dict[str, Any]:
        """A connected call logged now; its ActivityLogged as the rule delivers it."""
        from crm_core import keys
        from crm_core.activities.models import ActivityType, validate_fields
        from crm_core.pagination import ListQuery

        fields = validate_fields(ActivityType.CALL, dict(SEED_KINDS[0][1]))
        item = self.activities.log(tenant, contact_id, ActivityType.CALL, fields, None, self.origin)
        listing = ListQuery("outbox", keys.contact(tenant, contact_id)["PK"])
        page = self.table.query(listing, 100, None, sort_prefix=keys.OUTBOX_PREFIX)
        for outbox in page.items:
            event = delivered(outbox)
            if event["detail"]["data"].get("activity", {}).get("id") == item["id"]:
                return event
        raise BenchError(f"no ActivityLogged in the outbox for {item['id']}")

    def deliver(self, event: dict[str, Any]) -> tuple[Counter[str], float, int, Any]:
        """The handler's AWS calls by operation, its milliseconds, the items its Queries
        read, and its result."""
        from tests.support.aws_calls import count_calls

        read: list[int] = []

        def count_read(parsed: dict[str, Any], **_: Any) -> None:
            read.append(int(parsed.get("ScannedCount", 0)))

        events = self.table.client.meta.events
        events.register("after-call.dynamodb.Query", count_read, unique_id="bench-read")
        started = time.perf_counter()
        try:
            with count_calls(self.table.client) as log:
                result = self.function.handler(event, LambdaContext())
        finally:
            events.unregister("after-call.dynamodb.Query", unique_id="bench-read")
        return log.by_operation, (time.perf_counter() - started) * 1000, sum(read), result

    def history_of(self, tenant: str, contact_id: str, past: int) -> dict[str, Any]:
        from crm_core import keys
        from crm_core.scores.state import ScoreState

        seeded_s = self.seed(tenant, contact_id, past)
        rounds = []
        for _ in range(3):  # the rebuild, the first event after it, one more
            calls, ms, read, result = self.deliver(self.logged(tenant, contact_id))
            if not result.get("changed"):
                raise BenchError(f"an event changed no score: {result}")
            rounds.append((calls, ms, read))
        item = self.table.get(keys.contact(tenant, contact_id))
        assert item is not None
        state = ScoreState.of(item)
        return {
            "past": past,
            "seeded_s": seeded_s,
            "rounds": rounds,
            "item_kb": self.table.op.item_bytes(item) / 1024,
            "rebuilt_ids": len(state.rebuilt_ids),
        }


def run_calls(args: argparse.Namespace) -> list[dict[str, Any]]:
    in_process_environment()
    from moto import mock_aws

    from infra.cfn import table_create_kwargs
    from infra.local.endpoint import PartitionQueries, quick_transactions

    queries = PartitionQueries()
    queries.install()
    try:
        with mock_aws(), quick_transactions():
            function = load_lead_scoring()
            bench = InProcess(function)
            bench.table.client.create_table(**table_create_kwargs(table_name=bench.table.name))
            found = []
            for n, past in enumerate((10, args.large)):
                tenant = f"calls-{n}"  # each its own model and rank registry, alike
                found.append(bench.history_of(tenant, bench.lead(tenant), past))
            return found
    finally:
        queries.uninstall()


# Report ------------------------------------------------------------------------------------
def calls_text(calls: Counter[str]) -> str:
    ops = ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))
    return f"{sum(calls.values())} ({ops})"


def report_cloud(args: argparse.Namespace, found: dict[str, Any]) -> None:
    n = args.activities
    print(
        f"Lead scoring through the local cloud: {n} activities (calls +10, meetings +25) on "
        f"{args.contacts} leads, {args.concurrency} at a time\n"
    )
    print("| stage | seconds | events/s | p50 ms | p95 ms |")
    print("|---|---|---|---|---|")
    print(
        f"| POST /contacts/{{id}}/activities: 201 | {found['logged_s']:.2f} "
        f"| {n / found['logged_s']:.1f} | {found['post_p50']:.1f} | {found['post_p95']:.1f} |"
    )
    print(
        f"| end to end: every score change visible | {found['scored_s']:.2f} "
        f"| {n / found['scored_s']:.1f} | | |"
    )
    print(
        f"| GET /contacts/{{id}}/score while scoring ({found['busy_reads']} reads) | | "
        f"| {found['busy_read_p50']:.1f} | {found['busy_read_p95']:.1f} |"
    )
    print(
        f"| GET /contacts/{{id}}/score, quiet ({args.reads} reads) | | "
        f"| {found['quiet_read_p50']:.1f} | {found['quiet_read_p95']:.1f} |"
    )
    print(
        f"\nthe last score change was visible {found['lag_s']:.2f} s after the last 201 "
        f"(polled every {POLL_SECONDS} s); lead_scoring logged {found['scoring_errors']} "
        f"error(s), {found['scoring_retries']} line(s) naming ConcurrentChange\n"
    )


def report_calls(found: list[dict[str, Any]]) -> None:
    print("AWS calls of lead_scoring per ActivityLogged, in-process on moto (by operation)\n")
    print("| past activities | first event: rebuild from history (once) | next event | one more |")
    print("|---|---|---|---|")
    for case in found:
        cells = [
            f"{calls_text(calls)}; {read:,} items read; {ms:,.0f} ms"
            for calls, ms, read in case["rounds"]
        ]
        print(f"| {case['past']:,} | {' | '.join(cells)} |")
    print("\n(ms: in-process on moto, whose serialization of a Query's items dominates)")
    small, large = (case["rounds"][1:] for case in found)
    same = [a[0] == b[0] for a, b in zip(small, large, strict=True)]
    print(
        "\nafter the rebuild, the same calls for both histories: "
        + ("yes" if all(same) else f"NO ({same})")
    )
    for case in found:
        print(
            f"{case['past']:,} activities seeded in {case['seeded_s']:.1f} s; the contact item "
            f"after: {case['item_kb']:.1f} KB, {case['rebuilt_ids']} ids kept by the rebuild"
        )
    if not all(same):
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=30)
    parser.add_argument("--activities", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--reads", type=int, default=60, help="quiet score reads timed")
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--part", choices=("all", "cloud", "calls"), default="all")
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds for the cloud part, after start"
    )
    args = parser.parse_args()
    if args.contacts * 50 < args.activities:
        parser.error("at most 50 activities a contact: GET score shows the last 50 changes")
    # The cloud first: the in-process part sets the functions' environment in this process.
    cloud = run_cloud(args) if args.part in ("all", "cloud") else None
    calls = run_calls(args) if args.part in ("all", "calls") else None
    if cloud is not None:
        report_cloud(args, cloud)
    if calls is not None:
        report_calls(calls)


if __name__ == "__main__":
    main()
