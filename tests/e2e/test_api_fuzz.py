"""The API does what its OpenAPI document says: schemathesis against the local cloud.

`st run` reads `/openapi.json` from the running cloud and sends what it generates from it
through the local API Gateway (the JWT authorizer included) to every function, with every
check on: no 5xx, every status, content type, header and body as documented, every
schema-valid request accepted and every schema-invalid one refused, undeclared methods,
missing headers, ignored auth, use after delete. Tokens of every role of a tenant of its own
take turns (fuzz_hooks.py). The seed is fixed; the time budget keeps it under 3 minutes.

What the document cannot say is in ALLOWED, each entry with its reason; nothing else is
excused. The run's numbers are printed (pytest -s shows them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import ROOT, CloudProcess

SEED = 20261206
BUDGET_SECONDS = 90  # within the 20 minutes `make test` may take on 2 cores
TENANT = "fuzz"
# Admin every other request: most routes write, and only admins may do everything.
ROLE_ORDER = ("admin", "sales", "admin", "marketing", "admin", "support", "admin", "viewer")
# The checks whose failures an allowance may excuse (fuzz_hooks.py wraps them; the
# built-in ones are then left out of the run).
WRAPPED_CHECKS = ("positive_data_acceptance", "unsupported_method", "use_after_free")


@dataclass(frozen=True)
class Allowed:
    check: str
    operations: str  # a regex on "METHOD /path/{param}"
    status: int | tuple[int, ...]
    # A regex searched in "<detail> | <loc>: <msg> | ..." (the problem's detail and each
    # refused field), or in API Gateway's message.
    detail: str
    reason: str


LISTS = (
    r"GET (/campaigns|/companies|/contacts|/lead-sources|/scoring/jobs|/segments|/tasks"
    r"|/deals|/pipelines|/cases|/queues|.*/(contacts|deliveries|recipients|timeline|history"
    r"|conversation))"
)
ANY = r".*"
ALLOWED: tuple[Allowed, ...] = (
    # What a request names that the document cannot know: state and references.
    Allowed(
        "positive_data_acceptance",
        LISTS,
        400,
        r"^the cursor is not valid for this list$",
        "A cursor is opaque: only a `next_cursor` the same list gave is valid. The document "
        "says its alphabet and length; a made-up one of that form is still not a cursor.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"GET /unsubscribe|POST /unsubscribe",
        400,
        r"This unsubscribe link is not valid",
        "The token is signed by the CRM (an HMAC over tenant, contact and campaign): the "
        "document says its length, not which tokens were issued.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"GET /reports/\{name\}",
        400,
        r"is before `from`|five years",
        "`from` and `to` are each a date; that `to` is not before `from`, and that they "
        "span at most five years, is said in words (OpenAPI cannot relate two parameters).",
    ),
    Allowed(
        "positive_data_acceptance",
        r"GET /csat|POST /csat",
        400,
        r"This satisfaction link is not valid",
        "The token is signed by the CRM (an HMAC over tenant and case): the document says "
        "its length, not which tokens were issued.",
    ),
    Allowed(
        "positive_data_acceptance",
        ANY,
        412,
        r" (is|are) at version \d+, not \d+$",
        "If-Match names a version; which version is current is the object's state.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"POST .*",
        422,
        r"^this Idempotency-Key was used with another request body",
        "An Idempotency-Key already used with another body (generated keys repeat): the "
        "key's earlier use is state, as PRODUCT.md's 422 for it says.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"POST /campaigns|PATCH /campaigns/\{campaign_id\}",
        422,
        r"^the campaign cannot be saved: .*(no segment [0-9A-Z]{26}|not one of your "
        r"tenant's addresses|not on an SES identity|is not tagged for your tenant)",
        "A campaign names a segment of the tenant and an address of its namespace or of an "
        "SES identity tagged for it: which exist is state.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"POST /campaigns/\{campaign_id\}/(send|schedule)",
        422,
        r"^the campaign cannot be (sent|scheduled): ",
        "Whether a campaign can go out now depends on the tenant's email settings, its "
        "sender's identity and its segment's members at that moment: state.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"POST /campaigns/\{campaign_id\}/test",
        422,
        r"^the test email cannot be sent: \S+ may not receive test emails",
        "A test email goes only to a user of the tenant (PRODUCT.md): who they are is state.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"(POST|PATCH) /contacts.*",
        422,
        r"^company_id names no company of yours",
        "company_id must name a company of the tenant: state.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"POST /contacts/\{contact_id\}/merge",
        422,
        r"^(from_id names no contact of yours|a contact cannot be merged into itself)",
        "from_id must name another existing contact: state, and a rule across the path and "
        "the body.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"(POST|PATCH) /contacts/\{contact_id\}/activities.*",
        422,
        r"no such deal",
        "deal_id must name a deal of the tenant: state.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"(POST|PATCH) /deals.*",
        422,
        r"(no such (pipeline|company|contact)|has no stage|no rate from \w+ to \w+|a lost "
        r"reason is one of the tenant's)",
        "A deal names a pipeline, stage, company and contacts of the tenant, in a currency "
        "the tenant has a rate for, lost for one of the tenant's reasons: state.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"(POST|PATCH) /deals.*",
        422,
        r"(has \d digit\(s\) after the point|a lost deal needs a lost reason|only a lost deal "
        r"has a lost reason|a lost reason of `other` needs a note|a contact takes part in a "
        r"deal once|at most one primary contact|moving a deal to another pipeline names its "
        r"stage)",
        "An amount's digits depend on its currency, a lost reason on the stage's kind (a "
        "stage of the body or the stored deal), contacts on each other: rules across fields.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"(POST|PATCH) /pipelines.*",
        422,
        r"(a pipeline has (exactly one won|at least one (lost|open)) stage|each stage has its "
        r"own (id|name)|an? (won|lost) stage (has probability|is in the)|only an open stage "
        r"can rot|only the won stage is in the closed)",
        "A pipeline's stages: one won, a lost and an open one, distinct ids and names, closed "
        "stages certain: rules across the list and each stage's fields.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"PUT /settings/(currencies|deals)",
        422,
        r"(the base currency has no rate|a rate is above 0|a rate has at most 12 significant "
        r"digits|each reason has its own code)",
        "The base has no rate, a rate is above 0 within 12 significant digits, reasons have "
        "distinct codes: rules across fields and digits a pattern cannot count.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"GET /deals",
        400,
        r"^use one filter at a time",
        "GET /deals takes one filter at a time (each is one index): a rule across query "
        "parameters.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"(POST|PATCH) /cases.*",
        422,
        r"(no such (queue|contact|company)|a case cannot move from|a closed case does not "
        r"change|the case is closed|the case has no contact to reply to)",
        "A case names a queue, contact and company of the tenant, moves only as a help desk "
        "allows from its stored status, and a public reply needs the stored case's contact: "
        "state.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"GET /cases",
        400,
        r"^use one filter at a time",
        "GET /cases takes one filter at a time (each is one index): a rule across query "
        "parameters.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"(DELETE|PATCH) /queues/\{queue_id\}|POST /queues",
        409,
        r"(unsolved case|the mailbox '[a-z0-9-]+' is another queue's)",
        "A queue holding unsolved cases is not deleted, and a mailbox is one queue's: state.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"PUT /settings/sla",
        422,
        r"(an interval ends after it starts|a day's intervals do not overlap|business hours "
        r"need an open day)",
        "A day's intervals in order and apart, and some open day: rules across a list.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"GET /forecast",
        400,
        r"^(a forecast covers at most 36 months|`to` is before `from`)$",
        "A forecast's range in order and at most 36 months: a rule across query parameters.",
    ),
    # Rules across fields, which JSON Schema cannot state (the descriptions do).
    Allowed(
        "positive_data_acceptance",
        r"GET /contacts",
        400,
        r"^(use one filter at a time|(min_score|sort=-score) needs lifecycle_stage)",
        "GET /contacts takes one filter at a time (each is one index): a rule across "
        "query parameters.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"GET /contacts/\{contact_id\}/timeline|GET /tasks",
        400,
        r"^(since must be before until|due_after must be before due_before)$",
        "A window's start before its end: a rule across query parameters.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"(POST|PATCH) /segments.*",
        422,
        r"Value error, (created_after is not before created_before|min_score is above "
        r"max_score|a tag cannot be in all and none)",
        "A filter's bounds in order, and no tag both required and excluded: rules across fields.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"PUT /scoring/model",
        422,
        r"thresholds: Value error, the sql threshold must be above the mql threshold",
        "The sql threshold above the mql one: a rule across fields.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"(POST|PATCH) /contacts/\{contact_id\}/activities.*",
        422,
        r"Value error, (ends_at must be after starts_at|a meeting lasts at most 7 days)",
        "A meeting ends after it starts, within 7 days: a rule across fields.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"PATCH /contacts/\{contact_id\}",
        422,
        r"^a contact needs an email or a phone",
        "A contact keeps an email or a phone: a rule across the patch and the stored contact.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"PATCH /contacts/\{contact_id\}/activities/\{activity_id\}",
        422,
        r" do(es)? not apply to an? \w+",
        "Which fields an activity has depends on its stored type (a call has no assignee): "
        "the patch's schema is the union of the types' fields.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"PUT /scoring/model",
        422,
        r"Value error, (an? \w+ has no \w+ to test|\w+ is one of |caps bound points earned|"
        r"cap_per_day cannot exceed cap_total|rule ids must be unique)",
        "A behaviour rule's conditions depend on its activity type, its caps on its points "
        "and each other, and rule ids are unique across both lists: rules across fields.",
    ),
    # Time and the calendar.
    Allowed(
        "positive_data_acceptance",
        ANY,
        422,
        r"(day value is outside expected range|the time must be between 1970-01-01T00:00:00Z "
        r"and 9999-12-31T23:59:59Z \(in UTC\)|\d{4}-\d\d-\d\d is not a date)",
        "A date-time's pattern bounds each part and the year, not the calendar (February "
        "30th) nor an offset that moves the first or last day of the range outside it.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"(POST|PATCH) /contacts/\{contact_id\}/activities.*",
        422,
        r"Value error, occurred_at is in the future",
        "An activity has happened (occurred_at at most 5 minutes ahead of the CRM's clock): a "
        "bound that moves with the clock.",
    ),
    Allowed(
        "positive_data_acceptance",
        r"POST /campaigns/\{campaign_id\}/schedule",
        422,
        r"send_at: .*(is not in the future|at most a year ahead)",
        "A schedule is in the future and at most a year ahead: a bound that moves with the clock.",
    ),
    # Methods, and what DELETE of a lead source keeps.
    Allowed(
        "use_after_free",
        r"\w+ /lead-sources/\{source_id\}.*",
        (200, 204, 409),
        r"",
        "DELETE of a lead source disables it (`status: disabled`, its webhook answers 401) "
        "and keeps it, as the document says: it stays readable with its deliveries log and "
        "editable, a second DELETE is a 204, a new secret a 409.",
    ),
    Allowed(
        "unsupported_method",
        ANY,
        404,
        r"^Not Found$",
        "API Gateway HTTP APIs answer a method no route has with 404 Not Found (as an "
        "unknown path), before any function runs; it sends no 405 and no Allow header.",
    ),
)
# The stateful phase follows the document's links only: schemathesis's inferred ones read
# ids out of bodies that hold none (it sent `/campaigns/None/send`).
# A body over 64 KiB is refused with the documented 413 before it is parsed: for a
# schema-violating body (a 100,001-character `text`) that is a refusal like the 422 it
# would otherwise get. schemathesis's own list of refusals lacks 413.
CONFIG = """
[phases.stateful.inference]
algorithms = []

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
    "428", "429", "5xx"]
