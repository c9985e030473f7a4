"""Cold-start benchmark: each function's init beside the floor, measured in the same run.

The floor is what any Python Lambda that talks to DynamoDB pays: `import boto3` plus one
DynamoDB client. A function's cold start is the import of its handler module, which
creates its clients, Logger, Tracer (X-Ray on, as in Lambda) and Metrics. Each sample is
a fresh interpreter; floor and function samples alternate so that machine noise hits both.

    python scripts/bench_cold_start.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FLOOR = "import boto3\nboto3.client('dynamodb')"
FUNCTION = "import app"
# Init plus a first request that is answered without AWS (a 422, or the webhook's 401): the
# models and validation paths a request needs are built on first use, so this shows what a
# cold request pays.
FIRST_REQUEST = """
import app, json, pathlib
event = json.loads(pathlib.Path({sample!r}).read_text())
event.update(routeKey="{method} {path}", rawPath="{path}", body={body!r})
event["requestContext"]["http"].update(method="{method}", path="{path}")
event["headers"]["content-type"] = "application/json"
class Context:
    function_name = "bench"; memory_limit_in_mb = 512; aws_request_id = "1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    def get_remaining_time_in_millis(self): return 10000
assert app.handler(event, Context())["statusCode"] == {status}
"""
SAMPLE = ROOT / "events" / "http" / "authorized-request.json"
# Per HTTP function: a request its code refuses before any AWS call, and the status.
PROBES = {
    "contacts": ("POST", "/contacts", '{"first_name": "Ada"}', 422),
    "activities": (
        "POST",
        "/contacts/01ARZ3NDEKTSV4RRFFQ69G5FAV/activities",
        '{"type": "note", "occurred_at": "10:00"}',
        422,
    ),
    "lead_sources": ("POST", "/lead-sources", '{"name": ""}', 422),
    "scoring": ("PUT", "/scoring/model", '{"half_life_days": 0}', 422),
    "campaigns": ("POST", "/segments", '{"name": ""}', 422),
    # Unsigned: refused on the header, before the route is read.
    "lead_webhook": (
        "POST",
        "/webhooks/leads/01ARZ3NDEKTSV4RRFFQ69G5FAV",
        '{"email": "ada@example.com"}',
        401,
    ),
    # No token: refused before the key is asked for the token's secret.
    "unsubscribe": ("GET", "/unsubscribe", "", 400),
}
TIMER = """
import time
_t = time.perf_counter()
{code}
print(time.perf_counter() - _t)
"""


def template_env(function: str) -> dict[str, str]:
    """The function's own variables from template.yaml; a reference (a bus name, say)
    becomes a stand-in value, as only its presence matters at init (an ARN-shaped one for
    a `..._ARN`, a number for a mapped rate: functions check those shapes at init)."""
    from infra.cfn import load_template

    def stand_in(logical: str, name: str) -> str:
        if name.endswith("_ARN"):
            return f"arn:aws:bench:us-east-1:123456789012:{logical}-{name.lower()}"
        if name.endswith("_PER_SECOND"):
            return "10"
        return f"crm-bench-{logical}-{name.lower()}"

    for logical, resource in load_template()["Resources"].items():
        props = resource.get("Properties") or {}
        if Path(str(props.get("CodeUri", ""))).name == function:
            variables = (props.get("Environment") or {}).get("Variables") or {}
            return {
                k: v if isinstance(v, str) else stand_in(logical, k) for k, v in variables.items()
            }
    return {}


def lambda_env(function: str) -> dict[str, str]:
    """The environment Lambda and template.yaml give a function (tracing enabled)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    env.update(template_env(function))
    env.update(
        AWS_LAMBDA_FUNCTION_NAME=f"crm-bench-{function}",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR",
        LAMBDA_TASK_ROOT=str(ROOT / "functions" / function),
        TABLE_NAME="crm-bench",
        STAGE="dev",
        POWERTOOLS_SERVICE_NAME=function,
        POWERTOOLS_METRICS_NAMESPACE="CRM",
        PYTHONPATH=os.pathsep.join([str(ROOT / "functions" / function), str(ROOT / "shared")]),
    )
    return env


def sample(code: str, env: dict[str, str], cwd: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", TIMER.format(code=code)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    functions = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
    print(f"cold start, median of {args.runs} fresh processes each (ms)\n")
    print(
        f"| {'function':<20} | {'cold start':>10} | {'floor':>7} | {'ratio':>5} "
        f"| {'+ 1st request':>13} | {'ratio':>5} |"
    )
    print(f"|{'-' * 22}|{'-' * 12}|{'-' * 9}|{'-' * 7}|{'-' * 15}|{'-' * 7}|")
    worst = 0.0
    for function in functions:
        env = lambda_env(function)
        cwd = ROOT / "functions" / function
        sample(FUNCTION, env, cwd)  # compile .pyc files once, as a deployed package has them
        sample(FLOOR, env, cwd)
        probe = PROBES.get(function)
        first_request = (
            FIRST_REQUEST.format(
                sample=str(SAMPLE), method=probe[0], path=probe[1], body=probe[2], status=probe[3]
            )
            if probe
            else None
        )
        floor, cold, first = [], [], []
        for _ in range(args.runs):
            floor.append(sample(FLOOR, env, cwd))
            cold.append(sample(FUNCTION, env, cwd))
            if first_request:
                first.append(sample(first_request, env, cwd))
        f_ms, c_ms = statistics.median(floor) * 1000, statistics.median(cold) * 1000
        worst = max(worst, c_ms / f_ms)
        r_ms = statistics.median(first) * 1000 if first else float("nan")
        print(
            f"| {function:<20} | {c_ms:>10.0f} | {f_ms:>7.0f} | {c_ms / f_ms:>5.2f} "
            f"| {r_ms:>13.0f} | {r_ms / f_ms:>5.2f} |"
        )
    print(f"\nworst cold-start ratio {worst:.2f} (target <= 1.30)")


if __name__ == "__main__":
    main()
