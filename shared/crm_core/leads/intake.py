"""The webhook's work: check a delivery's size, type and signature, then store it.

Checks run cheapest first, and nothing is read or stored for a delivery that fails one:
size (413), media type (415), the signature header's form and time (401), then the source
and its secrets (401, one answer for every way it can fail), then the body (400).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from crm_core import keys
from crm_core.errors import BadRequest, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from crm_core.ids import is_ulid
from crm_core.leads import payload as payloads
from crm_core.leads import signature
from crm_core.leads.models import SourceStatus
from crm_core.leads.secret_box import SecretBox
from crm_core.leads.sources import live_secrets
from crm_core.leads.store import Accepted, LeadStore, Received
from crm_core.table import Table

MAX_BODY_BYTES = 128 * 1024
MAX_EXTERNAL_ID_CHARS = 256
# Where a sender's own id of a lead is looked for when its source maps none.
EXTERNAL_ID_NAMES = ("external_id", "externalId", "submission_id", "submissionId")
# A placeholder secret to sign with when the source is unknown, so that an unknown source
# costs the same HMAC work as a wrong secret.
_NO_SECRET = "whsec_unknown"


class SignatureRefused(Unauthorized):
    type_slug = "bad-signature"


class LeadIntake:
    def __init__(
        self, table: Table, box: SecretBox, clock: Callable[[], float] = time.time
    ) -> None:
        self.table = table
        self.box = box
        self.clock = clock
        self.leads = LeadStore(table)

    def receive(
        self,
        source_id: str,
        headers: dict[str, str],
        body: bytes,
        request_id: str | None = None,
    ) -> Accepted:
        """`headers` with lower-case names; `body` the raw bytes as sent."""
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"a lead's body is limited to {MAX_BODY_BYTES} bytes")
        media = payloads.media_type(headers.get("content-type"))
        if media not in payloads.MEDIA_TYPES:
            raise UnsupportedMediaType("send the lead as application/json or form-encoded")
        try:
            signed = signature.parse(headers.get(signature.HEADER))
            signature.check_time(signed, self.clock())
        except signature.SignatureError as refused:
            raise SignatureRefused(refused.public) from None
        route = self._verified_route(source_id, signed, body)
        try:
            text = body.decode("utf-8")
            parsed = payloads.parse(media, text)
        except UnicodeDecodeError:
            raise BadRequest("the body is not UTF-8") from None
        except payloads.PayloadError as error:
            raise BadRequest(str(error)) from None
        received = Received(
            tenant_id=route["tenant_id"],
            source_id=source_id,
            media_type=media,
            body=text,
            delivery_digest=signature.delivery_digest(signed, body),
            external_id=_external_id(parsed, route.get("external_id_path")),
            request_id=request_id,
        )
        return self.leads.accept(received)

    def _verified_route(
        self, source_id: str, signed: signature.SignedHeader, body: bytes
    ) -> dict[str, Any]:
        route = self.table.get(keys.lead_source_route(source_id)) if is_ulid(source_id) else None
        secrets: list[str] = []
        if route is not None and route.get("status") == SourceStatus.ACTIVE:
            now = datetime.fromtimestamp(self.clock(), UTC)
            tenant_id = route["tenant_id"]
            secrets = [
                self.box.open(tenant_id, source_id, s["sealed"]) for s in live_secrets(route, now)
            ]
        if not signature.matches(signed, secrets or [_NO_SECRET], body) or not secrets:
            raise SignatureRefused(signature.MISMATCH)
        assert route is not None
        return route


def _external_id(parsed: dict[str, Any], path: str | None) -> str | None:
    if path:
        value = payloads.lookup(parsed, path)
    else:
        value = next((parsed[n] for n in EXTERNAL_ID_NAMES if parsed.get(n) is not None), None)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if len(text) > MAX_EXTERNAL_ID_CHARS:
        raise BadRequest(f"external_id is longer than {MAX_EXTERNAL_ID_CHARS} characters")
    return text or None
