"""Campaigns: a large campaign through the local cloud, and its AWS calls per recipient.

1. Through the local cloud (`crm dev` in a subprocess, a tenant of its own): N contacts
   (default 10,000) tagged `newsletter` are written straight into the local table with
   BatchWriteItem, 25 items a call, as ContactStore.create would write them (its own code
   builds the items: the contact with its index keys, its email's uniqueness item, its tag
   membership); their ContactCreated outbox events are not written (nothing here needs
   them, and the relay would only add load). Every 100th has not consented and every
   100th (another) is on the tenant's suppression list, so the sender's skip path runs.
   Then through the API: PUT /settings/email, POST /segments (`tags.any: [newsletter]`),
   GET its preview, POST /campaigns (from news@example.com, the local verified domain),
   POST /campaigns/{id}/send; GET /campaigns/{id} is polled until the campaign is `sent`.
   Measured:
   - total: from the send's POST until the campaign reads `sent`; recipients per second
     (the audience over the total); the time to the first email sent;
   - the dispatcher: from the send's POST until the dispatcher logged its end (the
     campaign's `dispatch_done`; also seen by polling the campaign item);
   - SES calls: the campaign's emails in the local mailbox (`GET /_local/mailbox`, one
     entry per SendEmail SES accepted);
   - SQS messages: the messages the dispatcher reports it sent to the send queue (its log
     line's `messages`), the messages the sender logged as handled, and, for reference,
     ceil(recipients / 50) computed; the send queue and its DLQ must be empty at the end.
   Checked: sent + skipped + failed == audience == N; skipped == the non-consented plus
   the suppressed seeded (with those reasons); delivered == sent once SES's events settle
   (waited for up to --settle seconds); the mailbox has exactly `sent` emails of the
   campaign, one per recipient (no address twice), each with List-Unsubscribe (a link to
   this API's /unsubscribe) and List-Unsubscribe-Post; the API's answers (a large
   segment's preview may answer a minimum count, at its 5 s budget). When POST /send fails,
   the campaign is sent with CampaignStore.send_now, what the route does after its checks,
   so that the pipeline is still measured (from there).
2. In-process on moto (the table from template.yaml; campaign_dispatcher, campaign_sender
   and email_events as Lambda runs them): the local cloud counts no requests by operation,
   so a smaller campaign (--calls-recipients, default 1,000, seeded the same way) is
   dispatched, its queue's messages handed to the sender two at a time (the template's
   BatchSize), and each email's SES events (Send, Delivery) to email_events. Each
   function's AWS calls by operation, per recipient of the audience.

Exits non-zero when a check fails.

    python scripts/bench_campaign.py [--recipients 10000] [--calls-recipients 1000]
        [--part all|cloud|calls] [--timeout 1800] [--settle SECONDS] [--keep-log FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "shared"))

from tests.e2e.conftest import CloudProcess  # noqa: E402

TAG = "newsletter"
SKIP_EVERY = 100  # one contact in SKIP_EVERY not consented, another one suppressed
# The local cloud's verified SES identity (SenderDomain) is example.com; each tenant sends from
# its namespace on it, `<tenant>.<name>@example.com`.
SEND_DOMAIN = "example.com"


def send_from(tenant: str) -> str:
    return f"{tenant.lower()}.news@{SEND_DOMAIN}"


POSTAL_ADDRESS = "1 Bench Street, 1000 Brussels"
GROUP_SIZE = 50  # recipients per send-queue message (crm_core.campaigns.recipients)
SENDER_BATCH_SIZE = 2  # template.yaml: the sender's SQS event source's BatchSize
POLL_SECONDS = 1.0
PROGRESS_SECONDS = 30.0
WRITE_BATCH = 25  # BatchWriteItem's limit
CONTENT = {
    "from_name": "Bench News",
    "subject": "{{ first_name | default('Hello') }}, the bench news",
    "html": "<p>Hi {{ first_name | default('there') }},</p><p>News of the week.</p>",
    "text": "Hi {{ first_name | default('there') }},\n\nNews of the week.",
}
OUTCOMES = ("sent", "failed", "cancelled", "paused")


class BenchError(RuntimeError):
    """The bench could not measure what it set out to (the message says what went wrong)."""


# Seeding (both parts) ----------------------------------------------------------------------
@dataclass
class Seeded:
    contact_ids: dict[str, str] = field(default_factory=dict)  # email -> contact id
    not_mailable: set[str] = field(default_factory=set)  # emails
    not_consented: int = 0
    suppressed: int = 0
    items: int = 0
    seconds: float = 0.0

    @property
    def mailable(self) -> int:
        return len(self.contact_ids) - self.not_consented - self.suppressed


def seed_contacts(table: Any, tenant: str, count: int) -> Seeded:
    """`count` contacts tagged TAG, written with BatchWriteItem as ContactStore.create
    would write them (without their outbox events); one in SKIP_EVERY not consented
    (`unknown`), another suppressed (a hard bounce on the tenant's suppression list)."""
    from crm_core.campaigns.suppression import SuppressionReason, suppress_put
    from crm_core.clock import now_iso
    from crm_core.contacts.store import ContactStore
    from crm_core.events.envelope import DomainEvent, Origin
    from crm_core.records.contact import ContactCreate

    class Collecting(ContactStore):
        """ContactStore whose writes are kept instead of made: the items `create` would
        put, its outbox event left out."""

        def __init__(self, table: Any) -> None:
            super().__init__(table)
            self.items: list[dict[str, Any]] = []

        def _write(
            self,
            ops: list[dict[str, Any]],
            item: dict[str, Any],
            event: DomainEvent | None,
            extra_writes: Any = (),
        ) -> None:
            for op in [*ops, *extra_writes]:
                if "Put" not in op:
                    raise BenchError(f"a new contact's write is not a Put: {op}")
                self.items.append(op["Put"]["Item"])

    started = time.perf_counter()
    store = Collecting(table)
    origin = Origin.system("bench_campaign")
    seeded = Seeded()
    for n in range(count):
        email = f"bench+{n}@example.com"
        consent = "unknown" if n % SKIP_EVERY == 1 else "subscribed"
        body = ContactCreate(
            email=email,
            first_name=f"Reader{n}",
            tags=[TAG],
            country="BE",
            email_consent=consent,
        )
        seeded.contact_ids[email] = store.create(tenant, body, origin).id
        if consent != "subscribed":
            seeded.not_consented += 1
            seeded.not_mailable.add(email)
        elif n % SKIP_EVERY == SKIP_EVERY // 2 + 1:
            put = suppress_put(table.op, tenant, email, SuppressionReason.HARD_BOUNCE, now_iso())
            store.items.append(put["Put"]["Item"])
            seeded.suppressed += 1
            seeded.not_mailable.add(email)
    batch_write(table, store.items)
    seeded.items = len(store.items)
    seeded.seconds = time.perf_counter() - started
    return seeded


def batch_write(table: Any, items: list[dict[str, Any]]) -> None:
    """Serialized items, WRITE_BATCH a BatchWriteItem, the unprocessed ones again."""
    client, name = table.client, table.name
    for start in range(0, len(items), WRITE_BATCH):
        pending = [{"PutRequest": {"Item": i}} for i in items[start : start + WRITE_BATCH]]
        attempt = 0
        while pending:
            reply = client.batch_write_item(RequestItems={name: pending})
            pending = reply.get("UnprocessedItems", {}).get(name, [])
            attempt += 1
            if pending:
                time.sleep(min(0.05 * 2**attempt, 2.0))


# 1. Through the local cloud ----------------------------------------------------------------
@dataclass
class Timeline:
    """Moments (monotonic seconds after the send's POST) seen by polling."""

    first_sent: float | None = None
    dispatch_done: float | None = None
    audience_final: float | None = None
    ended: float | None = None
    polls: int = 0
    poll_failures: int = 0
    api_get_ms: list[float] = field(default_factory=list)  # GET /campaigns/{id}
    get_item_ms: list[float] = field(default_factory=list)  # GetItem of the campaign item


def api(cloud: CloudProcess, token: str, method: str, path: str, ok: int, body: Any = None) -> Any:
    status, _, reply = cloud.call(method, path, token, body)
    if status != ok:
        raise BenchError(f"{method} {path} answered {status}, not {ok}: {reply}")
    return reply


def timed_api(
    cloud: CloudProcess, token: str, method: str, path: str, ok: int, body: Any = None
) -> tuple[float, Any]:
    started = time.perf_counter()
    reply = api(cloud, token, method, path, ok, body)
    return time.perf_counter() - started, reply


def mailbox(cloud: CloudProcess) -> list[dict[str, Any]]:
    """Every email of the local mailbox (JSON); a long timeout, as it may be large."""
    request = urllib.request.Request(  # noqa: S310 - the local cloud's own URL
        f"{cloud.api}/_local/mailbox", headers={"Accept": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310
        found = json.loads(response.read())
    if not isinstance(found, list):
        raise BenchError(f"the mailbox answered {str(found)[:200]}")
    return found


def log_records(cloud: CloudProcess, function: str) -> list[dict[str, Any]]:
    """The JSON log lines of one function (`[crm-<stage>-<function>] {...}`) in crm dev's
    log."""
    found = []
    path = cloud.state_dir / "crm-dev.log"
    for line in path.read_text(errors="replace").splitlines():
        head, _, rest = line.partition("] ")
        if not head.startswith("[") or not head.endswith(f"-{function}"):
            continue
        try:
            record = json.loads(rest)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return found


def log_time(record: dict[str, Any]) -> float | None:
    """A Powertools record's timestamp (`2026-01-02 10:11:12,345+0000`), epoch seconds."""
    stamp = str(record.get("timestamp", ""))
    for form in ("%Y-%m-%d %H:%M:%S,%f%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(stamp, form).timestamp()
        except ValueError:
            continue
    return None


def queue_depths(endpoint: str) -> dict[str, int]:
    """Messages left (visible + in flight + delayed) on the send queue and its DLQ."""
    from infra.aws import boto_client

    sqs = boto_client("sqs", endpoint)
    depths = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        name = url.rsplit("/", 1)[-1]
        if not name.endswith(("-campaign-send", "-campaign-send-dlq")):
            continue
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        depths[name] = sum(int(v) for v in attributes.values())
    return depths


def new_tenant(cloud: CloudProcess) -> tuple[str, str]:
    tenant = f"bench-campaign-{uuid.uuid4().hex[:6]}"
    created = cloud.crm("tenant", "create", tenant)
    if created.returncode != 0:
        raise BenchError(f"crm tenant create: {created.stderr}")
    return tenant, cloud.token(tenant, "admin")


def wait_until_sent(
    cloud: CloudProcess,
    token: str,
    table: Any,
    tenant: str,
    campaign_id: str,
    sent_at: float,
    deadline: float,
) -> tuple[dict[str, Any], Timeline]:
    """Poll the campaign (the API) and its item (for `dispatch_done`) until it ends."""
    from crm_core import keys

    seen = Timeline()
    last_audience, next_progress = -1, sent_at + PROGRESS_SECONDS
    handled = 0
    while True:
        started = time.perf_counter()
        status, campaign = read_campaign(cloud, token, campaign_id)
        probed = time.perf_counter()
        try:
            item = table.get(keys.campaign(tenant, campaign_id), consistent=False) or {}
            seen.get_item_ms.append((time.perf_counter() - probed) * 1000)
        except Exception as error:  # a probe: one that fails is reported, not fatal
            print(f"bench_campaign: GetItem of the campaign failed: {error!r}", file=sys.stderr)
            item = {}
        seen.api_get_ms.append((probed - started) * 1000)
        now = time.monotonic()
        seen.polls += 1
        if seen.dispatch_done is None and item.get("dispatch_done"):
            seen.dispatch_done = now - sent_at
        if status != 200:
            seen.poll_failures += 1
            if seen.poll_failures >= 5:
                raise BenchError(f"GET /campaigns/{campaign_id} answered {status}: {campaign}")
        else:
            seen.poll_failures = 0
            stats = campaign["stats"]
            handled = stats["sent"] + stats["skipped"] + stats["failed"]
            if seen.first_sent is None and stats["sent"] > 0:
                seen.first_sent = now - sent_at
            if stats["audience"] != last_audience:
                last_audience, seen.audience_final = stats["audience"], now - sent_at
            if campaign["state"] in OUTCOMES:
                seen.ended = now - sent_at
                return campaign, seen
            if now > next_progress:
                next_progress = now + PROGRESS_SECONDS
                print(
                    f"bench_campaign: {now - sent_at:6.0f} s: {campaign['state']}, audience "
                    f"{stats['audience']}, handled {handled} (sent {stats['sent']}), "
                    f"{handled / (now - sent_at):.1f}/s",
                    file=sys.stderr,
                    flush=True,
                )
        if now > deadline:
            raise BenchError(
                f"the campaign is not sent after {now - sent_at:.0f} s: {handled} recipients "
                f"handled, {handled / (now - sent_at):.1f}/s; "
                f"{campaign if status == 200 else status}"
            )
        time.sleep(POLL_SECONDS)


def read_campaign(cloud: CloudProcess, token: str, campaign_id: str) -> tuple[int, Any]:
    """GET /campaigns/{id}: (status, body); no answer at all is status 0."""
    try:
        status, _, campaign = cloud.call("GET", f"/campaigns/{campaign_id}", token)
    except OSError as error:
        return 0, repr(error)
    return status, campaign


def wait_for_deliveries(
    cloud: CloudProcess, token: str, campaign_id: str, within: float
) -> tuple[dict[str, Any], float]:
    """The campaign once `delivered == sent` (SES's events come after the sends), or as it
    is after `within` seconds; and the seconds waited."""
    started = time.monotonic()
    failures = 0
    while True:
        status, campaign = read_campaign(cloud, token, campaign_id)
        waited = time.monotonic() - started
        if status != 200:
            failures += 1
            if failures >= 5:
                raise BenchError(f"GET /campaigns/{campaign_id} answered {status}: {campaign}")
        else:
            failures = 0
            stats = campaign["stats"]
            if stats["delivered"] >= stats["sent"] or waited > within:
                return campaign, waited
        time.sleep(POLL_SECONDS)


def skipped_reasons(cloud: CloudProcess, token: str, campaign_id: str) -> Counter[str]:
    reasons: Counter[str] = Counter()
    cursor: str | None = None
    while True:
        path = f"/campaigns/{campaign_id}/recipients?status=skipped&limit=100"
        page = api(cloud, token, "GET", path + (f"&cursor={cursor}" if cursor else ""), 200)
        reasons.update(str(r.get("skip_reason")) for r in page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return reasons


def through_the_cloud(args: argparse.Namespace, cloud: CloudProcess) -> dict[str, Any]:
    from crm_core.table import Table
    from infra.aws import boto_client

    running = cloud.running
    endpoint = running["endpoint_url"]
    (table_name,) = running["tables"]
    table = Table(boto_client("dynamodb", endpoint), table_name)
    tenant, token = new_tenant(cloud)
    before = len(mailbox(cloud))

    seeded = seed_contacts(table, tenant, args.recipients)
    print(
        f"bench_campaign: {args.recipients:,} contacts seeded ({seeded.items:,} items) in "
        f"{seeded.seconds:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    # Its answer is a check of its own: the settings may be saved even if the answer is not.
    settings_status, _, settings_reply = cloud.call(
        "PUT", "/settings/email", token, {"postal_address": POSTAL_ADDRESS}
    )
    if settings_status != 200:
        print(
            f"bench_campaign: PUT /settings/email answered {settings_status}: {settings_reply}",
            file=sys.stderr,
        )
    saved = api(cloud, token, "GET", "/settings/email", 200)
    if saved.get("postal_address") != POSTAL_ADDRESS:
        raise BenchError(f"the email settings were not saved: {saved}")
    segment = api(
        cloud,
        token,
        "POST",
        "/segments",
        201,
        {"name": "Bench newsletter", "filter": {"tags": {"any": [TAG]}}},
    )
    # The preview and the send's answers are checks of their own (reported, not fatal).
    started = time.perf_counter()
    path = f"/segments/{segment['id']}/preview"
    preview_status, _, preview = cloud.call("GET", path, token)
    preview_s = time.perf_counter() - started
    if preview_status != 200:
        print(f"bench_campaign: GET {path} answered {preview_status}", file=sys.stderr)
    campaign = api(
        cloud,
        token,
        "POST",
        "/campaigns",
        201,
        {
            "name": "Bench",
            "segment_id": segment["id"],
            "from_address": send_from(tenant),
            **CONTENT,
        },
    )
    campaign_id = campaign["id"]

    load_before = os.getloadavg()[0]
    deadline = time.monotonic() + args.timeout
    wall_sent_at = time.time()
    sent_at = time.monotonic()
    path = f"/campaigns/{campaign_id}/send"
    send_status, _, sending = cloud.call("POST", path, token)
    send_s = time.monotonic() - sent_at
    via_store = False
    if send_status != 202:
        print(f"bench_campaign: POST {path} answered {send_status}: {sending}", file=sys.stderr)
        if api(cloud, token, "GET", f"/campaigns/{campaign_id}", 200)["state"] != "draft":
            raise BenchError(f"POST {path} answered {send_status} and the campaign is not a draft")
        # What the route does once its checks pass (a draft has no schedule to delete): the
        # pipeline is measured even when the API cannot start it.
        from crm_core.campaigns.campaign_store import CampaignStore
        from crm_core.events.envelope import Origin

        deadline = time.monotonic() + args.timeout
        wall_sent_at = time.time()
        sent_at = time.monotonic()
        CampaignStore(table).send_now(
            tenant, campaign_id, None, Origin.user("bench-campaign", "bench-send")
        )
        via_store = True
        print("bench_campaign: sent through CampaignStore.send_now instead", file=sys.stderr)
    elif sending["state"] != "sending":
        raise BenchError(f"the send answered state {sending['state']}")
    ended, seen = wait_until_sent(cloud, token, table, tenant, campaign_id, sent_at, deadline)
    if ended["state"] != "sent":
        raise BenchError(f"the campaign ended {ended['state']}: {ended.get('state_reason')}")
    load_after = os.getloadavg()[0]
    final, settle_s = wait_for_deliveries(cloud, token, campaign_id, args.settle)

    every_email = mailbox(cloud)
    emails = [
        e for e in every_email if (e.get("headers") or {}).get("X-CRM-Campaign") == campaign_id
    ]
    # Each dispatcher run's last line: its end, or its running out of time (then retried).
    dispatches = [
        r
        for r in log_records(cloud, "campaign-dispatcher")
        if r.get("campaign_id") == campaign_id
        and str(r.get("message", "")).startswith(("dispatch ", "out of time"))
    ]
    sender = [
        r for r in log_records(cloud, "campaign-sender") if r.get("campaign_id") == campaign_id
    ]
    dispatch_end = max((log_time(r) or 0.0 for r in dispatches), default=0.0)
    return {
        "tenant": tenant,
        "campaign_id": campaign_id,
        "settings_status": settings_status,
        "seeded": seeded,
        "preview_s": preview_s,
        "preview_status": preview_status,
        "preview_count": preview.get("count") if preview_status == 200 else None,
        "preview_complete": preview.get("complete") if preview_status == 200 else None,
        "preview_index": preview.get("index") if preview_status == 200 else None,
        "send_post_s": send_s,
        "send_status": send_status,
        "via_store": via_store,
        "seen": seen,
        "ended": ended,
        "final": final,
        "settle_s": settle_s,
        "dispatcher_log_s": dispatch_end - wall_sent_at if dispatch_end else None,
        "dispatches": dispatches,
        "sender_handled": sum(r.get("message") == "message handled" for r in sender),
        "sender_deferred": sum("redelivery" in str(r.get("message")) for r in sender),
        "sender_errors": sum(r.get("level") == "ERROR" for r in sender),
        "sender_stats": _sum_fields(sender),
        "emails": emails,
        "mailbox_new": len(every_email) - before,
        "skipped_reasons": skipped_reasons(cloud, token, campaign_id),
        "queues": queue_depths(endpoint),
        "load": (load_before, load_after),
        "table_items": table.client.describe_table(TableName=table_name)["Table"]["ItemCount"],
        "api": cloud.api,
    }


def _sum_fields(records: list[dict[str, Any]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for record in records:
        if record.get("message") != "message handled":
            continue
        for name in ("sent", "skipped", "failed", "busy", "handled_before", "interrupted"):
            total[name] += int(record.get(name) or 0)
        total["dropped"] += 1 if record.get("dropped") else 0
    return total


def diagnosis(cloud: CloudProcess) -> str:
    """What the campaign functions logged, in short: each dispatcher run's end, the
    sender's messages, and the invocations that failed for good."""
    lines = ["dispatcher runs (time, message, written, enqueued, messages):"]
    for r in log_records(cloud, "campaign-dispatcher"):
        if str(r.get("message", "")).startswith(("dispatch ", "out of time")):
            lines.append(
                f"  {r.get('timestamp')} {r.get('message')}: {r.get('written')}, "
                f"{r.get('enqueued')}, {r.get('messages')}"
            )
    sender = log_records(cloud, "campaign-sender")
    totals = _sum_fields(sender)
    lines.append(
        f"sender: {sum(r.get('message') == 'message handled' for r in sender)} messages "
        f"handled ({dict(totals)}), "
        f"{sum('redelivery' in str(r.get('message')) for r in sender)} waiting for their "
        f"redelivery, {sum('recorded already' in str(r.get('message')) for r in sender)} sends "
        "found recorded already"
    )
    log = (cloud.state_dir / "crm-dev.log").read_text(errors="replace").splitlines()
    gave_up = Counter(line[:160] for line in log if "RetriesExhausted" in line)
    timed_out = Counter(line.split("]")[0] for line in log if "Task timed out" in line)
    lines.append(f"invocations that timed out: {dict(timed_out)}")
    lines += [f"{n} x {line}" for line, n in gave_up.items()]
    return "\n".join(lines)


def run_cloud(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as state:
        cloud = CloudProcess(Path(state))
        cloud.start()
        try:
            return through_the_cloud(args, cloud)
        except BenchError as error:
            print(
                f"bench_campaign: {error}\n\ncrm dev's last lines:\n{cloud.log_tail()}\n\n"
                f"{diagnosis(cloud)}",
                file=sys.stderr,
            )
            sys.exit(1)
        finally:
            cloud.stop()
            if args.keep_log:
                shutil.copyfile(cloud.state_dir / "crm-dev.log", args.keep_log)


# 2. AWS calls per recipient, in-process on moto --------------------------------------------
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
CALLS_TENANT = "bench-calls"
CONFIGURATION_SET = "crm-bench-campaigns"


class Context:
    """What the handlers read of Lambda's context."""

    function_name = "crm-bench"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:crm-bench"
    memory_limit_in_mb = 512
    log_group_name = "/aws/lambda/crm-bench"
    log_stream_name = "bench"

    def __init__(self, remaining_ms: int) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def in_process_environment() -> None:
    """What template.yaml gives the campaign functions, on moto's credentials."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "TABLE_NAME": "crm-bench",
            "STAGE": "bench",
            "POWERTOOLS_SERVICE_NAME": "bench_campaign",
            "POWERTOOLS_METRICS_NAMESPACE": "CRM",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "UNSUBSCRIBE_KEY_ID": "alias/crm-bench-unsubscribe",
            "UNSUBSCRIBE_URL": "https://api.crm.example.com/unsubscribe",
            "SES_CONFIGURATION_SET": CONFIGURATION_SET,
            "SEND_RATE_PER_SECOND": "400",  # the local stage's
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)


def load_function(name: str) -> ModuleType:
    """functions/<name>/app.py, imported as Lambda imports it (its folder first, fresh)."""
    import importlib

    folder = str(ROOT / "functions" / name)
    for module in [
        m for m in sys.modules if m == "app" or m.startswith((f"{name}_api", f"{name}_consumer"))
    ]:
        del sys.modules[module]
    sys.path.insert(0, folder)
    try:
        return importlib.import_module("app")
    finally:
        sys.path.remove(folder)


def load_consumer(name: str) -> SimpleNamespace:
    """A consumer function: its entry (`handler`) and what its cold start made (`context`)."""
    app = load_function(name)
    return SimpleNamespace(handler=app.handler, context=sys.modules[f"{name}_consumer.context"])


def make_resources() -> str:
    """The table, the unsubscribe HMAC key, the verified domain, the configuration set and
    the send queue (with its DLQ), as template.yaml makes them: the queue's URL."""
    import boto3

    from infra.cfn import table_create_kwargs

    boto3.client("dynamodb").create_table(**table_create_kwargs(table_name="crm-bench"))
    kms = boto3.client("kms")
    key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    kms.create_alias(
        AliasName=os.environ["UNSUBSCRIBE_KEY_ID"], TargetKeyId=key["KeyMetadata"]["KeyId"]
    )
    ses = boto3.client("sesv2")
    ses.create_email_identity(EmailIdentity=SEND_DOMAIN)
    ses.create_configuration_set(ConfigurationSetName=CONFIGURATION_SET)
    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="crm-bench-campaign-send-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
    redrive = json.dumps(
        {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": "5"}
    )
    url: str = sqs.create_queue(
        QueueName="crm-bench-campaign-send",
        Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "720"},
    )["QueueUrl"]
    return url


def queued_records(queue_url: str) -> list[dict[str, Any]]:
    """Every message on the send queue, taken off it, as the SQS event source gives them."""
    import boto3

    sqs = boto3.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    queue_arn = arn["Attributes"]["QueueArn"]
    records: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return records
        records += [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in got
        ]


def ses_deliveries(campaign_id: str, seeded: Seeded) -> list[dict[str, Any]]:
    """The SES events of the campaign's emails (as moto kept them), as the default bus
    delivers them to email_events: the local cloud's own (infra/local/mail.py)."""
    from moto.ses.models import ses_backends

    from crm_core.campaigns.messages import campaign_tags
    from infra.local.mail import DETAIL_TYPES, parse_raw, ses_events

    events = []
    for message in ses_backends[ACCOUNT][REGION].sent_messages:
        if not hasattr(message, "raw_data"):
            continue
        mail = parse_raw(message.id, message.raw_data, message.source, list(message.destinations))
        if dict(mail.headers).get("X-CRM-Campaign") != campaign_id:
            continue
        address = mail.destinations[0]
        mail.tags = campaign_tags(CALLS_TENANT, campaign_id, seeded.contact_ids[address])
        resource = f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/{CONFIGURATION_SET}"
        for kind, detail in ses_events(mail, CONFIGURATION_SET):
            events.append(
                {
                    "version": "0",
                    "id": str(uuid.uuid4()),
                    "detail-type": DETAIL_TYPES[kind],
                    "source": "aws.ses",
                    "account": ACCOUNT,
                    "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "region": REGION,
                    "resources": [resource],
                    "detail": detail,
                }
            )
    return events


def campaign_calls(count: int) -> dict[str, Any]:
    """One campaign of `count` recipients through the three functions: each one's AWS
    calls by operation (tests/support/aws_calls.py), and what the campaign counted."""
    from crm_core import keys
    from crm_core.campaigns.campaign_models import CampaignCreate, EmailSettings
    from crm_core.campaigns.campaign_store import CampaignStore, counts
    from crm_core.campaigns.email_settings import EmailSettingsStore
    from crm_core.campaigns.segment_store import SegmentStore
    from crm_core.campaigns.segments import SegmentCreate
    from crm_core.events.envelope import Origin
    from crm_core.pagination import ListQuery
    from tests.support.aws_calls import count_calls
    from tests.support.events import delivered

    os.environ["SEND_QUEUE_URL"] = queue_url = make_resources()
    dispatcher = load_consumer("campaign_dispatcher")
    sender = load_consumer("campaign_sender")
    email_events = load_consumer("email_events")
    table = dispatcher.context.table
    origin = Origin.user("bench-user", "bench")

    seeded = seed_contacts(table, CALLS_TENANT, count)
    segment = SegmentStore(table).create(
        CALLS_TENANT,
        SegmentCreate.model_validate({"name": "Bench", "filter": {"tags": {"any": [TAG]}}}),
        origin,
    )
    EmailSettingsStore(table).put(
        CALLS_TENANT, EmailSettings(postal_address=POSTAL_ADDRESS), None, "bench-user"
    )
    campaigns = CampaignStore(table)
    body = CampaignCreate.model_validate(
        {
            "name": "Bench",
            "segment_id": segment.id,
            "from_address": send_from(CALLS_TENANT),
            **CONTENT,
        }
    )
    campaign_id = str(campaigns.create(CALLS_TENANT, body, origin)["id"])
    campaigns.send_now(CALLS_TENANT, campaign_id, None, origin)
    listing = ListQuery("outbox", keys.campaign_partition(CALLS_TENANT, campaign_id))
    outbox = table.query(listing, 100, None, sort_prefix=keys.OUTBOX_PREFIX).items
    (requested,) = [o for o in outbox if o["detail_type"] == "CampaignSendRequested"]

    found: dict[str, Any] = {"count": count, "seeded": seeded, "calls": {}, "ms": {}}
    started = time.perf_counter()
    with count_calls(dispatcher.context.table.client, dispatcher.context.sqs) as calls:
        outcome = dispatcher.handler(delivered(requested), Context(300_000))
    found["ms"]["campaign_dispatcher"] = (time.perf_counter() - started) * 1000
    found["calls"]["campaign_dispatcher"] = calls.by_operation
    found["dispatch"] = outcome

    records = queued_records(queue_url)
    found["messages"] = len(records)
    sender.context.token_key.secret  # noqa: B018 - the process's one KMS call, made before counting
    failures = 0
    started = time.perf_counter()
    with count_calls(sender.context.table.client, sender.context.sender.ses) as calls:
        for start in range(0, len(records), SENDER_BATCH_SIZE):
            batch = records[start : start + SENDER_BATCH_SIZE]
            response = sender.handler({"Records": batch}, Context(120_000))
            failures += len(response["batchItemFailures"])
    found["ms"]["campaign_sender"] = (time.perf_counter() - started) * 1000
    found["calls"]["campaign_sender"] = calls.by_operation
    found["sender_failures"] = failures

    events = ses_deliveries(campaign_id, seeded)
    found["ses_events"] = Counter(e["detail"]["eventType"] for e in events)
    started = time.perf_counter()
    with count_calls(email_events.context.table.client) as calls:
        for event in events:
            email_events.handler(event, Context(30_000))
    found["ms"]["email_events"] = (time.perf_counter() - started) * 1000
    found["calls"]["email_events"] = calls.by_operation

    item = campaigns.load(CALLS_TENANT, campaign_id)
    found["state"] = item["state"]
    found["counts"] = counts(item)
    return found


def run_calls(args: argparse.Namespace) -> dict[str, Any]:
    in_process_environment()
    from moto import mock_aws

    from infra.local.endpoint import PartitionQueries, quick_transactions

    queries = PartitionQueries()
    queries.install()
    try:
        # Powertools prints a function's metrics whenever one has 100 values, even with
        # metrics disabled: not this report's.
        with mock_aws(), quick_transactions(), contextlib.redirect_stdout(io.StringIO()):
            return campaign_calls(args.calls_recipients)
    finally:
        queries.uninstall()


# Report ------------------------------------------------------------------------------------
@dataclass
class Checks:
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.results.append((name, ok, detail))

    @property
    def failed(self) -> bool:
        return not all(ok for _, ok, _ in self.results)

    def print(self) -> None:
        print("| check | result | found |")
        print("|---|---|---|")
        for name, ok, detail in self.results:
            print(f"| {name} | {'ok' if ok else 'FAILED'} | {detail} |")
        print()


def latency(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return f"{statistics.median(ordered):,.0f} / {p95:,.0f} ms"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def report_cloud(args: argparse.Namespace, found: dict[str, Any], checks: Checks) -> None:
    seeded: Seeded = found["seeded"]
    seen: Timeline = found["seen"]
    stats = found["final"]["stats"]
    emails: list[dict[str, Any]] = found["emails"]
    total = seen.ended or 0.0
    audience = stats["audience"]
    messages = sum(int(r.get("messages") or 0) for r in found["dispatches"])
    enqueued = sum(int(r.get("enqueued") or 0) for r in found["dispatches"])
    computed = math.ceil(audience / GROUP_SIZE)
    sender = found["sender_stats"]
    runs = [
        (r.get("result"), r.get("written"), r.get("enqueued"), r.get("messages"))
        for r in found["dispatches"]
    ]
    print(
        f"A campaign of {args.recipients:,} recipients through the local cloud "
        f"({seeded.mailable:,} mailable, {seeded.not_consented} not consented, "
        f"{seeded.suppressed} suppressed)\n"
    )
    print("| measure | value | how |")
    print("|---|---|---|")
    rows = [
        (
            "seeding",
            f"{seeded.seconds:,.1f} s ({seeded.items:,} items)",
            "BatchWriteItem, 25 items a call",
        ),
        (
            "segment preview",
            f"{found['preview_s']:.2f} s ({found['preview_status']})",
            f"GET /segments/{{id}}/preview's latency (index {found['preview_index']})",
        ),
        (
            "POST /campaigns/{id}/send",
            f"{found['send_post_s']:.2f} s ({found['send_status']})",
            "its latency"
            + (
                "; it failed, so the campaign was sent with CampaignStore.send_now (what the "
                "route does after its checks), and the times below start there"
                if found["via_store"]
                else ""
            ),
        ),
        ("first email sent", f"{seconds(seen.first_sent)} s", "polled: stats.sent > 0"),
        (
            "dispatcher done",
            f"{seconds(found['dispatcher_log_s'])} s",
            "its log line's time (dispatch_done), from the send's POST",
        ),
        (
            "audience counted in full, polled",
            f"{seconds(seen.audience_final)} s",
            "when stats.audience last changed (the dispatcher's last chunk)",
        ),
        (
            "dispatcher done, polled",
            f"{seconds(seen.dispatch_done)} s",
            f"the campaign item's dispatch_done seen (every {POLL_SECONDS:.0f} s)",
        ),
        ("total", f"{total:,.1f} s", "from the send's POST until GET reads `sent`"),
        (
            "recipients per second",
            f"{audience / total:,.1f}" if total else "-",
            "audience / total",
        ),
        (
            "emails per second",
            f"{stats['sent'] / total:,.1f}" if total else "-",
            "sent / total",
        ),
        (
            "SES calls (SendEmail)",
            f"{len(emails):,}",
            f"the campaign's emails in /_local/mailbox ({found['mailbox_new']:,} new in all)",
        ),
        (
            "SQS messages sent",
            f"{messages:,} ({enqueued:,} recipients)",
            f"the dispatcher's log (`messages`, `enqueued`); computed ceil({audience}/"
            f"{GROUP_SIZE}) = {computed}, in ceil(/10) = {math.ceil(messages / 10)} "
            "SendMessageBatch calls",
        ),
        (
            "SQS messages handled",
            f"{found['sender_handled']:,}",
            f"the sender's `message handled` lines ({found['sender_deferred']} deferred, "
            f"{found['sender_errors']} errors)",
        ),
        (
            "GET /campaigns/{id} while sending",
            latency(seen.api_get_ms),
            "p50 / p95 ms of the polls (the API's load)",
        ),
        (
            "DynamoDB GetItem while sending",
            latency(seen.get_item_ms),
            "p50 / p95 ms of the polls' GetItem of the campaign (the endpoint's load)",
        ),
        (
            "deliveries settled",
            f"{found['settle_s']:.1f} s after `sent`",
            "until stats.delivered == stats.sent",
        ),
    ]
    for name, value, how in rows:
        print(f"| {name} | {value} | {how} |")
    print(
        f"\nstats: {', '.join(f'{k} {v}' for k, v in stats.items() if v is not None)}\n"
        f"sender's logged totals: {dict(sender)}; dispatcher runs (result, written, "
        f"enqueued, messages): {runs}"
        f"\n{seen.polls} polls; the campaign went sent at {total:.1f} s; the local table "
        f"held {found['table_items']:,} items at the end; this machine's load average (1 min) "
        f"was {found['load'][0]:.1f} at the send and {found['load'][1]:.1f} when it ended, on "
        f"{os.cpu_count()} CPUs\n"
    )

    addresses = [str(to).rpartition("<")[2].rstrip(">") for e in emails for to in e["to"]]
    mailable = set(seeded.contact_ids) - seeded.not_mailable
    link = f"<{found['api']}/unsubscribe?token="
    headers = [e.get("headers") or {} for e in emails]
    skips = seeded.not_consented + seeded.suppressed
    handled = stats["sent"] + stats["skipped"] + stats["failed"]
    checks.check(
        "PUT /settings/email answers 200",
        found["settings_status"] == 200,
        f"{found['settings_status']} (the settings were saved: GET reads them)",
    )
    checks.check(
        "segment preview answers 200: every contact, or a minimum (its time budget)",
        found["preview_status"] == 200
        and (
            found["preview_count"] == args.recipients
            if found["preview_complete"]
            else 0 < found["preview_count"] <= args.recipients
        ),
        f"{found['preview_status']}, count {found['preview_count']}, "
        f"complete {found['preview_complete']}",
    )
    checks.check(
        "POST /campaigns/{id}/send answers 202",
        found["send_status"] == 202,
        f"{found['send_status']} in {found['send_post_s']:.1f} s",
    )
    checks.check("audience == recipients seeded", audience == args.recipients, f"{audience:,}")
    checks.check("sent + skipped + failed == audience", handled == audience, f"{handled:,}")
    checks.check("skipped == not consented + suppressed", stats["skipped"] == skips, f"{skips}")
    expected_reasons = Counter({"consent": seeded.not_consented, "suppressed": seeded.suppressed})
    checks.check(
        "skip reasons",
        found["skipped_reasons"] == +expected_reasons,
        str(dict(found["skipped_reasons"])),
    )
    checks.check("failed == 0", stats["failed"] == 0, str(stats["failed"]))
    checks.check(
        "delivered == sent", stats["delivered"] == stats["sent"], f"{stats['delivered']:,}"
    )
    checks.check("mailbox emails == sent", len(emails) == stats["sent"], f"{len(emails):,}")
    duplicates = {a: n for a, n in Counter(addresses).items() if n > 1}
    checks.check(
        "each recipient mailed once", not duplicates, f"{len(duplicates)} addresses twice or more"
    )
    checks.check(
        "only mailable contacts mailed",
        set(addresses) == mailable,
        f"{len(set(addresses) - mailable)} unexpected, {len(mailable - set(addresses))} missing",
    )
    checks.check(
        "List-Unsubscribe on every email",
        all(str(h.get("List-Unsubscribe", "")).startswith(link) for h in headers),
        f"{sum(str(h.get('List-Unsubscribe', '')).startswith(link) for h in headers):,}",
    )
    checks.check(
        "List-Unsubscribe-Post on every email",
        all(h.get("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click" for h in headers),
        f"{sum(h.get('List-Unsubscribe-Post') == 'List-Unsubscribe=One-Click' for h in headers):,}",
    )
    # A dispatcher run that is retried (out of time) enqueues again every recipient still
    # queued: more messages than recipients need, which the sender makes harmless.
    checks.check(
        "every recipient enqueued",
        enqueued >= audience,
        f"{enqueued:,} enqueued in {messages} messages by {len(runs)} dispatcher run(s)",
    )
    checks.check(
        "every message handled",
        found["sender_handled"] >= messages,
        f"{found['sender_handled']} of {messages}",
    )
    checks.check(
        "send queue and DLQ empty",
        bool(found["queues"]) and not any(found["queues"].values()),
        str(found["queues"]),
    )


def calls_text(calls: Counter[str], per: int) -> str:
    ops = ", ".join(f"{op} {n / per:.2f}" for op, n in sorted(calls.items()))
    return f"{sum(calls.values()) / per:.2f} ({ops})"


def report_calls(found: dict[str, Any], checks: Checks) -> None:
    count: int = found["count"]
    seeded: Seeded = found["seeded"]
    print(
        f"AWS calls per recipient, in-process on moto: a campaign of {count:,} recipients "
        f"({seeded.mailable:,} mailable), by function and operation\n"
    )
    print("| function | calls | per recipient, by operation | ms in-process |")
    print("|---|---|---|---|")
    total: Counter[str] = Counter()
    for function, calls in found["calls"].items():
        total.update(calls)
        print(
            f"| {function} | {sum(calls.values()):,} | {calls_text(calls, count)} "
            f"| {found['ms'][function]:,.0f} |"
        )
    print(f"| all three | {sum(total.values()):,} | {calls_text(total, count)} | |")
    print(
        f"\n(per recipient of the audience, skipped ones included; the sender's one KMS "
        f"GenerateMac per process is left out; {found['messages']} SQS messages; SES events "
        f"to email_events: {dict(found['ses_events'])})\n"
    )
    counts = found["counts"]
    handled = counts["sent"] + counts["skipped"] + counts["failed"]
    checks.check("in-process: the campaign is sent", found["state"] == "sent", found["state"])
    checks.check(
        "in-process: sent == mailable", counts["sent"] == seeded.mailable, f"{counts['sent']:,}"
    )
    checks.check(
        "in-process: sent + skipped + failed == audience",
        handled == counts["audience"] == count,
        f"{handled:,} of {counts['audience']:,}",
    )
    checks.check(
        "in-process: delivered == sent", counts["delivered"] == counts["sent"], str(counts)
    )
    checks.check(
        "in-process: the sender failed no message",
        found["sender_failures"] == 0,
        str(found["sender_failures"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--calls-recipients", type=int, default=1_000)
    parser.add_argument("--keep-log", type=Path, help="copy crm dev's log here at the end")
    parser.add_argument("--part", choices=("all", "cloud", "calls"), default="all")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds from the send until `sent`"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=None,
        help="seconds for deliveries after `sent` (default: 60, or 0.1 per recipient if more;"
        " the local cloud applies SES events more slowly than it sends)",
    )
    args = parser.parse_args()
    if args.settle is None:
        args.settle = max(60.0, 0.1 * args.recipients)
    if args.recipients < SKIP_EVERY or args.calls_recipients < SKIP_EVERY:
        parser.error(f"at least {SKIP_EVERY} recipients (one in {SKIP_EVERY} is skipped)")
    # The cloud first: the in-process part sets the functions' environment in this process.
    cloud = run_cloud(args) if args.part in ("all", "cloud") else None
    calls = run_calls(args) if args.part in ("all", "calls") else None
    checks = Checks()
    if cloud is not None:
        report_cloud(args, cloud, checks)
    if calls is not None:
        report_calls(calls, checks)
    checks.print()
    if checks.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
