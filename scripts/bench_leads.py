"""Lead intake through `crm dev` (in a subprocess): signed webhooks in, contacts out.

An admin of tenant `demo` creates a lead source; then
1. webhook acceptance: N signed deliveries, each with its own email, posted by a small
   thread pool (`POST /webhooks/leads/{id}` until its 202): accepted leads/s, p50 and p95;
2. end to end: from the first delivery until no delivery is `accepted` any more (each one
   `processed` by lead_processor: a contact and its form_submission), polling
   `GET /lead-sources/{id}/deliveries?status=accepted`: processed leads/s.

    python scripts/bench_leads.py [--leads 500] [--concurrency 8] [--timeout 900]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "shared"))

from infra.ops.webhook_cli import send  # noqa: E402
from tests.e2e.conftest import CloudProcess  # noqa: E402

TENANT = "demo"
WARM_UP = 8  # deliveries before timing: each webhook worker opens the secret once
# Each poll is an index Query, which the local endpoint answers by reading the whole table:
# polled faster, the bench would slow down what it measures.
POLL_SECONDS = 1.0
MAX_POLL_FAILURES = 5


class BenchError(RuntimeError):
    """The bench could not measure what it set out to (the message says what went wrong)."""


def lead(run: str, n: int) -> bytes:
    body = {
        "email": f"lead-{run}-{n}@bench.example.com",
        "first_name": "Lead",
        "last_name": f"No. {n}",
        "company": "Bench Inc.",
        "utm_source": "bench",
    }
    return json.dumps(body).encode()


def create_source(cloud: CloudProcess, token: str) -> tuple[str, str]:
    status, _, source = cloud.call("POST", "/lead-sources", token, {"name": "Bench form"})
    if status != 201 or not isinstance(source, dict) or not source.get("secret"):
        raise BenchError(f"POST /lead-sources answered {status}: {source}")
    return str(source["id"]), str(source["secret"])


def deliver(
    api: str, source_id: str, secret: str, bodies: list[bytes], threads: int
) -> list[tuple[float, int, str]]:
    """(latency ms, status, body) of each delivery, sent `threads` at a time."""

    def one(body: bytes) -> tuple[float, int, str]:
        started = time.perf_counter()
        try:
            answer = send(api, source_id, secret, body, timeout=30)
        except OSError as error:  # no answer: counted as a failure, reported below
            return (time.perf_counter() - started) * 1000, 0, str(error)
        elapsed = (time.perf_counter() - started) * 1000
        return elapsed, answer.status, answer.body.decode(errors="replace")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, bodies))


def count_in(cloud: CloudProcess, token: str, source_id: str, status: str) -> int:
    """Deliveries in `status`, one page at a time (the status is an index key: a Query)."""
    total, cursor = 0, ""
    while True:
        path = f"/lead-sources/{source_id}/deliveries?status={status}&limit=100{cursor}"
        code, _, page = cloud.call("GET", path, token)
        if code != 200:
            raise BenchError(f"GET {path} answered {code}: {page}")
        total += len(page["items"])
        if not page["next_cursor"]:
            return total
        cursor = f"&cursor={page['next_cursor']}"


def wait_until_settled(cloud: CloudProcess, token: str, source_id: str, deadline: float) -> float:
    """Poll until no delivery is `accepted`; the moment it was seen so (monotonic).

    A poll that fails is tried again (up to MAX_POLL_FAILURES in a row), and said on stderr:
    under load the local cloud can time a Query out, and the bench should still finish."""
    failures = 0
    while True:
        path = f"/lead-sources/{source_id}/deliveries?status=accepted&limit=1"
        code, _, page = cloud.call("GET", path, token)
        now = time.monotonic()
        if code != 200:
            failures += 1
            print(f"bench_leads: GET {path} answered {code}: {page}", file=sys.stderr)
            if failures >= MAX_POLL_FAILURES:
                raise BenchError(f"{failures} polls in a row failed; the last answered {code}")
        elif not page["items"]:
            return now
        else:
            failures = 0
        if now > deadline:
            left = count_in(cloud, token, source_id, "accepted")
            raise BenchError(
                f"{left} deliveries still `accepted` at the deadline: is lead_processor running?"
            )
        time.sleep(POLL_SECONDS)


def statuses(cloud: CloudProcess, token: str, source_id: str) -> Counter[str]:
    return Counter(
        {
            status: count_in(cloud, token, source_id, status)
            for status in ("accepted", "processed", "rejected", "failed")
        }
    )


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def run(args: argparse.Namespace, cloud: CloudProcess) -> dict[str, Any]:
    token = cloud.token(TENANT, "admin")
    source_id, secret = create_source(cloud, token)
    run_id = str(int(time.time()))
    deadline = time.monotonic() + args.timeout

    warm = deliver(
        cloud.api,
        source_id,
        secret,
        [lead(run_id, -n) for n in range(1, WARM_UP + 1)],
        args.concurrency,
    )
    if any(status != 202 for _, status, _ in warm):
        raise BenchError(f"warm-up deliveries were refused: {[w[1:] for w in warm]}")
    wait_until_settled(cloud, token, source_id, deadline)

    bodies = [lead(run_id, n) for n in range(args.leads)]
    started = time.monotonic()
    results = deliver(cloud.api, source_id, secret, bodies, args.concurrency)
    sent = time.monotonic()
    refused = Counter(status for _, status, _ in results if status != 202)
    if refused:
        example = next(body for _, status, body in results if status != 202)
        raise BenchError(f"deliveries not accepted, by status: {dict(refused)}; e.g. {example}")
    settled = wait_until_settled(cloud, token, source_id, deadline)
    counts = statuses(cloud, token, source_id)
    expected = args.leads + WARM_UP
    if counts["processed"] != expected:
        raise BenchError(f"expected {expected} deliveries processed, found {dict(counts)}")
    latencies = [ms for ms, _, _ in results]
    return {
        "accepted_s": sent - started,
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 0.95),
        "processed_s": settled - started,
        "lag_s": settled - sent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds for the whole run, after start"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        cloud = CloudProcess(Path(state))
        cloud.start()
        try:
            found = run(args, cloud)
        except BenchError as error:
            print(
                f"bench_leads: {error}\n\ncrm dev's last lines:\n{cloud.log_tail()}",
                file=sys.stderr,
            )
            sys.exit(1)
        finally:
            cloud.stop()

    n = args.leads
    print(f"Lead intake: {n} signed deliveries, {args.concurrency} at a time (local cloud)\n")
    print("| stage | seconds | leads/s | p50 ms | p95 ms |")
    print("|---|---|---|---|---|")
    print(
        f"| webhook: 202 accepted | {found['accepted_s']:.2f} | {n / found['accepted_s']:.1f} "
        f"| {found['p50']:.1f} | {found['p95']:.1f} |"
    )
    print(
        f"| end to end: processed (contact + form_submission) | {found['processed_s']:.2f} "
        f"| {n / found['processed_s']:.1f} | | |"
    )
    print(f"\nthe last lead was processed {found['lag_s']:.2f} s after the last 202")


if __name__ == "__main__":
    main()
