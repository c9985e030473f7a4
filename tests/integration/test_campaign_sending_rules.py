"""Who a campaign may come from and who its test email may go to (PRODUCT.md, "Consent and
sending rules"): a test email goes only to the caller's own verified address or another user
of the tenant, never to a suppressed one, within an hourly quota per tenant; a tenant sends
only from its namespace on the shared domain, or from an SES identity tagged for it.

moto in-process: the campaigns function's routes, SESv2 (identities with tags), and a
Cognito user pool the function's `teammates` is pointed at.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from crm_core import keys
from crm_core.campaigns.campaign_models import CampaignCreate
from crm_core.campaigns.campaign_store import CampaignStore
from crm_core.campaigns.suppression import SuppressionReason, suppress_put
from crm_core.campaigns.test_sends import TEST_SENDS_PER_HOUR
from crm_core.clock import now_iso
from crm_core.events.envelope import Origin
from tests.support.api import Api, User
from tests.support.campaigns import SENDER_DOMAIN, sender
from tests.support.checks import assert_problem, table_items

TENANT, OTHER = "acme", "globex"
POSTAL = "1 Main Street, Springfield 12345"
CONTENT = {
    "from_name": "Acme News",
    "subject": "Hello {{ first_name | default('there') }}",
    "html": "<p>Hi {{ first_name }}</p>",
    "text": "Hi {{ first_name }}",
}


@dataclass
class Member(User):
    """A user whose ID token carries `email` and `email_verified` as the HTTP API hands
    them over (strings)."""

    email: str = "sam@acme.example"
    email_verified: str = "true"

    def claims(self) -> dict[str, str]:
        claims = super().claims()
        claims["email"] = self.email
        claims["email_verified"] = self.email_verified
        return claims


ADMIN = Member(TENANT, ("admin",), email="ada.admin@acme.example")
GLOBEX = Member(OTHER, ("admin",), email="gus@globex.example")


def _context() -> Any:
    return sys.modules["campaigns_api.context"]


def _ses_backend() -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]


def _sent() -> list[Any]:
    return list(_ses_backend().sent_messages)


class Pool:
    """A Cognito user pool like template.yaml's (email usernames, `custom:tenant_id`)."""

    def __init__(self) -> None:
        self.cognito = boto3.client("cognito-idp")
        self.id = self.cognito.create_user_pool(
            PoolName=f"crm-test-users-{uuid.uuid4().hex[:6]}",
            UsernameAttributes=["email"],
            Schema=[{"Name": "tenant_id", "AttributeDataType": "String", "Mutable": False}],
        )["UserPool"]["Id"]

    def user(
        self, email: str, tenant_id: str, *, enabled: bool = True, verified: bool = True
    ) -> str:
        self.cognito.admin_create_user(
            UserPoolId=self.id,
            Username=email,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true" if verified else "false"},
                {"Name": "custom:tenant_id", "Value": tenant_id},
            ],
            MessageAction="SUPPRESS",
        )
        if not enabled:
            self.cognito.admin_disable_user(UserPoolId=self.id, Username=email)
        return email


@pytest.fixture
def pool(campaigns_module: Any, monkeypatch: pytest.MonkeyPatch) -> Pool:
    made = Pool()
    monkeypatch.setattr(_context().teammates, "user_pool_id", made.id)
    return made


@pytest.fixture(autouse=True)
def _fresh(mail_setup: dict[str, str]) -> None:
    """No email sent yet, and no answer about identities or namespaces kept from another
    test (each test has a fresh table)."""
    _ses_backend().sent_messages.clear()
    _context().senders.forget()


@pytest.fixture
def scene(campaigns_api: Api, api: Api, table: Any) -> dict[str, str]:
    """acme and globex with email settings, a contact each and a segment of everyone."""
    found: dict[str, str] = {}
    for user in (ADMIN, GLOBEX):
        reply = campaigns_api.call("PUT", "/settings/email", user, {"postal_address": POSTAL})
        assert reply.status == 200, reply.text
        contact = api.call(
            "POST",
            "/contacts",
            user,
            {"email": "ada@example.com", "first_name": "Ada", "email_consent": "subscribed"},
        )
        assert contact.status == 201, contact.text
        segment = campaigns_api.call("POST", "/segments", user, {"name": "All", "filter": {}})
        assert segment.status == 201, segment.text
        found[str(user.tenant_id)] = str(segment.json["id"])
    return found


def _create(api: Api, segment_id: str, user: User = ADMIN, **body: Any) -> Any:
    full = {"name": "Spring", "segment_id": segment_id, **CONTENT, **body}
    full.setdefault("from_address", sender(str(user.tenant_id)))
    return api.call("POST", "/campaigns", user, full)


