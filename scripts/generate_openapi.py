"""Write the API's OpenAPI 3.1 document, generated from the functions' own routes and models.

    python scripts/generate_openapi.py          # writes docs/openapi.json
    python scripts/generate_openapi.py --check  # exits 1 if the committed file is stale

Each HTTP function's resolver describes its routes (Powertools, enable_validation=True);
the documents are merged into one, as clients see one API.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "openapi.json"
VERSION = "0.1.0"
DESCRIPTION = (
    "The CRM's HTTP API. Every route needs `Authorization: Bearer <Cognito ID token>` (but "
    "the lead webhook, which is signed with the source's secret instead, and the unsubscribe "
    "link, which carries a signed token); the tenant comes "
    "from the token's `custom:tenant_id` claim. Errors are `application/problem+json` "
    "(RFC 9457)."
)


def http_functions() -> list[str]:
    """The function folders with HTTP API routes in template.yaml (others are not imported:
    their environment, a bus name say, is not the API's business)."""
    from infra.cfn import load_template

    names = []
    for resource in load_template()["Resources"].values():
        props = resource.get("Properties") or {}
        events = (props.get("Events") or {}).values()
        if resource.get("Type") == "AWS::Serverless::Function" and any(
            e.get("Type") == "HttpApi" for e in events
        ):
            names.append(Path(str(props["CodeUri"])).name)
    return sorted(names)


def function_document(name: str) -> dict[str, Any] | None:
    """The OpenAPI document of one function, or None if it serves no HTTP routes."""
    folder = ROOT / "functions" / name
    sys.path[:0] = [str(folder), str(ROOT / "shared")]
    try:
        for loaded in [m for m in sys.modules if m == "app" or m.startswith(f"{name}_api")]:
            del sys.modules[loaded]
        module = importlib.import_module("app")
    finally:
        del sys.path[:2]
    paths = getattr(module, "OPENAPI_PATHS", None)
    if paths is not None:
        # A plain handler (the lead webhook) describes its route itself, errors included.
        return {"paths": paths, "described": True}
    app = getattr(module, "app", None)
    if app is None or not hasattr(app, "get_openapi_json_schema"):
        return None
    document: dict[str, Any] = json.loads(app.get_openapi_json_schema(title="CRM", version=VERSION))
    return document


PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details; `errors` lists the fields a 422 refused.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}
_ERRORS = {
    "400": "Malformed JSON, a bad cursor or header",
    "401": "No token, or a token without a valid tenant",
    "403": "Your role does not allow this",
    "404": "No such object in your tenant",
    "409": "Duplicate or conflicting change",
    "412": "If-Match names an older version",
    "413": "Body too large",
    "415": "Body is not JSON",
    "422": "Validation failed",
    "429": "Throttled; retry later",
}
_HEADERS = {
    "post": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Replays the first response for the same key and body within 24 h.",
        "schema": {"type": "string", "maxLength": 255},
    },
    "patch": {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": 'The ETag read, e.g. "3"; a stale one is 412.',
        "schema": {"type": "string"},
    },
}
_HEADERS["delete"] = _HEADERS["put"] = _HEADERS["patch"]


def with_problems(operation: dict[str, Any], method: str) -> None:
    """Our error contract replaces Powertools' default 422 body in the document."""
    responses = operation.setdefault("responses", {})
    for status, description in _ERRORS.items():
        responses[status] = {
            "description": description,
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
    operation["responses"] = dict(sorted(responses.items()))
    if method in _HEADERS:
        operation.setdefault("parameters", []).append(_HEADERS[method])


def merged_document() -> dict[str, Any]:
    os.environ.setdefault("TABLE_NAME", "crm-openapi")
    os.environ.setdefault("STAGE", "dev")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("LEAD_SECRETS_KEY_ID", "alias/crm-openapi-lead-secrets")
    # The campaign functions' environment: only its shape matters to the document.
    for name, value in {
        "SCHEDULE_GROUP": "crm-openapi-campaigns",
        "DISPATCHER_ARN": "arn:aws:lambda:us-east-1:123456789012:function:crm-openapi-dispatcher",
        "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/crm-openapi-scheduler",
        "DISPATCHER_DLQ_ARN": "arn:aws:sqs:us-east-1:123456789012:crm-openapi-dispatcher-dlq",
        "SES_CONFIGURATION_SET": "crm-openapi-campaigns",
        "UNSUBSCRIBE_KEY_ID": "alias/crm-openapi-unsubscribe",
    }.items():
        os.environ.setdefault(name, value)
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "CRM", "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {
            "schemas": {},
            "securitySchemes": {
                "cognito": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"cognito": []}],
    }
    for name in http_functions():
        part = function_document(name)
        if part is None:
            continue
        for path, operations in part.get("paths", {}).items():
            for method, operation in operations.items():
                if not part.get("described"):
                    with_problems(operation, method)
            document["paths"].setdefault(path, {}).update(operations)
        document["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
    for powertools_only in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        document["components"]["schemas"].pop(powertools_only, None)
    document["components"]["schemas"]["Problem"] = PROBLEM
    document["paths"] = dict(sorted(document["paths"].items()))
    document["components"]["schemas"] = dict(sorted(document["components"]["schemas"].items()))
    return document


def render() -> str:
    return json.dumps(merged_document(), indent=2, sort_keys=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/openapi.json is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run `make openapi`")
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
