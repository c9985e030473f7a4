"""The email campaign resources of template.yaml on its own local cloud, wired as `crm dev`
wires them: the unsubscribe link leads to the local gateway's public route; a campaign email
sent with the configuration set puts SES's events on the default bus, whose rule hands them
to email_events; the stage's bus hands send requests to the dispatcher and unsubscribes to
email_events; a campaign's one-time schedule fires the dispatcher with its Input.

The functions' code is not what is tested here: every asynchronous invoke is recorded
instead of run (`Submissions`), so the test sees exactly what each service delivers."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from infra.local import eventbridge, mail, schedules
from infra.local.dev import LocalCloud
from infra.ops.local_http import request
from tests.delivery.support import Log, wait_until
from tests.services.conftest import FakeClock, Inbox, template_cloud, watch_bus

START = datetime(2030, 3, 4, 8, 59, 30, tzinfo=UTC)
SIM = "simulator.amazonses.com"
TAGS = {"tenant_id": "acme", "campaign_id": "01HCAMPAIGN", "contact_id": "01HCONTACT"}


class Submissions:
    """Stands for the async invoker's `submit`: keeps (function, event) instead of invoking."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, function: str, event: Any) -> str:
        with self._lock:
            self.calls.append((function, event))
        return str(uuid.uuid4())

    def of(self, function: str) -> list[Any]:
        with self._lock:
            return [event for name, event in self.calls if name == function]


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(scope="module")
def cloud(
    tmp_path_factory: pytest.TempPathFactory, clock: FakeClock
) -> Iterator[tuple[LocalCloud, Log]]:
    log = Log()
    services: list[Any] = [
        eventbridge.build,
        lambda ctx: schedules.build(ctx, clock=clock),
        mail.build,
    ]
    with template_cloud(tmp_path_factory.mktemp("campaigns"), services, log) as local:
        yield local, log


@pytest.fixture(scope="module")
def submitted(cloud: tuple[LocalCloud, Log]) -> Submissions:
    local, _ = cloud
    assert local.async_invoker is not None
    spy = Submissions()
    local.async_invoker.submit = spy  # type: ignore[method-assign]
    return spy


@pytest.fixture(scope="module")
def ses_events(cloud: tuple[LocalCloud, Log]) -> Inbox:
    """SES's events on the default bus, whole."""
    local, _ = cloud
    return watch_bus(local, "default", "local-campaigns-ses-watch", {"source": ["aws.ses"]})


def env(local: LocalCloud, function: str) -> dict[str, str]:
    (spec,) = [f for f in local.functions if f.logical_id == function]
    return spec.environment


# The unsubscribe link -------------------------------------------------------------------------
def test_the_unsubscribe_link_leads_to_the_local_gateway(cloud: tuple[LocalCloud, Log]) -> None:
    local, _ = cloud
    assert local.running is not None
    api = local.running.api_url
    assert api.startswith("http://127.0.0.1:")
    assert not api.endswith(":0")
    assert env(local, "CampaignSenderFunction")["UNSUBSCRIBE_URL"] == f"{api}/unsubscribe"
    assert local.running.outputs["UnsubscribeUrl"] == f"{api}/unsubscribe"
    assert local.running.outputs["ApiUrl"] == f"{api}/"
    # Public: the gateway hands the request to the function, whatever it answers.
    for method in ("GET", "POST"):
        status, _, _ = request(method, f"{api}/unsubscribe?token=x")
        assert status not in (401, 403, 404), method
    # The campaigns' routes keep the authorizer.
    status, _, _ = request("GET", f"{api}/campaigns")
    assert status == 401


