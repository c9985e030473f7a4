"""One delivery: verified and stored by crm_core/leads/intake.py, answered `202 {"lead_id"}`
or problem+json (crm_core/problems.py)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from crm_core.errors import BadRequest, CrmError
from crm_core.problems import lambda_reply, problem_reply
from lead_webhook_api.context import intake, logger, metrics


def deliver(event: dict[str, Any]) -> dict[str, Any]:
    source_id = str((event.get("pathParameters") or {}).get("source_id", ""))[:64]
    logger.append_keys(source_id=source_id)
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    request_id = (event.get("requestContext") or {}).get("requestId")
    try:
        accepted = intake.receive(source_id, headers, raw_body(event), request_id)
    except CrmError as refused:
        # Never the body or the signature: only why, as the sender is told.
        logger.warning(
            "lead delivery refused", extra={"status": refused.status, "reason": refused.detail}
        )
        metrics.add_metric(name="LeadDeliveryRefused", unit=MetricUnit.Count, value=1)
        return problem_reply(refused.status, refused.title, refused.detail, refused.type_slug)
    except Exception:
        # A 5xx tells the sender to retry: the lead is not lost, only not yet taken.
        logger.exception("lead delivery failed")
        metrics.add_metric(name="LeadDeliveryFailed", unit=MetricUnit.Count, value=1)
        return problem_reply(500, "Internal error", "the lead was not stored; retry", "internal")
    logger.info("lead accepted", extra={"lead_id": accepted.lead_id, "replayed": accepted.replayed})
    metrics.add_metric(
        name="LeadDeliveryReplayed" if accepted.replayed else "LeadAccepted",
        unit=MetricUnit.Count,
        value=1,
    )
    replayed = {"Idempotent-Replayed": "true" if accepted.replayed else "false"}
    body = json.dumps({"lead_id": accepted.lead_id})
    return lambda_reply(202, body, "application/json", replayed)


def raw_body(event: dict[str, Any]) -> bytes:
    """The body's bytes exactly as sent: the signature covers them, not a re-encoding."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("the body is not valid base64") from None
    return str(body).encode("utf-8")
