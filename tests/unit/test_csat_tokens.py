"""Satisfaction tokens (crm_core/cases/csat_tokens.py): signed, bound to a tenant and a
case, valid for 30 days, under a label of their own, and nothing else gets through."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.campaigns import unsubscribe_tokens
from crm_core.campaigns.unsubscribe_tokens import TokenKey
from crm_core.cases.csat_tokens import (
    LABEL,
    MAX_TOKEN_CHARS,
    VALID_DAYS,
    InvalidToken,
    csat_url,
    issue,
    verify,
)

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
NOW = 1_800_000_000.0
DAY = 86_400
CASE = "01JBCASE000000000000000000"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _signed(payload: Any, secret: bytes = SECRET, version: str = "s1") -> str:
    """A token with a correct MAC over any payload (as only the key holder could make)."""
    body = _b64(json.dumps(payload).encode())
    mac = _b64(hmac.new(secret, f"{version}.{body}".encode(), hashlib.sha256).digest())
    return f"{version}.{body}.{mac}"


def _payload(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


def test_a_token_names_its_tenant_and_case() -> None:
    claims = verify(SECRET, issue(SECRET, "acme", CASE, NOW), NOW + 5)
    assert (claims.tenant_id, claims.case_id, claims.issued_at) == ("acme", CASE, int(NOW))


def test_a_token_fits_a_url_as_is() -> None:
    token = issue(SECRET, "acme-corp_1", "c" * 26, NOW)
    assert quote(token, safe="") == token
    assert len(token) < MAX_TOKEN_CHARS
    assert csat_url("https://api.example.com/csat", token) == (
        f"https://api.example.com/csat?token={token}"
    )


@pytest.mark.parametrize("age_seconds", [0, DAY, 29 * DAY, VALID_DAYS * DAY])
def test_valid_for_30_days(age_seconds: int) -> None:
    assert VALID_DAYS == 30
    token = issue(SECRET, "acme", CASE, NOW)
    assert verify(SECRET, token, NOW + age_seconds).case_id == CASE


@pytest.mark.parametrize("age_seconds", [VALID_DAYS * DAY + 1, 31 * DAY, 365 * DAY])
def test_expired_after_30_days(age_seconds: int) -> None:
    token = issue(SECRET, "acme", CASE, NOW)
    with pytest.raises(InvalidToken, match="expired"):
        verify(SECRET, token, NOW + age_seconds)


def test_the_default_clock_is_now() -> None:
    assert verify(SECRET, issue(SECRET, "acme", CASE)).tenant_id == "acme"
    old = issue(SECRET, "acme", CASE, time.time() - VALID_DAYS * DAY - 1)
    with pytest.raises(InvalidToken, match="expired"):
        verify(SECRET, old)


def test_a_token_of_another_key_is_refused() -> None:
    with pytest.raises(InvalidToken, match="not valid"):
        verify(SECRET, issue(OTHER_SECRET, "acme", CASE, NOW), NOW)


@pytest.mark.parametrize(
    "change",
    [
        {"t": "globex"},  # moved to another tenant
        {"c": "01JBOTHERCASE0000000000000"},  # or another case
        {"i": int(NOW) + 10 * DAY},  # made younger
    ],
    ids=["tenant", "case", "issued"],
)
def test_an_altered_payload_is_refused(change: dict[str, Any]) -> None:
    token = issue(SECRET, "acme", CASE, NOW)
    payload = {**_payload(token), **change}
    forged = f"s1.{_b64(json.dumps(payload, separators=(',', ':')).encode())}.{token.split('.')[2]}"
    with pytest.raises(InvalidToken, match="not valid"):
        verify(SECRET, forged, NOW)


def test_another_tenants_token_stays_theirs() -> None:
    """A token issued for globex verifies as globex's: the csat function acts on the tenant
    inside the token, never on anything the request says."""
    theirs = issue(SECRET, "globex", CASE, NOW)
    assert verify(SECRET, theirs, NOW).tenant_id == "globex"
    # Nor can the payloads of two tokens be swapped under one MAC.
    mine = issue(SECRET, "acme", CASE, NOW)
    swapped = ".".join([*theirs.split(".")[:2], mine.split(".")[2]])
    with pytest.raises(InvalidToken):
        verify(SECRET, swapped, NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "s1",
        "s1..",
        "s2.e30.e30",
        "v1.e30.e30",
        "s1.e30",
        "s1.e30.e30.e30",
        "x" * (MAX_TOKEN_CHARS + 1),
        "s1.!!!.AAAA",
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify(SECRET, token, NOW)


def test_an_over_long_token_is_refused_before_any_mac() -> None:
    good = issue(SECRET, "acme", "c" * (MAX_TOKEN_CHARS), NOW)
    assert len(good) > MAX_TOKEN_CHARS
    with pytest.raises(InvalidToken):
        verify(SECRET, good, NOW)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "acme",
        {"t": "acme", "c": CASE},  # no issue time
        {"t": "", "c": CASE, "i": int(NOW)},
        {"t": "acme", "c": "", "i": int(NOW)},
        {"t": "acme", "c": 7, "i": int(NOW)},
        {"t": None, "c": CASE, "i": int(NOW)},
        {"t": "acme", "c": CASE, "i": "yesterday"},
        {"t": "acme", "c": CASE, "i": float(NOW)},
    ],
)
def test_signed_nonsense_is_refused(payload: Any) -> None:
    """Even a payload under a good MAC must have the token's shape."""
    with pytest.raises(InvalidToken, match="not valid"):
        verify(SECRET, _signed(payload), NOW)