# SES events -----------------------------------------------------------------------------------
def send(local: LocalCloud, to: str, tags: dict[str, str] | None = TAGS) -> str:
    message = EmailMessage()
    message["From"] = "Acme News <acme.news@example.com>"
    message["To"] = to
    message["Subject"] = f"Spring {uuid.uuid4().hex[:6]}"
    message.set_content("Hello")
    kwargs: dict[str, Any] = {
        "FromEmailAddress": "acme.news@example.com",
        "Destination": {"ToAddresses": [to]},
        "Content": {"Raw": {"Data": message.as_bytes()}},
        "ConfigurationSetName": env(local, "CampaignSenderFunction")["SES_CONFIGURATION_SET"],
    }
    if tags:
        kwargs["EmailTags"] = [{"Name": k, "Value": v} for k, v in tags.items()]
    return str(local.client("sesv2").send_email(**kwargs)["MessageId"])


def of_message(events: list[Any], message_id: str) -> list[Any]:
    return [e for e in events if e["detail"]["mail"]["messageId"] == message_id]


@pytest.mark.parametrize(
    ("local_part", "detail_types"),
    [
        ("success", ["Email Sent", "Email Delivered"]),
        ("bounce", ["Email Sent", "Email Bounced"]),
        ("complaint", ["Email Sent", "Email Delivered", "Email Complaint Received"]),
        ("suppressionlist", ["Email Sent", "Email Bounced"]),
    ],
)
def test_a_campaign_emails_ses_events_reach_email_events(
    cloud: tuple[LocalCloud, Log],
    submitted: Submissions,
    ses_events: Inbox,
    local_part: str,
    detail_types: list[str],
) -> None:
    local, log = cloud
    message_id = send(local, f"{local_part}@{SIM}")

    def handed_on() -> list[Any]:
        found = of_message(submitted.of("EmailEventsFunction"), message_id)
        return found if len(found) >= len(detail_types) else []

    received = wait_until(handed_on, "email_events to get the SES events", timeout=20, log=log)
    assert sorted(e["detail-type"] for e in received) == sorted(detail_types)
    for event in received:
        assert event["source"] == "aws.ses"
        assert event["account"] == "123456789012"
        tags = event["detail"]["mail"]["tags"]
        assert {k: tags[k] for k in TAGS} == {k: [v] for k, v in TAGS.items()}
        assert tags["ses:configuration-set"] == ["crm-local-campaigns"]
    bounces = [e for e in received if e["detail-type"] == "Email Bounced"]
    for bounce in bounces:
        assert bounce["detail"]["bounce"]["bounceType"] == "Permanent"
        expected = "OnAccountSuppressionList" if local_part == "suppressionlist" else "General"
        assert bounce["detail"]["bounce"]["bounceSubType"] == expected
    # The same events are on the default bus, for any other rule.
    on_bus = ses_events.wait_for(lambda seen: len(of_message(seen, message_id)) >= len(received))
    assert len(of_message(on_bus, message_id)) == len(detail_types)


def test_another_configuration_sets_events_do_not_reach_email_events(
    cloud: tuple[LocalCloud, Log], submitted: Submissions, ses_events: Inbox
) -> None:
    """The default bus is every stage's: the rule takes this stage's configuration set only."""
    local, _ = cloud
    detail = {
        "eventType": "Delivery",
        "mail": {"messageId": "other-stage", "tags": {"ses:configuration-set": ["crm-dev-x"]}},
    }
    local.client("events").put_events(
        Entries=[
            {"Source": "aws.ses", "DetailType": "Email Delivered", "Detail": json.dumps(detail)}
        ]
    )
    ses_events.wait_for(lambda seen: bool(of_message(seen, "other-stage")), what="the event")
    assert of_message(submitted.of("EmailEventsFunction"), "other-stage") == []


