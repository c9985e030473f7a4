"""Lead sources and signed deliveries, for tests."""

from __future__ import annotations

import json
import time
from typing import Any

from crm_core.leads import signature
from tests.support.api import Api, Reply, User, template_routes

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


class Webhook:
    """Posts deliveries to the webhook handler as API Gateway would (no authorizer)."""

    def __init__(self, handler: Any) -> None:
        self.api = Api(handler, template_routes("LeadWebhookFunction"))

    def post(
        self,
        source_id: str,
        body: bytes | str | dict[str, Any],
        secret: str | None,
        *,
        timestamp: int | None = None,
        content_type: str = JSON,
        header: str | None = None,
        base64_body: bool = False,
    ) -> Reply:
        raw = _bytes(body)
        t = int(time.time()) if timestamp is None else timestamp
        headers = {"content-type": content_type}
        if header is not None:
            headers[signature.HEADER] = header
        elif secret is not None:
            headers[signature.HEADER] = signature.header(secret, t, raw)
        event = self.api.event("POST", f"/webhooks/leads/{source_id}", None, headers=headers)
        if base64_body:
            import base64

            event["body"] = base64.b64encode(raw).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = raw.decode()
        return self.api.send(event)


def _bytes(body: bytes | str | dict[str, Any]) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def create_source(lead_api: Api, user: User, **fields: Any) -> dict[str, Any]:
    reply = lead_api.call("POST", "/lead-sources", user, {"name": "Website", **fields})
    assert reply.status == 201, reply.text
    source: dict[str, Any] = reply.json
    return source