def _campaign(api: Api, segment_id: str, user: User = ADMIN, **body: Any) -> str:
    reply = _create(api, segment_id, user, **body)
    assert reply.status == 201, reply.text
    return str(reply.json["id"])


def _test(api: Api, campaign_id: str, to: str, user: User = ADMIN, **kw: Any) -> Any:
    return api.call("POST", f"/campaigns/{campaign_id}/test", user, {"to": to}, **kw)


def _identity(name: str, tenant_id: str | None = None) -> None:
    """A verified SES identity, tagged for `tenant_id` (moto shows the tags given here)."""
    ses = boto3.client("sesv2")
    kwargs: dict[str, Any] = {"EmailIdentity": name}
    if tenant_id is not None:
        kwargs["Tags"] = [{"Key": "crm:tenant_id", "Value": tenant_id}]
    ses.create_email_identity(**kwargs)


def _refused(reply: Any, loc: list[str]) -> str:
    problem = assert_problem(reply, 422)
    (error,) = [e for e in problem["errors"] if e["loc"] == loc]
    return str(error["msg"])


# Test sends: who may receive them ------------------------------------------------------------
def test_a_test_send_goes_to_the_callers_own_verified_address(
    campaigns_api: Api, scene: dict[str, str], pool: Pool
) -> None:
    campaign_id = _campaign(campaigns_api, scene[TENANT])

    reply = _test(campaigns_api, campaign_id, "Ada.Admin@Acme.example")

    assert reply.status == 202, reply.text
    (sent,) = _sent()
    assert set(sent.destinations) == {"ada.admin@acme.example"}
    # Not when Cognito has not verified the caller's address (and no user of the pool has it).
    unverified = Member(TENANT, ("admin",), email="new@acme.example", email_verified="false")
    msg = _refused(
        _test(campaigns_api, campaign_id, "new@acme.example", unverified), ["body", "to"]
    )
    assert "your own verified address or to another user of your tenant" in msg
    assert len(_sent()) == 1


def test_a_test_send_to_a_stranger_is_refused(
    campaigns_api: Api, scene: dict[str, str], pool: Pool, table: Any
) -> None:
    campaign_id = _campaign(campaigns_api, scene[TENANT])
    before = table_items(table)

    reply = _test(campaigns_api, campaign_id, "victim@example.com")

    msg = _refused(reply, ["body", "to"])
    assert "victim@example.com may not receive test emails" in msg
    assert _sent() == []
    assert table_items(table) == before  # and nothing counted


def test_a_test_send_to_a_teammate_is_sent(
    campaigns_api: Api, scene: dict[str, str], pool: Pool
) -> None:
    teammate = pool.user("bea@acme.example", TENANT)
    campaign_id = _campaign(campaigns_api, scene[TENANT])

    reply = _test(campaigns_api, campaign_id, teammate)

    assert reply.status == 202, reply.text
    assert [set(m.destinations) for m in _sent()] == [{teammate}]


def test_a_test_send_to_a_user_of_another_tenant_is_refused(
    campaigns_api: Api, scene: dict[str, str], pool: Pool
) -> None:
    theirs = pool.user("gus@globex.example", OTHER)
    campaign_id = _campaign(campaigns_api, scene[TENANT])

    msg = _refused(_test(campaigns_api, campaign_id, theirs), ["body", "to"])

    # Said as for a stranger: nothing tells whether the address is another tenant's user.
    assert msg == (
        f"{theirs} may not receive test emails: they go only to your own verified address "
        "or to another user of your tenant"
    )
    assert _sent() == []
    # Their own admin may send them one.
    own = _campaign(campaigns_api, scene[OTHER], GLOBEX)
    assert _test(campaigns_api, own, theirs, GLOBEX).status == 202


def test_disabled_and_unverified_teammates_receive_no_test(
    campaigns_api: Api, scene: dict[str, str], pool: Pool
) -> None:
    gone = pool.user("gone@acme.example", TENANT, enabled=False)
    unverified = pool.user("typo@acme.example", TENANT, verified=False)
    campaign_id = _campaign(campaigns_api, scene[TENANT])

    for to in (gone, unverified):
        _refused(_test(campaigns_api, campaign_id, to), ["body", "to"])
    assert _sent() == []


def test_a_test_send_to_a_suppressed_teammate_is_refused(
    campaigns_api: Api, scene: dict[str, str], pool: Pool, table: Any
) -> None:
    teammate = pool.user("bounced@acme.example", TENANT)
    table.transact(
        [suppress_put(table.op, TENANT, teammate, SuppressionReason.HARD_BOUNCE, now_iso())]
    )
    campaign_id = _campaign(campaigns_api, scene[TENANT])

    msg = _refused(_test(campaigns_api, campaign_id, teammate), ["body", "to"])

    assert "suppression list" in msg
    assert _sent() == []
    # The caller's own address suppressed: refused as well.
    table.transact(
        [suppress_put(table.op, TENANT, ADMIN.email, SuppressionReason.COMPLAINT, now_iso())]
    )
    _refused(_test(campaigns_api, campaign_id, ADMIN.email), ["body", "to"])
    # Another tenant's suppression list is not ours.
    theirs = _campaign(campaigns_api, scene[OTHER], GLOBEX)
    pool.user("bounced@globex.example", OTHER)
    assert _test(campaigns_api, theirs, "bounced@globex.example", GLOBEX).status == 202


