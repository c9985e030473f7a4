"""Reply addresses: the address a customer answers a case at, which names the case and
cannot be forged.

    <mailbox>+<token>@<domain>      <mailbox>@<domain> is the queue's own address
    token = base32(version || case id || mac), lowercase, no padding
    mac   = HMAC-SHA256(secret, label || version || case id || tenant id)[:10]

Replies reach the right case even when the customer's client drops `In-Reply-To` and
`References` (some do, and a forwarded thread has someone else's): the token names the
case. (SES must receive the token addresses: a receipt rule whose recipient is the queue's
domain matches them, one naming only the queue's exact address may not.)

- The case id (a 26-character ULID) is packed as its 16 bytes, so the token is 27 bytes:
  44 base32 characters. An RFC 5321 local part holds at most 64 characters, so a queue's
  mailbox may have at most 64 - 1 ("+") - 44 = 19 (`MAX_MAILBOX_CHARS`): "support",
  "billing", "help-desk" fit; `reply_address` refuses a longer one.
- Base32 has one case, and mail systems may lowercase a local part on the way: the token
  is lowercase and read case-insensitively (lowercasing base64 would change its bytes).
- The tenant id is not in the token but inside the MAC: the verifier knows the tenant
  from the queue address the message came to, so a token of one tenant's case fails at
  another tenant's queue, and a customer cannot point a reply at a case they were never
  sent by editing the id (80 bits of MAC to guess).
- The version byte lets a later format (or secret) verify old addresses differently.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from crm_core.ids import is_ulid

VERSION = 1
MAC_BYTES = 10
_CASE_ID_BYTES = 16
_TOKEN_BYTES = 1 + _CASE_ID_BYTES + MAC_BYTES
TOKEN_CHARS = -(-_TOKEN_BYTES * 8 // 5)  # 44: base32 without padding
MAX_LOCAL_PART_CHARS = 64  # RFC 5321, 4.5.3.1.1
MAX_MAILBOX_CHARS = MAX_LOCAL_PART_CHARS - 1 - TOKEN_CHARS  # 19
# The label the secret is derived under (signed_tokens.TokenKey): the mailer and the intake.
SECRET_LABEL = b"crm case reply address v1"
# A different secret use must not produce the same MACs (the secret may be derived for
# several purposes from one key).
_LABEL = b"crm case reply address\x00"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_CHARS = 26
# An RFC 5322 dot-atom: what a mailbox can be without quoting.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_MAILBOX_RE = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*$")
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*$")


def reply_address(queue_address: str, tenant_id: str, case_id: str, secret: bytes) -> str:
    """`<mailbox>+<token>@<domain>` for a case of `tenant_id` whose queue receives mail at
    `queue_address`; ValueError for a mailbox over `MAX_MAILBOX_CHARS` or anything that
    cannot make a valid address."""
    mailbox, at, domain = queue_address.strip().rpartition("@")
    if not at or not _MAILBOX_RE.match(mailbox) or not _DOMAIN_RE.match(domain):
        raise ValueError(f"not a queue address: {queue_address!r}")
    if len(mailbox) > MAX_MAILBOX_CHARS:
        raise ValueError(
            f"the mailbox {mailbox!r} is longer than {MAX_MAILBOX_CHARS} characters: with a"
            f" reply token the local part would pass the {MAX_LOCAL_PART_CHARS} of RFC 5321"
        )
    if not tenant_id:
        raise ValueError("a reply address needs a tenant id")
    _require_secret(secret)
    case_bytes = _ulid_bytes(case_id)
    raw = bytes([VERSION]) + case_bytes + _mac(secret, VERSION, case_bytes, tenant_id)
    return f"{mailbox}+{_base32(raw)}@{domain}"


def parse_reply_address(address: str, tenant_id: str, secret: bytes) -> tuple[str, str] | None:
    """`(queue address, case id)` of a reply address issued for `tenant_id`, or None: no
    token, not base32, an unknown version, a wrong MAC, or another tenant's token. The
    queue address is lowercased; the case id is the ULID as issued (uppercase)."""
    mailbox_and_token, at, domain = address.strip().rpartition("@")
    mailbox, plus, token = mailbox_and_token.rpartition("+")
    if not (at and plus and mailbox and domain) or len(token) != TOKEN_CHARS:
        return None
    raw = _unbase32(token)
    # Base32's last character carries spare bits: only the canonical spelling of the
    # bytes is one we issued (another spelling would be a second valid address).
    if raw is None or len(raw) != _TOKEN_BYTES or _base32(raw) != token.lower():
        return None
    if raw[0] != VERSION or not secret:
        return None
    case_bytes, mac = raw[1 : 1 + _CASE_ID_BYTES], raw[1 + _CASE_ID_BYTES :]
    if not hmac.compare_digest(mac, _mac(secret, VERSION, case_bytes, tenant_id)):
        return None
    return f"{mailbox}@{domain}".lower(), _ulid_text(case_bytes)


def _mac(secret: bytes, version: int, case_bytes: bytes, tenant_id: str) -> bytes:
    # The version and case id have fixed widths, so the tenant id can end the input with no
    # separator: no two (case, tenant) pairs sign the same bytes.
    signed = _LABEL + bytes([version]) + case_bytes + tenant_id.encode()
    return hmac.new(secret, signed, hashlib.sha256).digest()[:MAC_BYTES]


def _require_secret(secret: bytes) -> None:
    if not secret:
        raise ValueError("a reply address needs a secret")


def _base32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def _unbase32(text: str) -> bytes | None:
    try:
        return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except ValueError:  # binascii.Error, and non-ASCII text
        return None


def _ulid_bytes(case_id: str) -> bytes:
    """A ULID's 128 bits. Its 26 characters hold 130: one above "7ZZZ..." does not fit."""
    if not is_ulid(case_id):
        raise ValueError(f"not a case id (a ULID): {case_id!r}")
    value = 0
    for char in case_id:
        value = value * 32 + _CROCKFORD.index(char)
    if value >> (8 * _CASE_ID_BYTES):
        raise ValueError(f"not a case id (a ULID past 128 bits): {case_id!r}")
    return value.to_bytes(_CASE_ID_BYTES, "big")


def _ulid_text(case_bytes: bytes) -> str:
    value = int.from_bytes(case_bytes, "big")
    chars = []
    for _ in range(_ULID_CHARS):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))
