"""The lead_webhook function: `POST /webhooks/leads/{source_id}`, with no authorizer.

It verifies the delivery's signature itself (crm_core/leads/intake.py), stores the raw
payload with its LeadReceived event in one write, and answers `202 {"lead_id"}`. It is a
plain handler, not a Powertools resolver: one route needs no router, and the resolver's
imports would add to every cold start a sender waits for.
"""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

import base64  # noqa: E402
import binascii  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from typing import Any  # noqa: E402

from aws_lambda_powertools.logging import correlation_paths  # noqa: E402
from aws_lambda_powertools.metrics import MetricUnit  # noqa: E402
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from crm_core.clients import client  # noqa: E402
from crm_core.errors import BadRequest, CrmError  # noqa: E402
from crm_core.leads.intake import LeadIntake  # noqa: E402
from crm_core.leads.secret_box import SecretBox  # noqa: E402
from crm_core.runtime import function_runtime  # noqa: E402

logger, tracer, metrics, settings, table = function_runtime()
intake = LeadIntake(table, SecretBox(lambda: client("kms"), os.environ["LEAD_SECRETS_KEY_ID"]))

gc.enable()
gc.freeze()


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    source_id = str((event.get("pathParameters") or {}).get("source_id", ""))[:64]
    logger.append_keys(source_id=source_id)
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    request_id = (event.get("requestContext") or {}).get("requestId")
    try:
        accepted = intake.receive(source_id, headers, _raw_body(event), request_id)
    except CrmError as refused:
        # Never the body or the signature: only why, as the sender is told.
        logger.warning(
            "lead delivery refused", extra={"status": refused.status, "reason": refused.detail}
        )
        metrics.add_metric(name="LeadDeliveryRefused", unit=MetricUnit.Count, value=1)
        return _problem(refused.status, refused.title, refused.detail, refused.type_uri)
    except Exception:
        # A 5xx tells the sender to retry: the lead is not lost, only not yet taken.
        logger.exception("lead delivery failed")
        metrics.add_metric(name="LeadDeliveryFailed", unit=MetricUnit.Count, value=1)
        return _problem(
            500,
            "Internal error",
            "the lead was not stored; retry",
            "https://crm.dev/problems/internal",
        )
    logger.info("lead accepted", extra={"lead_id": accepted.lead_id, "replayed": accepted.replayed})
    metrics.add_metric(
        name="LeadDeliveryReplayed" if accepted.replayed else "LeadAccepted",
        unit=MetricUnit.Count,
        value=1,
    )
    return {
        "statusCode": 202,
        "headers": {
            "Content-Type": "application/json",
            "Idempotent-Replayed": "true" if accepted.replayed else "false",
        },
        "body": json.dumps({"lead_id": accepted.lead_id}),
        "isBase64Encoded": False,
    }


def _raw_body(event: dict[str, Any]) -> bytes:
    """The body's bytes exactly as sent: the signature covers them, not a re-encoding."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("the body is not valid base64") from None
    return str(body).encode("utf-8")


def _problem(status: int, title: str, detail: str, type_uri: str) -> dict[str, Any]:
    body = {"type": type_uri, "title": title, "status": status, "detail": detail}
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/problem+json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _refusal(description: str) -> dict[str, Any]:
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {"description": description, "content": {"application/problem+json": problem}}


# This route's part of the API's OpenAPI document (scripts/generate_openapi.py): the
# function has no resolver to describe it.
OPENAPI_PATHS: dict[str, Any] = {
    "/webhooks/leads/{source_id}": {
        "post": {
            "summary": "Deliver a lead, signed with the source's secret (no token)",
            "description": (
                "`Crm-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "
                '"<t>.<raw body>")>`; the timestamp must be within 300 s of the current '
                "time. The body is a JSON object or form fields, at most 131072 bytes. The "
                "same delivery again (the same body and timestamp, or the same "
                "`external_id`) answers the first lead's id and stores nothing new."
            ),
            "operationId": "deliver_lead",
            "security": [],
            "parameters": [
                {
                    "name": "source_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "The lead source's id.",
                },
                {
                    "name": "Crm-Signature",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 1024},
                    "description": "t=<unix seconds>,v1=<hex HMAC-SHA256>",
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                },
            },
            "responses": {
                "202": {
                    "description": "Stored; it is processed in the background",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["lead_id"],
                                "properties": {"lead_id": {"type": "string"}},
                            }
                        }
                    },
                },
                "400": _refusal("The body is empty, not UTF-8, or not a JSON object / form"),
                "401": _refusal("The signature is missing, malformed, too old or wrong"),
                "413": _refusal("The body is larger than 131072 bytes"),
                "415": _refusal("The body is neither JSON nor form-encoded"),
            },
        }
    }
}
