"""A function's cold start on the artifact, as Lambda would run it, and the floor beside it.

Lambda's layout: the function's folder first on `sys.path` (`/var/task`), then the layer's
`python/` (`/opt/python`), then the standard library, nothing else (`-S`), and no bytecode
written (`-B`). Each sample is a fresh interpreter. The floor is what any Python Lambda
that talks to DynamoDB pays: `import boto3` plus one DynamoDB client, from the same layer.
A function's cold start is the import of its handler module, which creates its clients,
Logger, Tracer (X-Ray on, as in Lambda) and Metrics. Used by scripts/bench_cold_start.py
and tests/iac/test_artifact.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from infra.cfn import REPO_ROOT, load_template

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
SAMPLE = REPO_ROOT / "events" / "http" / "authorized-request.json"
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
    "csat": ("GET", "/csat", "", 400),
}
TIMER = """
import time
_t = time.perf_counter()
{code}
print(time.perf_counter() - _t)
"""


def template_env(function: str) -> dict[str, str]:
    """The function's variables from template.yaml, Globals' included; a reference (a bus name, say)
    becomes a stand-in value, as only its presence matters at init (an ARN-shaped one for
    a `..._ARN`, a number for a mapped rate: functions check those shapes at init)."""

    def stand_in(logical: str, name: str) -> str:
        if name.endswith("_ARN"):
            return f"arn:aws:bench:us-east-1:123456789012:{logical}-{name.lower()}"
        if name.endswith("_PER_SECOND"):
            return "10"
        return f"crm-bench-{logical}-{name.lower()}"

    template = load_template()
    shared = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    for logical, resource in template["Resources"].items():
        props = resource.get("Properties") or {}
        if Path(str(props.get("CodeUri", ""))).name == function:
            own = (props.get("Environment") or {}).get("Variables") or {}
            # SAM merges Globals' variables under the function's own, as here.
            variables = {**(shared.get("Variables") or {}), **own}
            return {
                k: v if isinstance(v, str) else stand_in(logical, k) for k, v in variables.items()
            }
    return {}


def source_names() -> dict[str, str]:
    """Logical id -> the function's folder under functions/ (its name in PROBES)."""

    return {
        logical: Path(str(resource["Properties"]["CodeUri"])).name
        for logical, resource in load_template()["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def lambda_env(function: str, task: Path, layer: Path) -> dict[str, str]:
    """The environment Lambda and template.yaml give a function (tracing enabled)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POWERTOOLS_", "AWS_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(template_env(function))
    env.update(
        AWS_LAMBDA_FUNCTION_NAME=f"crm-bench-{function}",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR",
        LAMBDA_TASK_ROOT=str(task),
        TABLE_NAME="crm-bench",
        STAGE="dev",
        POWERTOOLS_SERVICE_NAME=function,
        POWERTOOLS_METRICS_NAMESPACE="CRM",
        PYTHONPATH=os.pathsep.join([str(task), str(layer)]),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def sample(code: str, env: dict[str, str], cwd: Path) -> float:
    """Seconds `code` takes in a fresh interpreter laid out as Lambda's."""
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-S", "-B", "-c", TIMER.format(code=code)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def probe_code(function: str) -> str | None:
    """Init plus the function's probe request, or None for a function without one."""
    probe = PROBES.get(function)
    if probe is None:
        return None
    method, path, body, status = probe
    return FIRST_REQUEST.format(
        sample=str(SAMPLE), method=method, path=path, body=body, status=status
    )