# The stage's bus ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "detail_type", "function"),
    [
        ("crm.campaigns", "CampaignSendRequested", "CampaignDispatcherFunction"),
        ("crm.campaigns", "CampaignResumed", "CampaignDispatcherFunction"),
        ("crm.contacts", "ContactUnsubscribed", "EmailEventsFunction"),
    ],
)
def test_the_stages_bus_hands_campaign_events_on(
    cloud: tuple[LocalCloud, Log],
    submitted: Submissions,
    source: str,
    detail_type: str,
    function: str,
) -> None:
    local, log = cloud
    marker = uuid.uuid4().hex
    local.client("events").put_events(
        Entries=[
            {
                "EventBusName": "crm-local-bus",
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps({"marker": marker}),
            }
        ]
    )

    def delivered() -> list[Any]:
        return [
            e for e in submitted.of(function) if (e.get("detail") or {}).get("marker") == marker
        ]

    (event,) = wait_until(delivered, f"{function} to get {detail_type}", timeout=20, log=log)
    assert (event["source"], event["detail-type"]) == (source, detail_type)


# Test emails and senders -----------------------------------------------------------------------
def test_the_campaigns_function_finds_the_users_crm_tenant_create_makes(
    cloud: tuple[LocalCloud, Log],
) -> None:
    """A test email goes to a user of the caller's tenant: the pool the function is given is
    the one `crm tenant create` fills, and its users count (enabled, verified addresses)."""
    from crm_core.campaigns.sender_identity import SenderIdentities
    from crm_core.campaigns.test_sends import Teammates
    from infra.ops.identity import Identity

    local, _ = cloud
    campaigns = env(local, "CampaignsFunction")
    cognito = local.client("cognito-idp")
    tenant = f"Cloud{uuid.uuid4().hex[:6]}"
    users = Identity(cognito, campaigns["USER_POOL_ID"], "").create_tenant(tenant)

    teammates = Teammates(lambda: cognito, campaigns["USER_POOL_ID"])
    assert all(teammates.includes(tenant, user.email) for user in users)
    assert not teammates.includes("someone-else", users[0].email)
    assert not teammates.includes(tenant, "stranger@example.com")
    # The tenant's namespace is on the stage's verified sending domain.
    assert campaigns["SENDER_DOMAIN"] == "example.com"
    assert SenderIdentities(lambda: local.client("sesv2")).identity("example.com") is not None


# The campaign's schedule ----------------------------------------------------------------------
def test_a_campaign_schedule_fires_the_dispatcher_with_its_input(
    cloud: tuple[LocalCloud, Log], submitted: Submissions, clock: FakeClock
) -> None:
    """As the campaigns function will create it, from its environment."""
    local, log = cloud
    campaigns = env(local, "CampaignsFunction")
    due = clock.now() + timedelta(minutes=5)
    payload = {
        "kind": "campaign_due",
        "tenant_id": "acme",
        "campaign_id": "01HCAMPAIGN",
        "dispatch_id": uuid.uuid4().hex,
    }
    scheduler = local.client("scheduler")
    name = f"campaign-{uuid.uuid4().hex[:12]}"
    scheduler.create_schedule(
        Name=name,
        GroupName=campaigns["SCHEDULE_GROUP"],
        ScheduleExpression=f"at({due.strftime('%Y-%m-%dT%H:%M:%S')})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": campaigns["DISPATCHER_ARN"],
            "RoleArn": campaigns["SCHEDULER_ROLE_ARN"],
            "Input": json.dumps(payload),
            "DeadLetterConfig": {"Arn": campaigns["DISPATCHER_DLQ_ARN"]},
            "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
        },
    )
    assert campaigns["SCHEDULE_GROUP"] == "crm-local-campaigns"

    def fired() -> list[Any]:
        return [e for e in submitted.of(campaigns["DISPATCHER_ARN"]) if e == payload]

    clock.advance(minutes=4)
    with pytest.raises(AssertionError):
        wait_until(fired, "nothing before its time", timeout=1.5)
    clock.advance(minutes=2)
    assert wait_until(fired, "the dispatcher to be invoked", timeout=10, log=log) == [payload]

    def deleted() -> bool:
        try:
            scheduler.get_schedule(Name=name, GroupName=campaigns["SCHEDULE_GROUP"])
        except scheduler.exceptions.ResourceNotFoundException:
            return True
        return False

    wait_until(deleted, "the fired schedule to be deleted", timeout=10, log=log)
