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
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import ROOT, CloudProcess

SEED = 20261206
BUDGET_SECONDS = 150
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
    status: int
    # A regex searched in "<detail> | <loc>: <msg> | ..." (the problem's detail and each
    # refused field), or in API Gateway's message.
    detail: str
    reason: str


LISTS = (
    r"GET (/campaigns|/companies|/contacts|/lead-sources|/scoring/jobs|/segments|/tasks"
    r"|.*/(contacts|deliveries|recipients|timeline))"
)
ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        "positive_data_acceptance",
        LISTS,
        400,
        r"^the cursor is not valid for this list$",
        "A cursor is opaque: only a `next_cursor` the same list gave is valid. The document "
        "says its alphabet and length; a made-up one of that form is still not a cursor.",
    ),
    Allowed(
        "unsupported_method",
        r".*",
        404,
        r"^Not Found$",
        "API Gateway HTTP APIs answer a method no route has with 404 Not Found (as an "
        "unknown path), before any function runs; it sends no 405 and no Allow header.",
    ),
)


def test_the_api_does_what_its_document_says(cloud: CloudProcess, tmp_path: Path) -> None:
    created = cloud.crm("tenant", "create", TENANT)
    assert created.returncode == 0, created.stderr
    tokens = {role: cloud.token(TENANT, role) for role in set(ROLE_ORDER)}
    report_dir = tmp_path / "report"
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",
        "CRM_FUZZ_TOKENS": json.dumps(tokens),
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "st"),
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
            "2",
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
    print(
        f"schemathesis: {cases['generated']} test cases generated, "
        f"{cases['with_failures']} with failures, {len(ALLOWED)} allowances, "
        f"{elapsed:.0f} s (seed {SEED})"
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
