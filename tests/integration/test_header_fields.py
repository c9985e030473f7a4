"""What reaches a mail header is one line: a campaign's `from_name` or the tenant's
`company_name` with a line break (or any control character) is refused when saved, with
nothing stored. Saved, it would break every send of the campaign until the dead-letter
queue, leaving the campaign `sending` for good."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.support.api import Api, User
from tests.support.checks import assert_problem, table_items

ADMIN = User("acme", ("admin",))
SENDER_DOMAIN = "mail.example.com"
SENDER = f"acme.news@{SENDER_DOMAIN}"  # acme's namespace on the shared domain
POSTAL = "1 Main Street, Springfield 12345"
CONTENT = {
    "from_address": SENDER,
    "from_name": "Acme News",
    "subject": "Hello {{ first_name | default('there') }}",
    "html": "<p>Hi {{ first_name }}</p>",
    "text": "Hi {{ first_name }}",
}
# C0 controls (CR, LF, NUL, TAB, ESC), DEL, C1 controls (NEL among them), and Unicode's
# line and paragraph separators: each ends a header line for some reader.
UNSAFE = ["\r\n", "\r", "\n", "\x00", "\t", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029"]
IDS = ["crlf", "cr", "lf", "nul", "tab", "esc", "del", "nel", "csi", "line-sep", "para-sep"]


@pytest.fixture
def scene(campaigns_api: Api, mail_setup: dict[str, str], table: Any) -> dict[str, Any]:
    """acme with email settings, a segment and a draft campaign."""
    ses = boto3.client("sesv2")
    identities = {i["IdentityName"] for i in ses.list_email_identities()["EmailIdentities"]}
    if SENDER_DOMAIN not in identities:
        ses.create_email_identity(EmailIdentity=SENDER_DOMAIN)
    settings = campaigns_api.call("PUT", "/settings/email", ADMIN, {"postal_address": POSTAL})
    assert settings.status == 200, settings.text
    segment = campaigns_api.call("POST", "/segments", ADMIN, {"name": "Everyone"})
    assert segment.status == 201, segment.text
    body = {"name": "Spring", "segment_id": segment.json["id"], **CONTENT}
    campaign = campaigns_api.call("POST", "/campaigns", ADMIN, body)
    assert campaign.status == 201, campaign.text
    return {"segment_id": segment.json["id"], "campaign_id": campaign.json["id"]}


@pytest.mark.parametrize("unsafe", UNSAFE, ids=IDS)
def test_a_from_name_with_a_control_character_is_422_and_nothing_is_stored(
    campaigns_api: Api, scene: dict[str, Any], table: Any, unsafe: str
) -> None:
    before = table_items(table)
    from_name = f"Acme{unsafe}Bcc: everyone@example.com"
    body = {"name": "Spring", "segment_id": scene["segment_id"], **CONTENT, "from_name": from_name}
    assert_problem(campaigns_api.call("POST", "/campaigns", ADMIN, body), 422, field="from_name")
    path = f"/campaigns/{scene['campaign_id']}"
    patch = campaigns_api.call("PATCH", path, ADMIN, {"from_name": from_name})
    assert_problem(patch, 422, field="from_name")
    assert table_items(table) == before
    assert campaigns_api.call("GET", path, ADMIN).json["from_name"] == "Acme News"


@pytest.mark.parametrize("where", ["end", "start"])
def test_a_line_break_at_either_end_is_refused_too_not_stripped(
    campaigns_api: Api, scene: dict[str, Any], table: Any, where: str
) -> None:
    """The schema says no control character anywhere; the code says the same (a client
    held to the schema never sees a value it was told is invalid accepted)."""
    before = table_items(table)
    from_name = "Acme\r\n" if where == "end" else "\nAcme"
    patch = campaigns_api.call(
        "PATCH", f"/campaigns/{scene['campaign_id']}", ADMIN, {"from_name": from_name}
    )
    assert_problem(patch, 422, field="from_name")
    assert table_items(table) == before


@pytest.mark.parametrize("unsafe", UNSAFE, ids=IDS)
def test_a_company_name_with_a_control_character_is_422_and_nothing_is_stored(
    campaigns_api: Api, scene: dict[str, Any], table: Any, unsafe: str
) -> None:
    before = table_items(table)
    body = {"postal_address": POSTAL, "company_name": f"Acme{unsafe}Corp"}
    reply = campaigns_api.call("PUT", "/settings/email", ADMIN, body)
    assert_problem(reply, 422, field="company_name")
    assert table_items(table) == before


@pytest.mark.parametrize("field", ["from_address", "reply_to"])
@pytest.mark.parametrize(
    "unsafe", ["\r\n", "\n", "\x00", "\u2028"], ids=["crlf", "lf", "nul", "ls"]
)
def test_addresses_with_a_control_character_inside_are_422(
    campaigns_api: Api, scene: dict[str, Any], table: Any, field: str, unsafe: str
) -> None:
    before = table_items(table)
    address = f"{SENDER}{unsafe}Bcc: everyone@example.com"
    body = {"name": "Spring", "segment_id": scene["segment_id"], **CONTENT, field: address}
    assert_problem(campaigns_api.call("POST", "/campaigns", ADMIN, body), 422, field=field)
    assert table_items(table) == before


def test_a_plain_from_name_and_company_name_are_kept(
    campaigns_api: Api, scene: dict[str, Any]
) -> None:
    path = f"/campaigns/{scene['campaign_id']}"
    reply = campaigns_api.call("PATCH", path, ADMIN, {"from_name": "  Zoë & Co — News 🚀 "})
    assert reply.status == 200, reply.text
    assert reply.json["from_name"] == "Zoë & Co — News 🚀"
    body = {"postal_address": POSTAL, "company_name": "Acme, Inc."}
    settings = campaigns_api.call("PUT", "/settings/email", ADMIN, body)
    assert settings.status == 200, settings.text
    assert settings.json["company_name"] == "Acme, Inc."