def test_a_signed_payload_that_is_not_json_is_refused() -> None:
    body = _b64(b"\xff\xfe not json")
    mac = _b64(hmac.new(SECRET, f"s1.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(InvalidToken):
        verify(SECRET, f"s1.{body}.{mac}", NOW)


def test_non_ascii_tokens_are_refused() -> None:
    with pytest.raises(InvalidToken):
        verify(SECRET, "s1.e30.\u00e9", NOW)


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=600))
def test_any_ascii_text_is_a_clean_refusal(text: str) -> None:
    with pytest.raises(InvalidToken):
        verify(SECRET, text, NOW)


@given(
    tenant=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True),
    case=st.from_regex(r"[0-9A-HJKMNP-TV-Z]{26}", fullmatch=True),
)
def test_round_trip(tenant: str, case: str) -> None:
    claims = verify(SECRET, issue(SECRET, tenant, case, NOW), NOW)
    assert (claims.tenant_id, claims.case_id) == (tenant, case)


# The key and its label -----------------------------------------------------------------
class FakeKms:
    """GenerateMac as a keyed hash of the key id and the message."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def generate_mac(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        return {"Mac": hashlib.sha256(params["KeyId"].encode() + params["Message"]).digest()}


KEY_ID = "alias/crm-test-unsubscribe"


def test_the_secret_is_the_keys_mac_of_the_csat_label_derived_once() -> None:
    kms = FakeKms()
    key = TokenKey(lambda: kms, KEY_ID, label=LABEL)
    assert kms.calls == []  # nothing at construction (cold start)
    assert key.secret == key.secret
    (call,) = kms.calls
    assert call == {"KeyId": KEY_ID, "Message": LABEL, "MacAlgorithm": "HMAC_SHA_256"}


def test_the_unsubscribe_links_secret_is_another() -> None:
    """One KMS key, two labels: neither use's token is valid for the other."""
    kms = FakeKms()
    csat_secret = TokenKey(lambda: kms, KEY_ID, label=LABEL).secret
    unsubscribe_secret = TokenKey(lambda: kms, KEY_ID).secret
    assert LABEL != b"crm unsubscribe token v1"
    assert csat_secret != unsubscribe_secret
    # A satisfaction-shaped token made with the unsubscribe secret is refused...
    with pytest.raises(InvalidToken, match="not valid"):
        verify(csat_secret, issue(unsubscribe_secret, "acme", CASE, NOW), NOW)
    # ...and so is an unsubscribe token, with either secret.
    unsubscribe = unsubscribe_tokens.issue(unsubscribe_secret, "acme", CASE, None, NOW)
    for secret in (csat_secret, unsubscribe_secret):
        with pytest.raises(InvalidToken):
            verify(secret, unsubscribe, NOW)
    # Nor does a satisfaction token unsubscribe anyone.
    with pytest.raises(unsubscribe_tokens.InvalidToken):
        unsubscribe_tokens.verify(unsubscribe_secret, issue(csat_secret, "acme", CASE, NOW), NOW)
    # Even re-labelled by hand (s1 as v1), the MAC is another use's.
    _, body, mac = issue(csat_secret, "acme", CASE, NOW).split(".")
    with pytest.raises(unsubscribe_tokens.InvalidToken):
        unsubscribe_tokens.verify(csat_secret, f"v1.{body}.{mac}", NOW)


def test_another_key_is_another_secret() -> None:
    mine = TokenKey(FakeKms, KEY_ID, label=LABEL).secret
    other = TokenKey(FakeKms, "alias/another", label=LABEL).secret
    assert mine != other
    with pytest.raises(InvalidToken):
        verify(mine, issue(other, "acme", CASE, NOW), NOW)
