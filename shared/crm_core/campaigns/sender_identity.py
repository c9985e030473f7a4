"""Whether a from address may send: is it on an SES identity verified for sending?

SES lets an address send when the address itself, its domain, or a parent domain of it is
a verified identity. Each is asked with SESv2 GetEmailIdentity, most specific first. An
identity counts as verified when `VerifiedForSendingStatus` is true or its
`VerificationStatus` is SUCCESS (moto reports only the latter).

The answers are kept for a few minutes per process: saving or scheduling a campaign asks
again and again about the same one or two domains, and verification changes rarely. A
"no" is kept for a shorter while, so a user who has just verified a domain can retry soon.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from crm_core.clients import client

CACHE_SECONDS = 300.0
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


class SenderIdentities:
    def __init__(
        self,
        make_client: Callable[[], Any] = lambda: client("sesv2"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make_client = make_client
        self._client: Any = None
        self._clock = clock
        self._answers: dict[str, tuple[bool, float]] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def verified(self, address: str) -> bool:
        """True when `address` may send through SES now (as far as a few minutes tell)."""
        return any(self._identity_verified(name) for name in candidates(address))

    def forget(self) -> None:
        self._answers.clear()

    def _identity_verified(self, name: str) -> bool:
        now = self._clock()
        cached = self._answers.get(name)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            answer = is_verified(self.client.get_email_identity(EmailIdentity=name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _NOT_THIS_ONE:
                raise
            answer = False
        self._answers[name] = (answer, now + (CACHE_SECONDS if answer else CACHE_NO_SECONDS))
        return answer
