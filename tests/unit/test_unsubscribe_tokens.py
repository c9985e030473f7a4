"""Unsubscribe tokens (crm_core/campaigns/unsubscribe_tokens.py): signed, bound to a tenant
and a contact, valid for a year, and nothing else gets through."""

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

from crm_core.campaigns.unsubscribe_tokens import (
    MAX_TOKEN_CHARS,
    VALID_DAYS,
    InvalidToken,
    TokenKey,
    issue,
    unsubscribe_url,
    verify,
)

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
NOW = 1_800_000_000.0
DAY = 86_400


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _signed(payload: Any, secret: bytes = SECRET) -> str:
    """A token with a correct MAC over any payload (as only the key holder could make)."""
    body = _b64(json.dumps(payload).encode())
    mac = _b64(hmac.new(secret, f"v1.{body}".encode(), hashlib.sha256).digest())
    return f"v1.{body}.{mac}"


def _payload(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


def test_a_token_names_its_tenant_contact_and_campaign() -> None:
    token = issue(SECRET, "acme", "01JBCNTACT0000000000000000", "01JBCAMPAIGN00000000000000", NOW)
    claims = verify(SECRET, token, NOW + 5)
    assert claims.tenant_id == "acme"
    assert claims.contact_id == "01JBCNTACT0000000000000000"
    assert claims.campaign_id == "01JBCAMPAIGN00000000000000"
    assert claims.issued_at == int(NOW)


def test_a_token_without_campaign() -> None:
    claims = verify(SECRET, issue(SECRET, "acme", "c1", None, NOW), NOW)
    assert claims.campaign_id is None


def test_a_token_fits_a_url_as_is() -> None:
    token = issue(SECRET, "acme-corp_1", "c" * 26, "m" * 26, NOW)
    assert quote(token, safe="") == token
    assert len(token) < MAX_TOKEN_CHARS
    assert unsubscribe_url("https://api.example.com/unsubscribe", token) == (
        f"https://api.example.com/unsubscribe?token={token}"
    )


@pytest.mark.parametrize("age_days", [0, 1, 60, 364, VALID_DAYS])
def test_valid_for_a_year(age_days: int) -> None:
    token = issue(SECRET, "acme", "c1", "m1", NOW)
    assert verify(SECRET, token, NOW + age_days * DAY).contact_id == "c1"


@pytest.mark.parametrize("age_days", [VALID_DAYS + 1, 400, 3650])
def test_expired_after_a_year(age_days: int) -> None:
    token = issue(SECRET, "acme", "c1", "m1", NOW)
    with pytest.raises(InvalidToken, match="expired"):
        verify(SECRET, token, NOW + age_days * DAY)


def test_the_default_clock_is_now() -> None:
    assert verify(SECRET, issue(SECRET, "acme", "c1", None)).tenant_id == "acme"
    old = issue(SECRET, "acme", "c1", None, time.time() - (VALID_DAYS + 1) * DAY)
    with pytest.raises(InvalidToken):
        verify(SECRET, old)


def test_a_token_of_another_key_is_refused() -> None:
    with pytest.raises(InvalidToken):
        verify(SECRET, issue(OTHER_SECRET, "acme", "c1", None, NOW), NOW)


@pytest.mark.parametrize(
    "change",
    [
        {"t": "globex"},  # moved to another tenant
        {"c": "someone-else"},  # or another contact
        {"m": "another-campaign"},
        {"i": int(NOW) + 10 * 365 * DAY},  # made younger
    ],
    ids=["tenant", "contact", "campaign", "issued"],
)
def test_an_altered_payload_is_refused(change: dict[str, Any]) -> None:
    token = issue(SECRET, "acme", "c1", "m1", NOW)
    payload = {**_payload(token), **change}
    forged = f"v1.{_b64(json.dumps(payload, separators=(',', ':')).encode())}.{token.split('.')[2]}"
    with pytest.raises(InvalidToken):
        verify(SECRET, forged, NOW)


def test_another_tenants_token_stays_theirs() -> None:
    """A token issued for globex verifies as globex's: the unsubscribe function acts on the
    tenant inside the token, never on anything the request says."""
    theirs = issue(SECRET, "globex", "c1", None, NOW)
    assert verify(SECRET, theirs, NOW).tenant_id == "globex"
    # Nor can the payloads of two tokens be swapped under one MAC.
    mine = issue(SECRET, "acme", "c1", None, NOW)
    swapped = ".".join([*theirs.split(".")[:2], mine.split(".")[2]])
    with pytest.raises(InvalidToken):
        verify(SECRET, swapped, NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1",
        "v1..",
        "v2.e30.e30",
        "v1.e30",
        "v1.e30.e30.e30",
        "x" * (MAX_TOKEN_CHARS + 1),
        "v1.!!!.AAAA",
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        verify(SECRET, token, NOW)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "acme",
        {"t": "acme", "c": "c1", "m": ""},  # no issue time
        {"t": "", "c": "c1", "m": "", "i": int(NOW)},
        {"t": "acme", "c": "", "m": "", "i": int(NOW)},
        {"t": "acme", "c": 7, "m": "", "i": int(NOW)},
        {"t": "acme", "c": "c1", "m": None, "i": int(NOW)},
        {"t": "acme", "c": "c1", "m": "", "i": "yesterday"},
    ],
)
def test_signed_nonsense_is_refused(payload: Any) -> None:
    """Even a payload under a good MAC must have the token's shape."""
    with pytest.raises(InvalidToken):
        verify(SECRET, _signed(payload), NOW)


def test_a_signed_payload_that_is_not_json_is_refused() -> None:
    body = _b64(b"\xff\xfe not json")
    mac = _b64(hmac.new(SECRET, f"v1.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(InvalidToken):
        verify(SECRET, f"v1.{body}.{mac}", NOW)


def test_non_ascii_tokens_are_refused() -> None:
    with pytest.raises(InvalidToken):
        verify(SECRET, "v1.e30.\u00e9", NOW)


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=600))
def test_any_ascii_text_is_a_clean_refusal(text: str) -> None:
    with pytest.raises(InvalidToken):
        verify(SECRET, text, NOW)


@given(
    tenant=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True),
    contact=st.from_regex(r"[0-9A-HJKMNP-TV-Z]{26}", fullmatch=True),
    campaign=st.none() | st.from_regex(r"[0-9A-HJKMNP-TV-Z]{26}", fullmatch=True),
)
def test_round_trip(tenant: str, contact: str, campaign: str | None) -> None:
    claims = verify(SECRET, issue(SECRET, tenant, contact, campaign, NOW), NOW)
    assert (claims.tenant_id, claims.contact_id, claims.campaign_id) == (tenant, contact, campaign)


class FakeKms:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def generate_mac(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        return {"Mac": hashlib.sha256(params["KeyId"].encode() + params["Message"]).digest()}


def test_the_secret_is_derived_once_from_the_kms_key() -> None:
    kms = FakeKms()
    made: list[FakeKms] = []

    def client() -> FakeKms:
        made.append(kms)
        return kms

    key = TokenKey(client, "alias/crm-test-unsubscribe")
    assert made == []  # nothing at construction (cold start)
    first = key.secret
    assert key.secret == first
    assert len(made) == 1
    (call,) = kms.calls
    assert call["KeyId"] == "alias/crm-test-unsubscribe"
    assert call["MacAlgorithm"] == "HMAC_SHA_256"
    other = TokenKey(FakeKms, "alias/another").secret
    assert other != first  # another key, another secret: its tokens do not verify here
    with pytest.raises(InvalidToken):
        verify(first, issue(other, "acme", "c1", None, NOW), NOW)