# Test sends: the quota -----------------------------------------------------------------------
def test_test_sends_have_an_hourly_quota_per_tenant(
    campaigns_api: Api, scene: dict[str, str], pool: Pool, table: Any
) -> None:
    campaign_id = _campaign(campaigns_api, scene[TENANT])
    for _ in range(TEST_SENDS_PER_HOUR - 1):
        assert _test(campaigns_api, campaign_id, ADMIN.email).status == 202
    keyed = {"Idempotency-Key": "last-test"}
    last = _test(campaigns_api, campaign_id, ADMIN.email, headers=keyed)
    assert last.status == 202, last.text
    assert len(_sent()) == TEST_SENDS_PER_HOUR

    over = _test(campaigns_api, campaign_id, ADMIN.email)

    problem = assert_problem(over, 429)
    assert f"{TEST_SENDS_PER_HOUR} test emails of this hour" in problem["detail"]
    assert 1 <= int(over.headers["retry-after"]) <= 3600
    assert len(_sent()) == TEST_SENDS_PER_HOUR
    # The last request again, with its key: its first answer, neither a second email nor
    # a 429.
    replay = _test(campaigns_api, campaign_id, ADMIN.email, headers=keyed)
    assert replay.status == 202, replay.text
    assert replay.json == last.json
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(_sent()) == TEST_SENDS_PER_HOUR
    # A refused request with a new key keeps no record: after Retry-After it would run.
    refused = _test(campaigns_api, campaign_id, ADMIN.email, headers={"Idempotency-Key": "k2"})
    assert_problem(refused, 429)
    assert "retry-after" in refused.headers
    # The quota is the tenant's: globex still sends.
    theirs = _campaign(campaigns_api, scene[OTHER], GLOBEX)
    assert _test(campaigns_api, theirs, GLOBEX.email, GLOBEX).status == 202


def test_a_test_email_ses_refuses_does_not_count(
    campaigns_api: Api, scene: dict[str, str], pool: Pool, table: Any
) -> None:
    """SES refusing the email (a recipient SES itself suppresses, say) gives the count back."""
    from botocore.exceptions import ClientError

    campaign_id = _campaign(campaigns_api, scene[TENANT])
    client = _context().ses()

    def refuse(params: dict[str, Any], **_: Any) -> None:
        error = {"Error": {"Code": "MessageRejected", "Message": "Email address is on the list"}}
        raise ClientError(error, "SendEmail")  # type: ignore[arg-type]

    client.meta.events.register("before-call.sesv2.SendEmail", refuse, "crm-refuse")
    try:
        assert_problem(_test(campaigns_api, campaign_id, ADMIN.email), 422)
    finally:
        client.meta.events.unregister("before-call.sesv2.SendEmail", unique_id="crm-refuse")
    counters = [i for i in table_items(table) if i.get("type") == {"S": "test_send_quota"}]
    assert [c["sent"] for c in counters] == [{"N": "0"}]


# Senders: the tenant's namespace on the shared domain ---------------------------------------
def test_a_campaign_from_another_tenants_namespace_is_refused(
    campaigns_api: Api, scene: dict[str, str], table: Any
) -> None:
    campaign_id = _campaign(campaigns_api, scene[TENANT])
    before = table_items(table)
    for address in (
        sender(OTHER),  # globex.news@
        f"news@{SENDER_DOMAIN}",  # no namespace at all
        f"acme@{SENDER_DOMAIN}",
        f"acmecorp.news@{SENDER_DOMAIN}",
        f"acme.news@eu.{SENDER_DOMAIN}",  # a subdomain of the shared domain
    ):
        msg = _refused(_create(campaigns_api, scene[TENANT], from_address=address), _FROM)
        assert f"acme.<name>@{SENDER_DOMAIN}" in msg, msg
        patch = campaigns_api.call(
            "PATCH", f"/campaigns/{campaign_id}", ADMIN, {"from_address": address}
        )
        _refused(patch, _FROM)
    assert table_items(table) == before
    # The display name is free text: the address decides.
    assert _create(campaigns_api, scene[TENANT], from_name="Globex News").status == 201


_FROM = ["body", "from_address"]


