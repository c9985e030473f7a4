"""The timeline's cost does not grow with a contact's history (`crm dev` in a subprocess).

Two contacts of tenant `demo`: one with 10 activities, one with 10,000 (10 logged through
the API, the rest written straight into the table in the same form, spread over 3 years).
For each, the first page of `GET /contacts/{id}/timeline` (25 items):
1. AWS calls, by operation, of the activity store's timeline against the local endpoint
   (what the function runs): unfiltered, one type, two types, and a time range;
2. latency through the API (HTTP, JWT authorizer, warm function): median and p90 of N.

    python scripts/bench_timeline.py [--requests N] [--large 10000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "shared"))

from crm_core.activities.models import ActivityType, TaskStatus, validate_fields  # noqa: E402
from crm_core.activities.store import ActivityStore, TimeRange, new_activity  # noqa: E402
from crm_core.clock import now_iso  # noqa: E402
from crm_core.dynamo import to_item  # noqa: E402
from crm_core.table import Page, Table  # noqa: E402
from infra.aws import boto_client  # noqa: E402
from tests.e2e.conftest import CloudProcess  # noqa: E402
from tests.support.aws_calls import count_calls  # noqa: E402

TABLE = "crm-local"
TENANT = "demo"
PAGE = 25


def fields_of(kind: ActivityType, n: int) -> dict[str, Any]:
    examples: dict[ActivityType, dict[str, Any]] = {
        ActivityType.CALL: {"direction": "outbound", "outcome": "connected", "duration_s": 300},
        ActivityType.EMAIL: {
            "direction": "inbound",
            "subject": f"Re: proposal {n}",
            "from": "ada@example.com",
            "to": ["sam@demo.example.com"],
            "body": "Thanks, looks good. " * 20,
        },
        ActivityType.NOTE: {"body": f"Note {n}: " + "talked about pricing and timing. " * 10},
        ActivityType.MEETING: {
            "title": "Demo",
            "starts_at": "2025-01-01T10:00:00Z",
            "ends_at": "2025-01-01T11:00:00Z",
            "attendees": ["ada@example.com"],
        },
        ActivityType.TASK: {
            "subject": f"Follow up {n}",
            "due_at": "2030-01-01T09:00:00Z",
            "status": TaskStatus.COMPLETED.value,
        },
    }
    return validate_fields(kind, examples[kind])


KINDS = [ActivityType.CALL, ActivityType.EMAIL, ActivityType.NOTE, ActivityType.NOTE]


def log_through_api(cloud: CloudProcess, token: str, contact_id: str, count: int) -> None:
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        body = {"type": kind.value, **fields_of(kind, n)}
        status, _, reply = cloud.call("POST", f"/contacts/{contact_id}/activities", token, body)
        assert status == 201, reply


def seed(ddb: Any, contact_id: str, count: int) -> None:
    """`count` more activities in the table, as `ActivityStore.log` writes them."""
    now, start = datetime.now(UTC), datetime.now(UTC) - timedelta(days=3 * 365)
    items = []
    for n in range(count):
        kind = random.choice([*KINDS, ActivityType.MEETING])  # noqa: S311 - test data
        moment = start + (now - start) * random.random()  # noqa: S311 - test data
        item = new_activity(
            TENANT, contact_id, kind, fields_of(kind, n), moment, "bench-seed", now_iso()
        )
        items.append({"PutRequest": {"Item": to_item(item)}})
    for i in range(0, len(items), 25):
        pending = items[i : i + 25]
        while pending:
            reply = ddb.batch_write_item(RequestItems={TABLE: pending})
            pending = reply.get("UnprocessedItems", {}).get(TABLE, [])


def calls(store: ActivityStore, client: Any, contact_id: str) -> dict[str, str]:
    since = datetime.now(UTC) - timedelta(days=30)
    cases: dict[str, Callable[[], Page]] = {
        "newest first": lambda: store.timeline(TENANT, contact_id, PAGE, None),
        "type=note": lambda: store.timeline(TENANT, contact_id, PAGE, None, [ActivityType.NOTE]),
        "type=call,email": lambda: store.timeline(
            TENANT, contact_id, PAGE, None, [ActivityType.CALL, ActivityType.EMAIL]
        ),
        "since 30 days": lambda: store.timeline(
            TENANT, contact_id, PAGE, None, window=TimeRange(since=since)
        ),
    }
    found = {}
    scanned: list[int] = []

    def read(parsed: dict[str, Any], **_: Any) -> None:
        scanned.append(parsed.get("ScannedCount", 0))

    client.meta.events.register("after-call.dynamodb.Query", read, unique_id="bench-scanned")
    try:
        for name, run in cases.items():
            scanned.clear()
            with count_calls(client) as log:
                page = run()
            ops = ", ".join(f"{op} {n}" for op, n in sorted(log.by_operation.items()))
            found[name] = (
                f"{log.count} ({ops}); {len(page.items)} items, {sum(scanned)} read by the Query"
            )
    finally:
        client.meta.events.unregister("after-call.dynamodb.Query", unique_id="bench-scanned")
    return found


def latencies(
    cloud: CloudProcess, token: str, contact_id: str, requests: int, limit: int = PAGE
) -> list[float]:
    times = []
    path = f"/contacts/{contact_id}/timeline?limit={limit}"
    for _ in range(requests):
        started = time.perf_counter()
        status, _, page = cloud.call("GET", path, token)
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200, page
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        cloud = CloudProcess(Path(state))
        cloud.start()
        try:
            endpoint = cloud.running["endpoint_url"]
            token = cloud.token(TENANT, "sales")
            ids = {}
            for name, email in (("10", "small@example.com"), ("large", "large@example.com")):
                status, _, contact = cloud.call("POST", "/contacts", token, {"email": email})
                assert status == 201, contact
                ids[name] = contact["id"]
                log_through_api(cloud, token, contact["id"], 10)
            ddb = boto_client("dynamodb", endpoint)
            seeding = time.perf_counter()
            seed(ddb, ids["large"], args.large - 10)
            seeded_s = time.perf_counter() - seeding
            store = ActivityStore(Table(ddb, TABLE))
            counted = {name: calls(store, ddb, cid) for name, cid in ids.items()}
            for cid in ids.values():  # warm the function and the path before timing
                latencies(cloud, token, cid, 5)
            timed = {name: latencies(cloud, token, cid, args.requests) for name, cid in ids.items()}
            # The same page size for both (10 items), so only the history's length differs.
            even = {
                name: latencies(cloud, token, cid, args.requests, limit=10)
                for name, cid in ids.items()
            }
        finally:
            cloud.stop()

    print(f"Timeline, first page of {PAGE}: 10 vs {args.large:,} activities on the contact")
    print(f"(seeded {args.large - 10:,} activities in {seeded_s:.1f} s)\n")
    print(f"| request | AWS calls, 10 activities | AWS calls, {args.large:,} activities |")
    print("|---|---|---|")
    for case in counted["10"]:
        print(f"| {case} | {counted['10'][case]} | {counted['large'][case]} |")
    print(f"\nGET /contacts/{{id}}/timeline through the local API, {args.requests} each (ms)\n")
    print("| page | activities | median | p90 |")
    print("|---|---|---|---|")
    for label, series_of in ((f"limit={PAGE}", timed), ("limit=10", even)):
        for name, key in (("10", "10"), (f"{args.large:,}", "large")):
            series = series_of[key]
            p90 = series[int(len(series) * 0.9) - 1]
            print(f"| {label} | {name} | {statistics.median(series):.1f} | {p90:.1f} |")
    for label, series_of in ((f"limit={PAGE}", timed), ("limit=10", even)):
        ratio = statistics.median(series_of["large"]) / statistics.median(series_of["10"])
        print(f"\nlatency ratio, {label} (median, {args.large:,} / 10): {ratio:.2f}")


if __name__ == "__main__":
    main()
