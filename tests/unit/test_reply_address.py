"""Reply addresses (crm_core/cases/reply_address.py): `<mailbox>+<token>@<domain>` names one
case of one tenant, survives a mail system changing its case, fits RFC 5321's 64-character
local part, and no edit of it verifies."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.cases.reply_address import (
    MAX_LOCAL_PART_CHARS,
    MAX_MAILBOX_CHARS,
    TOKEN_CHARS,
    parse_reply_address,
    reply_address,
)
from crm_core.ids import new_ulid
from tests.unit.strategies import tenant_ids

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
QUEUE = "support@help.acme.example"
TENANT = "acme"
CASE = "01HX7Q8Z3V4W5Y6A7B8C9DEFGH"
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"

# The ULIDs a case id can be: 128 bits, so the first of the 26 characters is 0-7.
case_ids = st.from_regex(r"[0-7][0-9A-HJKMNP-TV-Z]{25}", fullmatch=True)
# Mailbox names a queue may use: RFC 5322 atom characters, dots between atoms.
_ATOM = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789!#$%&'*/=?^_`{|}~-", min_size=1)
mailboxes = st.lists(_ATOM, min_size=1, max_size=4).map(".".join)


def _token(address: str) -> str:
    return address.rpartition("@")[0].rpartition("+")[2]


def _token_of(version: int, case_id: str, tenant_id: str, secret: bytes) -> str:
    """A token as the documented layout makes it, independently of the module: version,
    the ULID's 16 bytes, then 10 bytes of HMAC-SHA256 over a label, the version, the case
    and the tenant; base32, lowercase, unpadded."""
    value = 0
    for char in case_id:
        value = value * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    case_bytes = value.to_bytes(16, "big")
    signed = b"crm case reply address\x00" + bytes([version]) + case_bytes + tenant_id.encode()
    mac = hmac.new(secret, signed, hashlib.sha256).digest()[:10]
    return base64.b32encode(bytes([version]) + case_bytes + mac).decode().rstrip("=").lower()


def _with_token(address: str, token: str) -> str:
    """`address` (a reply address) with another token."""
    local, _, domain = address.rpartition("@")
    return f"{local.rpartition('+')[0]}+{token}@{domain}"


def test_a_reply_address_names_its_queue_and_case() -> None:
    address = reply_address(QUEUE, TENANT, CASE, SECRET)
    assert address.startswith("support+")
    assert address.endswith("@help.acme.example")
    assert parse_reply_address(address, TENANT, SECRET) == (QUEUE, CASE)


def test_the_token_layout() -> None:
    expected = _token_of(1, CASE, TENANT, SECRET)
    assert _token(reply_address(QUEUE, TENANT, CASE, SECRET)) == expected
    assert len(expected) == TOKEN_CHARS == 44


def test_the_token_is_lowercase_base32_and_the_local_part_fits() -> None:
    address = reply_address("a" * MAX_MAILBOX_CHARS + "@acme.example", TENANT, CASE, SECRET)
    token = _token(address)
    assert set(token) <= set(BASE32)
    assert len(address.rpartition("@")[0]) == MAX_LOCAL_PART_CHARS == 64


@pytest.mark.parametrize("change", [str.lower, str.upper, str.swapcase])
def test_a_mail_system_changing_the_case_keeps_it_valid(change: Callable[[str], str]) -> None:
    address = reply_address("Support@Help.Acme.example", TENANT, CASE, SECRET)
    assert parse_reply_address(change(address), TENANT, SECRET) == (QUEUE, CASE)


def test_surrounding_spaces_are_ignored() -> None:
    address = reply_address(QUEUE, TENANT, CASE, SECRET)
    assert parse_reply_address(f"  {address}\r\n", TENANT, SECRET) == (QUEUE, CASE)


def test_every_single_character_change_of_the_token_is_refused() -> None:
    address = reply_address(QUEUE, TENANT, CASE, SECRET)
    token = _token(address)
    for index, char in enumerate(token):
        for other in BASE32:
            if other != char:
                changed = token[:index] + other + token[index + 1 :]
                assert parse_reply_address(_with_token(address, changed), TENANT, SECRET) is None


@given(case_ids, st.data())
def test_a_flipped_character_anywhere_in_the_token_is_refused(
    case_id: str, data: st.DataObject
) -> None:
    address = reply_address(QUEUE, TENANT, case_id, SECRET)
    token = _token(address)
    index = data.draw(st.integers(0, len(token) - 1))
    other = data.draw(st.sampled_from(BASE32).filter(lambda c: c != token[index]))
    changed = token[:index] + other + token[index + 1 :]
    assert parse_reply_address(_with_token(address, changed), TENANT, SECRET) is None


def test_another_tenant_or_secret_is_refused() -> None:
    address = reply_address(QUEUE, TENANT, CASE, SECRET)
    assert parse_reply_address(address, "acme2", SECRET) is None
    assert parse_reply_address(address, "acm", SECRET) is None
    assert parse_reply_address(address, TENANT, OTHER_SECRET) is None
    assert parse_reply_address(address, TENANT, b"") is None


def test_a_token_moved_to_another_case_is_refused() -> None:
    # The case id is readable in the token: put another one in, keeping the MAC.
    other_case = new_ulid()
    address = reply_address(QUEUE, TENANT, CASE, SECRET)
    mine = base64.b32decode(_token(address).upper() + "====")
    theirs = base64.b32decode(
        _token(reply_address(QUEUE, TENANT, other_case, SECRET)).upper() + "===="
    )
    forged = base64.b32encode(theirs[:17] + mine[17:]).decode().rstrip("=").lower()
    assert parse_reply_address(_with_token(address, forged), TENANT, SECRET) is None
    honest = base64.b32encode(theirs).decode().rstrip("=").lower()
    assert parse_reply_address(_with_token(address, honest), TENANT, SECRET) == (QUEUE, other_case)


def test_another_version_byte_is_refused_even_with_a_matching_mac() -> None:
    token = _token_of(2, CASE, TENANT, SECRET)
    assert parse_reply_address(f"support+{token}@help.acme.example", TENANT, SECRET) is None
    token = _token_of(1, CASE, TENANT, SECRET)  # the same, as version 1: accepted
    assert parse_reply_address(f"support+{token}@help.acme.example", TENANT, SECRET) == (
        QUEUE,
        CASE,
    )


@pytest.mark.parametrize(
    "address",
    [
        QUEUE,  # no token
        "support+@help.acme.example",
        "+" + "a" * TOKEN_CHARS + "@help.acme.example",  # no mailbox
        "support+" + "a" * TOKEN_CHARS,  # no domain
        "support+" + "a" * TOKEN_CHARS + "@",
        "support+" + "a" * (TOKEN_CHARS - 1) + "@help.acme.example",  # too short
        "support+" + "a" * (TOKEN_CHARS + 1) + "@help.acme.example",  # too long
        "support+" + "1" * TOKEN_CHARS + "@help.acme.example",  # not base32
        "support+" + "é" * TOKEN_CHARS + "@help.acme.example",
        "support+" + "a" * TOKEN_CHARS + "@help.acme.example",  # base32, wrong MAC
        "",
        "@",
    ],
)
def test_anything_else_is_refused(address: str) -> None:
    assert parse_reply_address(address, TENANT, SECRET) is None


@given(tenant_ids, case_ids, mailboxes)
def test_round_trip(tenant_id: str, case_id: str, mailbox: str) -> None:
    queue_address = f"{mailbox}@help.acme.example"
    if len(mailbox) > MAX_MAILBOX_CHARS:
        with pytest.raises(ValueError, match="longer than 19 characters"):
            reply_address(queue_address, tenant_id, case_id, SECRET)
        return
    address = reply_address(queue_address, tenant_id, case_id, SECRET)
    assert len(address.rpartition("@")[0]) <= MAX_LOCAL_PART_CHARS
    assert parse_reply_address(address, tenant_id, SECRET) == (queue_address.lower(), case_id)
    assert parse_reply_address(address.lower(), tenant_id, SECRET) == (
        queue_address.lower(),
        case_id,
    )
    assert parse_reply_address(address, tenant_id + "x", SECRET) is None


@given(st.integers(1, 40))
def test_mailboxes_up_to_19_characters_are_allowed(length: int) -> None:
    queue_address = "q" * length + "@acme.example"
    if length <= MAX_MAILBOX_CHARS:
        address = reply_address(queue_address, TENANT, CASE, SECRET)
        assert len(address.rpartition("@")[0]) == length + 1 + TOKEN_CHARS <= 64
    else:
        with pytest.raises(ValueError, match="RFC 5321"):
            reply_address(queue_address, TENANT, CASE, SECRET)


@pytest.mark.parametrize(
    ("queue_address", "tenant_id", "case_id", "secret"),
    [
        ("support", TENANT, CASE, SECRET),  # no domain
        ("@acme.example", TENANT, CASE, SECRET),
        ("support@", TENANT, CASE, SECRET),
        ("sup port@acme.example", TENANT, CASE, SECRET),
        ("support@acme.example\r\nBcc: x@y.example", TENANT, CASE, SECRET),
        ("support@acme..example", TENANT, CASE, SECRET),
        (QUEUE, "", CASE, SECRET),
        (QUEUE, TENANT, "not-a-ulid", SECRET),
        (QUEUE, TENANT, CASE.lower(), SECRET),
        (QUEUE, TENANT, "8" + CASE[1:], SECRET),  # past 128 bits
        (QUEUE, TENANT, CASE, b""),
    ],
)
def test_what_cannot_make_a_reply_address_is_refused(
    queue_address: str, tenant_id: str, case_id: str, secret: bytes
) -> None:
    with pytest.raises(ValueError, match=r"not a|needs a"):
        reply_address(queue_address, tenant_id, case_id, secret)


def test_the_largest_ulid_round_trips() -> None:
    largest = "7" + "Z" * 25
    address = reply_address(QUEUE, TENANT, largest, SECRET)
    assert parse_reply_address(address, TENANT, SECRET) == (QUEUE, largest)
