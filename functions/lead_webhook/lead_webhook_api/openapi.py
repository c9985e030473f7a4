"""The lead webhook's part of the API's OpenAPI document (scripts/generate_openapi.py): the
function has no resolver to describe it."""

from __future__ import annotations

from typing import Any


def _refusal(description: str) -> dict[str, Any]:
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {"description": description, "content": {"application/problem+json": problem}}


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
