"""The board's and the forecast's cost do not grow with a pipeline's deals (`crm dev` in a
subprocess).

Two tenants of their own, base currency EUR with rates for USD, GBP and JPY: one with 10
deals, one with 10,000, every stage of the default pipeline used, close dates over twelve
months, four currencies and five owners. The deals are written by `DealStore.create` (what
`POST /deals` runs) into memory, then copied into the local endpoint's table, and the last
one by the deals function itself on the local endpoint: against the endpoint every deal
took 60 to 90 ms while the local cloud published the events of the ones before (ten
minutes for 10,000), in memory it takes about a millisecond. The copy leaves the outbox's
items out: their events would keep the local cloud busy for minutes, and nothing measured
here reads them. For `GET /pipelines/default/board` (its default 10 deals a stage, and 1 a
stage: the same deals shown for both tenants), `GET /forecast` (twelve months from this
one) and the same with `as_of` (the moment half the tenant's deals existed):
1. AWS calls of one request, by operation, and the items its Queries read: the same
   in-process function called with the HTTP API's events (the tenant quota left out: it
   costs one write per batch of requests); and its time, median of R, split into the part
   spent waiting on the local endpoint and the function's own;
2. latency through the local API (HTTP, JWT authorizer, warm function): median and p90 of N.
   The 10-deal tenant is timed alone in the table, then again beside the 10,000 deals,
   taking turns with the large tenant. The local endpoint keeps each index partition sorted
   and serializes only the items a page holds (decision 85), so its time follows the page,
   not the table; the board of 10 deals a stage still returns 60 deals for the large tenant
   and 10 for the small one (the board of one deal a stage returns 6 for both), and 1.
   tells the function's own time from the endpoint's.
Then the AWS calls of moving a deal one stage, and of winning one: reads, then exactly one
TransactWriteItems.

Promises checked: the same calls for 10 and 10,000 deals, `as_of` adding the same number
of calls for both, a move being reads then one transaction (the exit status is 1 when one
of these fails); latency with 10,000 deals at most 1.5 times that with 10 (flagged: through
the local endpoint it measures moto's Query as much as the function, see 2.).

    python scripts/bench_deals.py [--requests 50] [--runs 10] [--budget 30] [--large 10000]
        [--workers 4]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "shared"))

from scripts.bench_functions import (  # noqa: E402
    TABLE,
    LambdaContext,
    function_environment,
    http_event,
    load_function,
)
from tests.e2e.conftest import CloudProcess  # noqa: E402

SMALL = 10
RATES = {"USD": "0.92", "GBP": "1.17", "JPY": "0.0062"}
CURRENCIES = ("EUR", "USD", "GBP", "JPY")
# Stages in turn, so that ten deals fill every stage of the default pipeline.
STAGES = ("qualification", "needs-analysis", "proposal", "negotiation", "won", "lost")
OWNERS = tuple(f"bench-owner-{n}" for n in range(5))
MAX_RATIO = 1.5
READS = frozenset({"GetItem", "BatchGetItem", "Query"})
DRAIN_POLL_SECONDS = 1.0
WARM_UP = 2
MIN_REQUESTS = 5


class BenchError(RuntimeError):
    """The bench could not measure what it set out to (the message says what went wrong)."""


# The deals function in this process ---------------------------------------------------------
def add_months(day: date, count: int) -> date:
    index = day.year * 12 + day.month - 1 + count
    return date(index // 12, index % 12 + 1, min(day.day, 28))


def deal_body(n: int, today: date) -> dict[str, Any]:
    """The n-th deal: stages, currencies and owners in turn, close dates over twelve months
    (three back, nine ahead), each month with deals of every stage, currency and owner."""
    stage, currency = STAGES[n % len(STAGES)], CURRENCIES[n % len(CURRENCIES)]
    month = (5 * n + n // 12) % 12
    amount = 1000 + (n * 7919) % 90_000
    body: dict[str, Any] = {
        "name": f"Bench deal {n}",
        "stage_id": stage,
        "amount": f"{amount * 150}" if currency == "JPY" else f"{amount}.00",
        "currency": currency,
        "close_date": add_months(today, month - 3).replace(day=1 + n % 28).isoformat(),
        "owner_id": OWNERS[n % len(OWNERS)],
    }
    if stage == "lost":
        body["lost_reason"] = {"reason": "price"}
    return body


@dataclass
class Tenant:
    name: str
    deals: int
    token: str = ""
    as_of: str = ""
    generated_s: float = 0.0
    created_s: float = 0.0
    items: int = 0
    month_cells: int = 0
    month_kb: float = 0.0
    ids_by_stage: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    """One request of the in-process function: its AWS calls in order, the items its
    Queries read, its milliseconds, and those spent waiting on AWS calls."""

    calls: list[str]
    read: int
    ms: float
    aws_ms: float

    @property
    def own_ms(self) -> float:
        return self.ms - self.aws_ms


class CallClock:
    """When each AWS call of a client ran, and the items each Query read."""

    def __init__(self, client: Any) -> None:
        self.events = client.meta.events
        self.local = threading.local()
        self.spans: list[tuple[float, float]] = []
        self.read = 0

    def __enter__(self) -> CallClock:
        self.events.register("before-call", self._before, unique_id="bench-deals-before")
        self.events.register("after-call", self._after, unique_id="bench-deals-after")
        return self

    def __exit__(self, *_: Any) -> None:
        self.events.unregister("before-call", unique_id="bench-deals-before")
        self.events.unregister("after-call", unique_id="bench-deals-after")

    def _before(self, **_: Any) -> None:
        self.local.started = time.perf_counter()

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        self.spans.append((self.local.started, time.perf_counter()))
        if model.name == "Query":
            self.read += int(parsed.get("ScannedCount", 0))

    def busy_ms(self) -> float:
        """The time some call was under way (the board's Queries run side by side)."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.spans):
            if stop > end:
                total += stop - max(start, end)
                end = stop
        return total * 1000


class MemoryDynamo:
    """What `DealStore.create` asks of DynamoDB (GetItem, BatchGetItem, and
    TransactWriteItems of Puts, ConditionChecks and the board's ADD), in memory, for one
    writer: the store's own code decides every item, which are then copied into the local
    endpoint's table. Anything else it is asked is a NotImplementedError, so that a change
    of the store shows here rather than as a wrong table."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    @staticmethod
    def _key(attributes: dict[str, Any]) -> tuple[str, str]:
        return attributes["PK"]["S"], attributes["SK"]["S"]

    def get_item(self, **params: Any) -> dict[str, Any]:
        found = self.items.get(self._key(params["Key"]))
        return {"Item": found} if found else {}

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        ((name, wanted),) = params["RequestItems"].items()
        keys = [self._key(k) for k in wanted["Keys"]]
        return {"Responses": {name: [self.items[k] for k in keys if k in self.items]}}

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        for entry in params["TransactItems"]:
            if "Put" in entry:
                self.items[self._key(entry["Put"]["Item"])] = entry["Put"]["Item"]
            elif "Update" in entry:
                self._update(entry["Update"])
            elif "ConditionCheck" not in entry:
                raise NotImplementedError(f"TransactWriteItems with {sorted(entry)}")
        return {}

    def _update(self, update: dict[str, Any]) -> None:
        key = self._key(update["Key"])
        item = dict(self.items.get(key) or update["Key"])
        names, values = update["ExpressionAttributeNames"], update["ExpressionAttributeValues"]
        for clause in re.split(r"\s(?=ADD |SET )", update["UpdateExpression"].strip()):
            verb, _, rest = clause.partition(" ")
            for part in (p.strip() for p in rest.split(",")):
                if verb == "ADD":
                    name, value = part.split()
                    before = Decimal(item.get(names[name], {"N": "0"})["N"])
                    item[names[name]] = {"N": f"{before + Decimal(values[value]['N']):f}"}
                elif verb == "SET":
                    name, value = (side.strip() for side in part.split("="))
                    item[names[name]] = values[value]
                else:
                    raise NotImplementedError(f"UpdateExpression {update['UpdateExpression']}")
        self.items[key] = item


# Left out of the copy: the events (the outbox's items would keep the local cloud publishing
# for minutes, and no read measured here touches them), and the rates (set through the API).
NOT_COPIED = frozenset({"outbox_event", "currency_settings"})


def generate(tenant: Tenant, count: int) -> list[dict[str, Any]]:
    """`count` deals of the tenant as `DealStore.create` writes them, in memory: the items
    to copy. `tenant.as_of` is the moment half of them existed."""
    from crm_core.clock import format_iso
    from crm_core.deals import bookkeeping
    from crm_core.deals.currency_settings import CurrencySettingsBody
    from crm_core.deals.deal_store import DealStore
    from crm_core.events.envelope import Origin
    from crm_core.records.deal import DealCreate
    from crm_core.table import Table

    memory = MemoryDynamo()
    store = DealStore(Table(memory, TABLE))
    origin = Origin.user(OWNERS[0], "bench-deals")
    rates = CurrencySettingsBody(base="EUR", rates=RATES)
    store.currencies.replace(tenant.name, rates, None, origin)
    today = datetime.now(UTC).date()
    for n in range(count):
        deal = store.create(tenant.name, DealCreate.model_validate(deal_body(n, today)), origin)
        tenant.ids_by_stage.setdefault(deal.stage_id, deal.id)
        if n + 1 == tenant.deals // 2:
            tenant.as_of = format_iso(datetime.now(UTC))
    months = [i for i in memory.items.values() if i["type"]["S"] == "forecast_month"]
    packed = [i[bookkeeping.CELLS_ATTRIBUTE]["B"] for i in months]
    tenant.month_cells = sum(
        len(bookkeeping.decode_cells({bookkeeping.CELLS_ATTRIBUTE: bytes(p)})) for p in packed
    )
    tenant.month_kb = max((len(p) for p in packed), default=0) / 1024
    return [i for i in memory.items.values() if i["type"]["S"] not in NOT_COPIED]


def copy(client: Any, items: list[dict[str, Any]], workers: int) -> None:
    """Into the local endpoint's table, 25 items a BatchWriteItem, `workers` at a time."""

    def write(chunk: list[dict[str, Any]]) -> None:
        pending = [{"PutRequest": {"Item": item}} for item in chunk]
        while pending:
            reply = client.batch_write_item(RequestItems={TABLE: pending})
            pending = reply.get("UnprocessedItems", {}).get(TABLE, [])

    chunks = [items[i : i + 25] for i in range(0, len(items), 25)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(write, chunks))


class InProcess:
    """The deals function of this process: its store, and its handler."""

    def __init__(self, function: ModuleType) -> None:
        from crm_core.events.envelope import Origin

        context = sys.modules["deals_api.context"]
        self.store = context.deal_store
        self.table = context.table
        self.handler = function.handler
        self.origin = Origin.user(OWNERS[0], "bench-deals")

    def create(self, tenant: Tenant, workers: int) -> str:
        """The tenant's deals: all but the last generated in memory and copied into the
        table, the last one written by the function's own store on the local endpoint, so
        that its event follows every copied item in the table's stream. Its id."""
        from crm_core.records.deal import DealCreate

        started = time.perf_counter()
        items = generate(tenant, tenant.deals - 1)
        tenant.generated_s = time.perf_counter() - started
        copy(self.table.client, items, workers)
        tenant.items = len(items)
        body = deal_body(tenant.deals - 1, datetime.now(UTC).date())
        last = self.store.create(tenant.name, DealCreate.model_validate(body), self.origin)
        tenant.created_s = time.perf_counter() - started
        return str(last.id)

    def run(self, tenant: Tenant, method: str, path: str, body: Any = None) -> Run:
        """One request of the tenant's admin."""
        from tests.support.aws_calls import count_calls

        event = http_event(tenant.name, method, path, body, user=OWNERS[0])
        with count_calls(self.table.client) as log, CallClock(self.table.client) as clock:
            started = time.perf_counter()
            reply = self.handler(event, LambdaContext("crm-local-deals"))
            ms = (time.perf_counter() - started) * 1000
        if reply["statusCode"] != 200:
            raise BenchError(f"{method} {path} answered {reply['statusCode']}: {reply['body']}")
        return Run(log.calls, clock.read, ms, clock.busy_ms())

    def profile(self, tenant: Tenant, path: str, runs: int, budget: float) -> list[Run]:
        """`runs` requests (fewer when `budget` seconds run out, at least MIN_REQUESTS)."""
        self.run(tenant, "GET", path)  # warm the path
        started, found = time.monotonic(), list[Run]()
        while len(found) < runs and (
            len(found) < MIN_REQUESTS or time.monotonic() - started < budget
        ):
            found.append(self.run(tenant, "GET", path))
        return found


# Through the local cloud ---------------------------------------------------------------------
def wait_for_outbox(cloud: CloudProcess, deal_id: str, timeout: float) -> float:
    """Seconds until the DealCreated of `deal_id` (written last) is on the bus: every event
    before it is published, and the cloud is quiet again."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        status, _, recent = cloud.call("GET", "/_local/events", None, accept="application/json")
        if status == 200 and any(
            e.get("detail", {}).get("data", {}).get("deal", {}).get("id") == deal_id for e in recent
        ):
            return time.monotonic() - started
        time.sleep(DRAIN_POLL_SECONDS)
    raise BenchError(f"the outbox did not drain in {timeout:.0f} s")


def cases(tenant: Tenant) -> dict[str, str]:
    return {
        "board": "/pipelines/default/board",
        "board, 1 deal a stage": "/pipelines/default/board?limit=1",
        "forecast": "/forecast",
        "forecast as_of": f"/forecast?as_of={quote(tenant.as_of)}",
    }


def timed(
    cloud: CloudProcess, tenants: list[Tenant], requests: int, budget: float
) -> dict[str, dict[str, list[float]]]:
    """Per tenant and case, the milliseconds of `requests` requests through the API (fewer
    when a case's `budget` seconds run out, at least MIN_REQUESTS), the tenants taking turns
    so that both see the same machine."""
    found: dict[str, dict[str, list[float]]] = {t.name: {} for t in tenants}
    for case in cases(tenants[0]):
        for tenant in tenants:  # warm the function and the path
            for _ in range(WARM_UP):
                cloud.call("GET", cases(tenant)[case], tenant.token)
        started_case = time.monotonic()
        for n in range(requests):
            if n >= MIN_REQUESTS and time.monotonic() - started_case > budget:
                break
            for tenant in tenants:
                path = cases(tenant)[case]
                started = time.perf_counter()
                status, _, reply = cloud.call("GET", path, tenant.token)
                found[tenant.name].setdefault(case, []).append(
                    (time.perf_counter() - started) * 1000
                )
                if status != 200:
                    raise BenchError(f"GET {path} answered {status}: {reply}")
    return found


def profiled(bench: InProcess, tenant: Tenant, runs: int, budget: float) -> dict[str, list[Run]]:
    return {name: bench.profile(tenant, path, runs, budget) for name, path in cases(tenant).items()}


def moves(bench: InProcess, tenant: Tenant) -> dict[str, list[str]]:
    deal_id = tenant.ids_by_stage["proposal"]
    return {
        "move: proposal to negotiation": bench.run(
            tenant, "PATCH", f"/deals/{deal_id}", {"stage_id": "negotiation"}
        ).calls,
        "close: negotiation to won": bench.run(
            tenant, "PATCH", f"/deals/{deal_id}", {"stage_id": "won"}
        ).calls,
    }


# Report ------------------------------------------------------------------------------------
def calls_text(calls: list[str]) -> str:
    ops = ", ".join(f"{op} {n}" for op, n in sorted(Counter(calls).items()))
    return f"{len(calls)} ({ops})"


def percentile(series: list[float], p: float) -> float:
    ordered = sorted(series)
    return ordered[max(0, int(len(ordered) * p) - 1)]


def median(values: list[float]) -> float:
    return statistics.median(values)


def reads_then_one_transaction(calls: list[str]) -> bool:
    return (
        calls.count("TransactWriteItems") == 1
        and calls[-1] == "TransactWriteItems"
        and all(c in READS for c in calls[:-1])
    )


def report(args: argparse.Namespace, found: dict[str, Any]) -> list[str]:
    """Prints the tables and the promises; returns those of the AWS calls broken (the
    latency's are flagged: through the local endpoint they measure moto as much as us)."""
    small, large = found["small"], found["large"]
    big = f"{args.large:,}"
    broken: list[str] = []
    slow: list[str] = []
    print(f"Deals: the board and the forecast with {SMALL} and {big} deals in the tenant")
    print(
        f"({big} deals in {large.created_s:.0f} s: made by DealStore.create in memory in "
        f"{large.generated_s:.0f} s, {large.items:,} items copied into the local endpoint's "
        f"table, the last deal written there; its event on the bus {found['drained_s']:.0f} s "
        "later. as_of: the moment half of a tenant's deals existed)\n"
    )
    print("AWS calls per request: the deals function in this process, on the local endpoint\n")
    print(f"| request | {SMALL} deals | {big} deals | same |")
    print("|---|---|---|---|")
    runs_small, runs_large = found["runs_small"], found["runs_large"]
    for name in runs_small:
        a, b = runs_small[name][0], runs_large[name][0]
        same = Counter(a.calls) == Counter(b.calls)
        print(
            f"| {name} | {calls_text(a.calls)}; {a.read} items read by the Queries "
            f"| {calls_text(b.calls)}; {b.read} items read | {'yes' if same else 'NO'} |"
        )
        if not same:
            broken.append(f"{name}: other calls with {big} deals")
    print(
        f"\nThe forecast's months hold {small.month_cells:,} cells with {SMALL} deals, "
        f"{large.month_cells:,} with {big} (a cell per owner, stage and currency of a month, "
        f"whatever the deals; largest month item {small.month_kb:.1f} KB and "
        f"{large.month_kb:.1f} KB as DynamoDB JSON)"
    )
    extra = {
        size: len(found[f"runs_{size}"]["forecast as_of"][0].calls)
        - len(found[f"runs_{size}"]["forecast"][0].calls)
        for size in ("small", "large")
    }
    print(
        f"\nas_of adds {extra['small']} calls with {SMALL} deals and {extra['large']} with "
        f"{big}: the pipeline's and the rates' versions then, and a Query per month asked about"
    )
    if extra["small"] != extra["large"]:
        broken.append("as_of: not the same number of extra calls")

    print(
        f"\nThe same requests in this process (ms, median of up to {args.runs}: n): all of it, "
        "the part spent waiting on the local endpoint, and the function's own\n"
    )
    print(
        f"| request | {SMALL} deals: all / AWS / own | {big} deals: all / AWS / own "
        f"| own, {big} / {SMALL} |"
    )
    print("|---|---|---|---|")
    for name in runs_small:
        cells = []
        for runs in (runs_small[name], runs_large[name]):
            cells.append(
                f"{median([r.ms for r in runs]):.1f} / {median([r.aws_ms for r in runs]):.1f} "
                f"/ {median([r.own_ms for r in runs]):.1f} ({len(runs)})"
            )
        own = median([r.own_ms for r in runs_large[name]]) / median(
            [r.own_ms for r in runs_small[name]]
        )
        print(f"| {name} | {' | '.join(cells)} | {own:.2f} |")

    timed_alone, timed_after = found["timed_alone"], found["timed_after"]
    print(
        f"\nLatency through the local API (ms, median / p90 of up to {args.requests}: n); "
        f"the {SMALL}-deal tenant alone in the table, then beside the {big} deals, taking "
        f"turns with the {big}-deal tenant\n"
    )
    print(
        f"| request | {SMALL} deals, alone | {SMALL} deals, beside | {big} deals "
        f"| ratio {big} / {SMALL} alone | ratio {big} / {SMALL} beside |"
    )
    print("|---|---|---|---|---|---|")
    for name in timed_alone[small.name]:
        series = [
            timed_alone[small.name][name],
            timed_after[small.name][name],
            timed_after[large.name][name],
        ]
        cells = [f"{median(s):.1f} / {percentile(s, 0.9):.1f} ({len(s)})" for s in series]
        alone = median(series[2]) / median(series[0])
        beside = median(series[2]) / median(series[1])
        flag = "" if alone <= MAX_RATIO else f" (over {MAX_RATIO})"
        print(f"| {name} | {' | '.join(cells)} | {alone:.2f}{flag} | {beside:.2f} |")
        if alone > MAX_RATIO:
            slow.append(f"{name}: latency {alone:.2f} times that with {SMALL} deals")

    print("\nAWS calls of a deal's change, PATCH /deals/{id}, in order\n")
    print(f"| change | {SMALL} deals | {big} deals | reads, then one TransactWriteItems |")
    print("|---|---|---|---|")
    for name in found["moves_small"]:
        a, b = found["moves_small"][name], found["moves_large"][name]
        good = reads_then_one_transaction(a) and reads_then_one_transaction(b)
        same = Counter(a) == Counter(b)
        print(f"| {name} | {', '.join(a)} | {', '.join(b)} | {'yes' if good and same else 'NO'} |")
        if not good:
            broken.append(f"{name}: not reads then one transaction")
        elif not same:
            broken.append(f"{name}: other calls with {big} deals")

    print(
        f"\nPromises: the same calls whatever the deals; as_of a constant number more; a "
        f"change is reads then one transaction (the exit status); latency with {big} deals at "
        f"most {MAX_RATIO} times that with {SMALL} (flagged)"
    )
    for problem in broken:
        print(f"  FAILED: {problem}")
    if not broken:
        print("  AWS calls: all kept")
    for problem in slow:
        print(f"  FLAGGED: {problem}")
    if not slow:
        print("  latency: kept")
    return broken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="timed through the API")
    parser.add_argument("--runs", type=int, default=10, help="timed in this process")
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4, help="BatchWriteItems in flight")
    parser.add_argument(
        "--budget", type=float, default=30, help="seconds per request timed, before stopping short"
    )
    parser.add_argument("--drain-timeout", type=float, default=600)
    args = parser.parse_args()
    small, large = Tenant("bench-deals-small", SMALL), Tenant("bench-deals-large", args.large)
    found: dict[str, Any] = {"small": small, "large": large}
    with tempfile.TemporaryDirectory() as state:
        cloud = CloudProcess(Path(state))
        cloud.start()
        try:
            for tenant in (small, large):
                created = cloud.crm("tenant", "create", tenant.name)
                if created.returncode != 0:
                    raise BenchError(f"crm tenant create: {created.stderr}")
                tenant.token = cloud.token(tenant.name, "admin")
                rates = {"base": "EUR", "rates": RATES}
                status, _, reply = cloud.call("PUT", "/settings/currencies", tenant.token, rates)
                if status != 200:
                    raise BenchError(f"PUT /settings/currencies answered {status}: {reply}")
            function_environment(cloud.running["endpoint_url"], "deals")
            bench = InProcess(load_function("deals"))

            wait_for_outbox(cloud, bench.create(small, args.workers), args.drain_timeout)
            found["runs_small"] = profiled(bench, small, args.runs, args.budget / 2)
            found["timed_alone"] = timed(cloud, [small], args.requests, args.budget)

            last = bench.create(large, args.workers)
            found["drained_s"] = wait_for_outbox(cloud, last, args.drain_timeout)
            found["runs_large"] = profiled(bench, large, args.runs, args.budget / 2)
            found["timed_after"] = timed(cloud, [small, large], args.requests, args.budget)

            found["moves_small"] = moves(bench, small)
            found["moves_large"] = moves(bench, large)
        finally:
            cloud.stop()
    if report(args, found):
        sys.exit(1)


if __name__ == "__main__":
    main()