def test_a_stored_campaign_from_outside_the_namespace_cannot_be_sent(
    campaigns_api: Api, scene: dict[str, str], pool: Pool, table: Any
) -> None:
    """A campaign saved before the rule (written here straight to the table) is refused at
    schedule, send and test."""
    body = CampaignCreate.model_validate(
        {"name": "Old", "segment_id": scene[TENANT], **CONTENT, "from_address": sender(OTHER)}
    )
    item = CampaignStore(table).create(TENANT, body, Origin.system("tests"))
    path = f"/campaigns/{item['id']}"
    when = {"send_at": _soon(), "timezone": "UTC"}
    for reply in (
        campaigns_api.call("POST", f"{path}/send", ADMIN),
        campaigns_api.call("POST", f"{path}/schedule", ADMIN, when),
        campaigns_api.call("POST", f"{path}/test", ADMIN, {"to": ADMIN.email}),
    ):
        _refused(reply, ["campaign", "from_address"])
    assert _sent() == []
    assert table.get(keys.campaign(TENANT, item["id"]))["state"] == "draft"


def _soon() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()


def test_tenant_ids_that_differ_only_in_case_cannot_share_a_namespace(
    campaigns_api: Api, scene: dict[str, str], table: Any
) -> None:
    first = _campaign(campaigns_api, scene[OTHER], GLOBEX)  # globex claims "globex"
    assert table.get(keys.sender_namespace("globex"))["tenant_id"] == OTHER
    shouting = Member("GLOBEX", ("admin",), email="boss@globex.example")
    segment = campaigns_api.call("POST", "/segments", shouting, {"name": "All", "filter": {}})

    reply = _create(campaigns_api, segment.json["id"], shouting)

    msg = _refused(reply, _FROM)
    assert f"globex.<name>@{SENDER_DOMAIN} belong to another tenant" in msg
    # The first owner keeps it, also in a process that has not seen the claim yet.
    _context().senders.forget()
    assert _create(campaigns_api, scene[OTHER], GLOBEX).status == 201
    assert _refused(_create(campaigns_api, segment.json["id"], shouting), _FROM) == msg
    assert campaigns_api.call("GET", f"/campaigns/{first}", GLOBEX).status == 200


# Senders: identities of the tenant's own ----------------------------------------------------
def test_an_identity_tagged_for_the_tenant_may_send(
    campaigns_api: Api, scene: dict[str, str], pool: Pool
) -> None:
    _identity("acme-corp.example.com", TENANT)

    campaign_id = _campaign(campaigns_api, scene[TENANT], from_address="news@acme-corp.example.com")
    # Its subdomains too (SES lets a verified parent domain send for them).
    _campaign(campaigns_api, scene[TENANT], from_address="a@eu.acme-corp.example.com")

    assert _test(campaigns_api, campaign_id, ADMIN.email).status == 202
    (sent,) = _sent()
    assert sent.source == "news@acme-corp.example.com"
    assert campaigns_api.call("POST", f"/campaigns/{campaign_id}/send", ADMIN).status == 202


def test_an_untagged_or_another_tenants_identity_is_refused(
    campaigns_api: Api, scene: dict[str, str], table: Any
) -> None:
    _identity("untagged.example.com")
    _identity("globex-corp.example.com", OTHER)
    _identity("ceo@acme-mail.example.com", OTHER)  # an address identity of theirs...
    _identity("acme-mail.example.com", TENANT)  # ...inside our domain: the address decides
    before = table_items(table)

    for address in (
        "news@untagged.example.com",
        "news@globex-corp.example.com",
        "ceo@acme-mail.example.com",
    ):
        msg = _refused(_create(campaigns_api, scene[TENANT], from_address=address), _FROM)
        assert "not tagged for your tenant (crm:tenant_id=acme)" in msg, msg
        assert f"acme.<name>@{SENDER_DOMAIN}" in msg
    assert table_items(table) == before
    # Theirs is theirs.
    theirs = _create(campaigns_api, scene[OTHER], GLOBEX, from_address="a@globex-corp.example.com")
    assert theirs.status == 201, theirs.text
    # An address of no verified identity says how to verify it.
    msg = _refused(_create(campaigns_api, scene[TENANT], from_address="a@nowhere.example"), _FROM)
    assert "verify nowhere.example (or the address) in SES" in msg


def test_an_address_the_identity_service_cannot_route_is_refused_not_a_500(
    campaigns_api: Api, scene: dict[str, str], table: Any
) -> None:
    # A `/` in the local part is a valid address; asking SES about it as an identity meets a
    # bare 404 (no such route), which means "no such identity", as NotFoundException does
    # (the API fuzzer found it answering 500).
    before = table_items(table)
    for address in ("u'&/8n!jt9@wvw.example", "a/b@nowhere.example", "/%@le.example"):
        msg = _refused(_create(campaigns_api, scene[TENANT], from_address=address), _FROM)
        assert "is not on an SES identity verified for sending" in msg, msg
    assert table_items(table) == before