"""


def test_the_api_does_what_its_document_says(cloud: CloudProcess, tmp_path: Path) -> None:
    created = cloud.crm("tenant", "create", TENANT)
    assert created.returncode == 0, created.stderr
    tokens = {role: cloud.token(TENANT, role) for role in set(ROLE_ORDER)}
    fixtures = _fixtures(cloud, tokens["admin"])
    report_dir = tmp_path / "report"
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",
        "CRM_FUZZ_TOKENS": json.dumps(tokens),
        "CRM_FUZZ_FIXTURES": json.dumps(fixtures),
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }
    log = cloud.state_dir / "crm-dev.log"
    log_start = log.stat().st_size
    started = time.monotonic()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
            "--config-file",
            str(config),
            "run",
            f"{cloud.api}/openapi.json",
            "--seed",
            str(SEED),
            "--max-time",
            str(BUDGET_SECONDS),
            "--checks",
            "all",
            "--exclude-checks",
            ",".join(WRAPPED_CHECKS),
            "--workers",
            "1",
            "--report",
            "json",
            "--report-dir",
            str(report_dir),
        ],
        cwd=tmp_path,  # its cache folder goes there, not into the repository
        env=env,
        capture_output=True,
        text=True,
        timeout=BUDGET_SECONDS + 120,
        check=False,
    )
    elapsed = time.monotonic() - started
    report = json.loads(next(report_dir.glob("*.json")).read_text())
    cases = report["test_cases"]
    statuses = _statuses(log, log_start)
    print(
        f"schemathesis: {cases['generated']} test cases generated, {sum(statuses.values())} "
        f"requests through the local API Gateway ({_by_class(statuses)}), "
        f"{cases['with_failures']} with failures, {len(ALLOWED)} allowances, "
        f"{elapsed:.0f} s (seed {SEED})"
    )
    assert not any(status >= 500 for status in statuses), statuses
    # Generated bodies can be 100 KB of one letter: runs are shortened so the failure shows.
    shown = re.sub(r"(.)\1{79,}", lambda run: f"{run[1] * 8}...({len(run[0])})", result.stdout)
    assert result.returncode == 0, shown[-20000:] + result.stderr[-5000:]


def _fixtures(cloud: CloudProcess, admin: str) -> dict[str, str]:
    """A contact, a segment of everyone and the email settings of the fuzz tenant, and its
    sender address on the local cloud's shared domain (template.yaml's SenderDomain)."""
    for path, body in (
        ("/contacts", {"email": "ada@fuzz.example.com", "email_consent": "subscribed"}),
        ("/segments", {"name": "Everyone"}),
    ):
        status, _, created = cloud.call("POST", path, admin, body)
        assert status == 201, created
    segment_id = str(created["id"])
    status, _, settings = cloud.call(
        "PUT", "/settings/email", admin, {"postal_address": "1 Main Street, Springfield"}
    )
    assert status == 200, settings
    return {
        "segment_id": segment_id,
        "sender": f"{TENANT}.news@example.com",
        "teammate": f"marketing@{TENANT}.example.com",
    }


_GATEWAY_LINE = re.compile(r"\b[A-Z]{3,8} /\S* ([1-5][0-9]{2}) [0-9]+ms")


def _statuses(log: Path, start: int) -> Counter[int]:
    """The statuses the local API Gateway answered since `start` (its one line per request)."""
    with log.open("rb") as lines:
        lines.seek(start)
        text = lines.read().decode("utf-8", "replace")
    return Counter(int(found.group(1)) for found in _GATEWAY_LINE.finditer(text))


def _by_class(statuses: Counter[int]) -> str:
    classes = Counter(f"{status // 100}xx" for status in statuses.elements())
    return ", ".join(f"{name}: {count}" for name, count in sorted(classes.items()))
