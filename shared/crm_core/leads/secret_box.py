"""Lead source secrets, encrypted with the stage's KMS key (decision "Lead source secrets").

A secret is encrypted with an encryption context naming its tenant and source, so a
ciphertext copied onto another source's item does not decrypt. Only ciphertexts are
stored; the webhook keeps decrypted secrets in memory for a few minutes (keyed by their
ciphertext, so a rotation is seen at once), which spares a KMS call on most deliveries.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from typing import Any

SECRET_PREFIX = "whsec_"
_CACHE_SECONDS = 300
_CACHE_ENTRIES = 1024


def new_secret() -> str:
    """256 random bits, URL-safe, with a prefix that secret scanners recognise."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class SecretBox:
    def __init__(self, kms: Callable[[], Any], key_id: str) -> None:
        """`kms` makes the KMS client, on first use: most of the lead_sources function's
        requests (reads) never need it, and loading its service model costs cold-start time."""
        self._make_kms = kms
        self._kms: Any = None
        self.key_id = key_id
        self._plain: dict[str, tuple[float, str]] = {}

    @property
    def kms(self) -> Any:
        if self._kms is None:
            self._kms = self._make_kms()
        return self._kms

    @staticmethod
    def _context(tenant_id: str, source_id: str) -> dict[str, str]:
        return {"tenant_id": tenant_id, "lead_source_id": source_id}

    def seal(self, tenant_id: str, source_id: str, secret: str) -> str:
        response = self.kms.encrypt(
            KeyId=self.key_id,
            Plaintext=secret.encode(),
            EncryptionContext=self._context(tenant_id, source_id),
        )
        return base64.b64encode(response["CiphertextBlob"]).decode()

    def open(self, tenant_id: str, source_id: str, sealed: str) -> str:
        now = time.monotonic()
        # Keyed by context too: a ciphertext copied onto another source must not be served
        # from the cache when KMS would refuse it.
        slot = f"{tenant_id}\n{source_id}\n{sealed}"
        cached = self._plain.get(slot)
        if cached is not None and cached[0] > now:
            return cached[1]
        response = self.kms.decrypt(
            CiphertextBlob=base64.b64decode(sealed),
            EncryptionContext=self._context(tenant_id, source_id),
            KeyId=self.key_id,
        )
        secret: str = response["Plaintext"].decode()
        if len(self._plain) >= _CACHE_ENTRIES:
            self._plain.clear()
        self._plain[slot] = (now + _CACHE_SECONDS, secret)
        return secret
