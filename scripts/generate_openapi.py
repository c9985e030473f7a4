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
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "openapi.json"
VERSION = "0.1.0"
DESCRIPTION = (
    "The CRM's HTTP API. Every route needs `Authorization: Bearer <Cognito ID token>` (but "
    "the lead webhook, which is signed with the source's secret instead, and the unsubscribe "
    "and satisfaction links, which carry a signed token); the tenant comes "
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
        # A plain handler (the lead webhook, unsubscribe, csat) describes its routes itself, errors
        # included, in <name>_api/openapi.py (not imported at its cold start).
        described = (folder / f"{name}_api" / "openapi.py").is_file()
        paths = importlib.import_module(f"{name}_api.openapi").OPENAPI_PATHS if described else None
    finally:
        del sys.path[:2]
    if paths is not None:
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
# What API Gateway answers itself, before any function runs: `{"message": ...}` as
# application/json (the JWT authorizer's 401, the 10 MB body limit's 413, its throttling's
# 429), beside the functions' own problem+json.
GATEWAY_MESSAGE = {
    "type": "object",
    "description": "API Gateway's own answer, before any function runs.",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}
_ERRORS = {
    "400": "Malformed JSON, a bad cursor or header",
    "401": "No token, or an invalid or expired one (API Gateway's JWT authorizer answers "
    '`{"message": "Unauthorized"}`), or a token without a valid tenant (problem+json)',
    "403": "Your role does not allow this",
    "404": "No such object in your tenant",
    "409": "Duplicate or conflicting change",
    "412": "If-Match names an older version",
    "413": "Body too large (over 64 KB: problem+json; over API Gateway's 10 MB: its message)",
    "415": "Body is not JSON",
    "422": "Validation failed",
    "429": "Throttled; retry later (by the CRM: problem+json; by API Gateway: its message)",
}
_FROM_THE_GATEWAY = {"401", "413", "429"}
# Header values exactly as the code takes them (crm_core.http.if_match, crm_core.idempotency).
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": 'The ETag read, e.g. "3" (or `*`); a stale one is 412.',
    "schema": {"type": "string", "pattern": '^ *(\\*|(W/)?"[0-9]{1,12}") *$'},
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "1 to 255 visible ASCII characters. The same key and body within 24 h "
    "replays the first response; the same key with another body is 422.",
    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
}
# POSTs that act on an existing object also honour If-Match (the routes read it).
_POSTS_WITH_IF_MATCH = {
    "/campaigns/{campaign_id}/schedule",
    "/campaigns/{campaign_id}/send",
    "/campaigns/{campaign_id}/cancel",
    "/campaigns/{campaign_id}/pause",
    "/campaigns/{campaign_id}/resume",
    "/contacts/{contact_id}/merge",
    "/lead-sources/{source_id}/rotate-secret",
}
# Capabilities, for the document's tags (Swagger UI groups routes by them): the first
# pattern a path matches names its tag.
TAGS: list[tuple[str, str, str]] = [
    (
        r"^/contacts/\{contact_id\}/(activities|timeline)",
        "Activities",
        "A contact's activities and timeline, and tasks.",
    ),
    (r"^/tasks", "Activities", ""),
    (
        r"^/contacts/\{contact_id\}/score",
        "Lead scoring",
        "The scoring model, scores explained, re-score jobs.",
    ),
    (r"^/scoring/", "Lead scoring", ""),
    (r"^/contacts", "Contacts", "People: create, read, change, merge, delete."),
    (r"^/companies", "Companies", "Organizations and their contacts."),
    (
        r"^/lead-sources",
        "Lead sources",
        "Web forms, ad platforms and partners that post "
        "leads, their secrets and deliveries (admin).",
    ),
    (r"^/webhooks/", "Lead webhooks", "Signed lead deliveries (no Cognito token)."),
    (r"^/segments", "Segments", "Named filters of contacts, evaluated when used."),
    (
        r"^/(campaigns|settings/email)",
        "Email campaigns",
        "Campaigns to segments: drafts, "
        "schedules, sends, tests, recipients, and the tenant's email settings.",
    ),
    (
        r"^/(pipelines|deals|forecast|settings/currencies|settings/deals)",
        "Deals",
        "Pipelines, deals and their history, the board, the forecast, and the tenant's currencies.",
    ),
    (
        r"^/(cases|queues|settings/sla)",
        "Support cases",
        "Cases and their conversations, queues and assignment, and the tenant's SLA policy.",
    ),
    (
        r"^/(reports|settings/reports)",
        "Reports",
        "Reports answered from aggregates kept as records change (JSON or CSV), and the "
        "tenant's report settings.",
    ),
    (r"^/unsubscribe", "Unsubscribe", "Signed one-click unsubscribe links (no Cognito token)."),
    (
        r"^/csat",
        "Satisfaction",
        "Signed satisfaction links of solved cases: a score, once (no Cognito token).",
    ),
]


