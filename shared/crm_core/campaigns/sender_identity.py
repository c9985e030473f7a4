"""Whether a from address may send: is it on an SES identity verified for sending, and
for which tenant?

SES lets an address send when the address itself, its domain, or a parent domain of it is
a verified identity. Each is asked with SESv2 GetEmailIdentity, most specific first. An
identity counts as verified when `VerifiedForSendingStatus` is true or its
`VerificationStatus` is SUCCESS (moto reports only the latter). The same answer carries the
identity's tags: ops tag a tenant's own domain or address `crm:tenant_id=<tenant>`
(docs/operations.md), which `sender_rules.py` reads. (moto shows the tags given when the
identity was created, not those of a later TagResource; SES shows both.)

The answers are kept for a few minutes per process: saving or scheduling a campaign asks
again and again about the same one or two domains, and verification changes rarely. A
"no" is kept for a shorter while, so a user who has just verified a domain can retry soon.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from crm_core.clients import client

CACHE_SECONDS = 300.0
# The tag that names the tenant an identity belongs to.
TENANT_TAG = "crm:tenant_id"
CACHE_NO_SECONDS = 30.0
# Asking about an identity this function may not read (the IAM policy names the stage's
# sending domain only) or that does not exist is a "no" for that identity, not an error.
_NOT_THIS_ONE = {"NotFoundException", "AccessDeniedException", "BadRequestException"}


def candidates(address: str) -> list[str]:
    """The identities that would let `address` send, most specific first: the address, its
    domain, then each parent domain (never a bare top-level domain)."""
    local, _, domain = address.strip().lower().rpartition("@")
    if not local or not domain:
        return []
    labels = domain.split(".")
    parents = [".".join(labels[i:]) for i in range(1, len(labels) - 1)]
    return [f"{local}@{domain}", domain, *parents]


def is_verified(identity: dict[str, Any]) -> bool:
    return identity.get("VerifiedForSendingStatus") is True or (
        identity.get("VerificationStatus") == "SUCCESS"
    )


@dataclass(frozen=True)
class Identity:
    """An SES identity verified for sending, and the tenant its tag names (None: untagged)."""

    name: str
    tenant_id: str | None


def tagged_tenant(identity: dict[str, Any]) -> str | None:
    for tag in identity.get("Tags") or []:
        if tag.get("Key") == TENANT_TAG and tag.get("Value"):
            return str(tag["Value"])
    return None


class SenderIdentities:
    def __init__(
        self,
        make_client: Callable[[], Any] = lambda: client("sesv2"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make_client = make_client
        self._client: Any = None
        self._clock = clock
        self._answers: dict[str, tuple[Identity | None, float]] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def verified(self, address: str) -> bool:
        """True when `address` may send through SES now (as far as a few minutes tell)."""
        return self.sending_identity(address) is not None

    def sending_identity(self, address: str) -> Identity | None:
        """The most specific verified identity that lets `address` send (None: none does)."""
        for name in candidates(address):
            found = self.identity(name)
            if found is not None:
                return found
        return None

    def forget(self) -> None:
        self._answers.clear()

    def identity(self, name: str) -> Identity | None:
        """The identity `name` if it exists and is verified for sending."""
        now = self._clock()
        cached = self._answers.get(name)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            raw = self.client.get_email_identity(EmailIdentity=name)
        except ClientError as exc:
            if not _not_this_one(exc):
                raise
            raw = None
        answer = Identity(name, tagged_tenant(raw)) if raw and is_verified(raw) else None
        keep = CACHE_SECONDS if answer is not None else CACHE_NO_SECONDS
        self._answers[name] = (answer, now + keep)
        return answer


def _not_this_one(error: ClientError) -> bool:
    """A refusal that means "no such identity to send from": its code, or an answer that is
    not the service's error at all (a bare 404 or redirect: an address whose local part
    holds a `/` or a `%` names a path the endpoint does not route as an identity)."""
    response = error.response
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _NOT_THIS_ONE or (code.isdigit() and status in _NOT_ROUTED)


_NOT_ROUTED = {301, 302, 307, 308, 404}