def tag_of(path: str) -> str:
    for pattern, tag, _ in TAGS:
        if re.match(pattern, path):
            return tag
    raise ValueError(f"no tag for {path}: add it to TAGS")


def _problem_content() -> dict[str, Any]:
    return {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def with_problems(operation: dict[str, Any], method: str, path: str) -> None:
    """Our error contract replaces Powertools' default 422 body in the document; a 204 has
    no body; the headers each method honours."""
    responses = operation.setdefault("responses", {})
    for status, description in _ERRORS.items():
        content = _problem_content()
        if status in _FROM_THE_GATEWAY:
            content["application/json"] = {"schema": {"$ref": "#/components/schemas/Gateway"}}
        responses[status] = {"description": description, "content": content}
    if "204" in responses:
        responses["204"].pop("content", None)
    operation["responses"] = dict(sorted(responses.items()))
    headers = []
    if method == "post":
        headers.append(IDEMPOTENCY_KEY)
    if method in ("patch", "put", "delete") or (method == "post" and path in _POSTS_WITH_IF_MATCH):
        headers.append(IF_MATCH)
    if headers:
        operation.setdefault("parameters", []).extend(headers)


def clean_operation_id(operation: dict[str, Any], method: str, path: str) -> None:
    """Powertools names an operation `<function><path>_<method>`; the function's name alone
    is unique in this API and reads better in generated clients."""
    suffix = re.sub(r"\W", "_", path) + "_" + method
    operation_id = str(operation.get("operationId", ""))
    if operation_id.endswith(suffix):
        operation["operationId"] = operation_id.removesuffix(suffix)


def add_links(paths: dict[str, Any]) -> None:
    """OpenAPI links from what creates an object to what reads, changes or deletes it
    (`$response.body#/id`), so clients and fuzzers can follow them."""
    operation_ids = {
        (path, method): op["operationId"]
        for path, ops in paths.items()
        for method, op in ops.items()
    }
    for path, ops in paths.items():
        for method, operation in ops.items():
            for status in ("201", "202"):
                response = operation["responses"].get(status)
                if response is None or method != "post":
                    continue
                links = {}
                # The source's own path parameters carry over (an activity's contact).
                carried = {name: f"$request.path.{name}" for name in re.findall(r"\{(\w+)\}", path)}
                for (target, _), target_id in sorted(operation_ids.items()):
                    child = re.match(re.escape(path) + r"/\{(\w+)\}(/|$)", target)
                    needs = set(re.findall(r"\{(\w+)\}", target))
                    if (
                        child
                        and target_id != operation["operationId"]
                        and needs <= {*carried, child.group(1)}
                    ):
                        links[target_id] = {
                            "operationId": target_id,
                            "parameters": {**carried, child.group(1): "$response.body#/id"},
                        }
                if links:
                    response["links"] = links


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
        "CSAT_KEY_ID": "alias/crm-openapi-unsubscribe",
        "SENDER_DOMAIN": "mail.crm-openapi.example",
        "USER_POOL_ID": "us-east-1_openapi",
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
                    with_problems(operation, method, path)
                    clean_operation_id(operation, method, path)
                operation["tags"] = [tag_of(path)]
            document["paths"].setdefault(path, {}).update(operations)
        document["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
    for powertools_only in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        document["components"]["schemas"].pop(powertools_only, None)
    document["components"]["schemas"]["Problem"] = PROBLEM
    document["components"]["schemas"]["Gateway"] = GATEWAY_MESSAGE
    document["paths"] = dict(sorted(document["paths"].items()))
    add_links(document["paths"])
    tags: dict[str, str] = {}
    for _, tag, description in TAGS:
        tags[tag] = tags.get(tag) or description
    document["tags"] = [{"name": name, "description": text} for name, text in tags.items()]
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
