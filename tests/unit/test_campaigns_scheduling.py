"""The campaign schedule's parameters (crm_core/campaigns/scheduling.py) and the sender
identity check (crm_core/campaigns/sender_identity.py), against fake clients."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import ClientError

from crm_core.campaigns.scheduling import (
    CampaignSchedules,
    ScheduleTarget,
    at_expression,
    schedule_name,
)
from crm_core.campaigns.sender_identity import (
    CACHE_NO_SECONDS,
    CACHE_SECONDS,
    SenderIdentities,
    candidates,
)
from crm_core.errors import Unprocessable

PARIS = ZoneInfo("Europe/Paris")
TARGET = ScheduleTarget(
    group="crm-test-campaigns",
    dispatcher_arn="arn:aws:lambda:us-east-1:123456789012:function:dispatcher",
    role_arn="arn:aws:iam::123456789012:role/scheduler",
    dlq_arn="arn:aws:sqs:us-east-1:123456789012:dispatcher-dlq",
)


def _error(code: str, operation: str = "Op") -> ClientError:
    # A bare HTTP status (a code of digits) is what botocore makes of an answer without one.
    status = int(code) if code.isdigit() else 400
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


# at(...) -------------------------------------------------------------------------------------
def test_the_wall_clock_time_in_the_chosen_zone() -> None:
    moment = datetime(2027, 3, 1, 9, 30, 15, 999_000, tzinfo=PARIS)
    assert at_expression(moment, "Europe/Paris") == ("at(2027-03-01T09:30:16)", "Europe/Paris")
    whole = moment.replace(microsecond=0)
    assert at_expression(whole, "Europe/Paris") == ("at(2027-03-01T09:30:15)", "Europe/Paris")


def test_an_offset_time_is_converted_to_the_zone() -> None:
    moment = datetime(2027, 7, 1, 12, 0, tzinfo=UTC)
    assert at_expression(moment, "America/New_York") == (
        "at(2027-07-01T08:00:00)",
        "America/New_York",
    )


def test_a_wall_clock_time_that_occurs_twice_is_written_in_utc() -> None:
    """02:30 on 2027-10-31 happens twice in Paris; the user's moment is exact in UTC."""
    first = datetime(2027, 10, 31, 2, 30, tzinfo=PARIS, fold=0)
    second = datetime(2027, 10, 31, 2, 30, tzinfo=PARIS, fold=1)
    assert at_expression(first, "Europe/Paris") == ("at(2027-10-31T00:30:00)", "UTC")
    assert at_expression(second, "Europe/Paris") == ("at(2027-10-31T01:30:00)", "UTC")


def test_a_wall_clock_time_that_never_occurs_moves_past_the_gap() -> None:
    """02:30 on 2027-03-28 does not exist in Paris (clocks jump from 02:00 to 03:00)."""
    missing = datetime(2027, 3, 28, 2, 30, tzinfo=PARIS)
    assert at_expression(missing, "Europe/Paris") == ("at(2027-03-28T03:30:00)", "Europe/Paris")


def test_a_naive_moment_is_a_bug() -> None:
    with pytest.raises(ValueError, match="aware"):
        at_expression(datetime(2027, 1, 1), "UTC")


# The schedule --------------------------------------------------------------------------------
class FakeScheduler:
    def __init__(self, *, exists: bool = False, refuse: str | None = None) -> None:
        self.exists = exists
        self.refuse = refuse
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_schedule(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("create", params))
        if self.refuse:
            raise _error(self.refuse)
        if self.exists:
            raise _error("ConflictException")
        self.exists = True
        return {"ScheduleArn": "arn"}

    def update_schedule(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("update", params))
        return {"ScheduleArn": "arn"}

    def delete_schedule(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("delete", params))
        if not self.exists:
            raise _error("ResourceNotFoundException")
        self.exists = False
        return {}


def test_the_schedule_fires_the_dispatcher_once_with_the_dispatch_id() -> None:
    scheduler = FakeScheduler()
    schedules = CampaignSchedules(TARGET, lambda: scheduler)
    moment = datetime(2027, 3, 1, 9, 30, tzinfo=PARIS)
    schedules.put("acme", "01CAMPAIGN", "01DISPATCH", moment, "Europe/Paris")
    ((kind, params),) = scheduler.calls
    assert kind == "create"
    input_ = json.loads(params["Target"].pop("Input"))
    assert input_ == {
        "kind": "campaign_due",
        "tenant_id": "acme",
        "campaign_id": "01CAMPAIGN",
        "dispatch_id": "01DISPATCH",
    }
    assert params == {
        "Name": "campaign-01CAMPAIGN",
        "GroupName": TARGET.group,
        "ScheduleExpression": "at(2027-03-01T09:30:00)",
        "ScheduleExpressionTimezone": "Europe/Paris",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE",
        "State": "ENABLED",
        "Description": "Campaign 01CAMPAIGN of tenant acme",
        "Target": {
            "Arn": TARGET.dispatcher_arn,
            "RoleArn": TARGET.role_arn,
            "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185},
            "DeadLetterConfig": {"Arn": TARGET.dlq_arn},
        },
    }


def test_an_existing_schedule_is_updated_whole() -> None:
    scheduler = FakeScheduler(exists=True)
    schedules = CampaignSchedules(TARGET, lambda: scheduler)
    schedules.put("acme", "01C", "02D", datetime(2027, 3, 1, tzinfo=UTC), "UTC")
    assert [kind for kind, _ in scheduler.calls] == ["create", "update"]
    assert scheduler.calls[0][1] == scheduler.calls[1][1]


def test_a_schedule_scheduler_refuses_is_the_clients_422() -> None:
    schedules = CampaignSchedules(TARGET, lambda: FakeScheduler(refuse="ValidationException"))
    with pytest.raises(Unprocessable) as refused:
        schedules.put("acme", "01C", "02D", datetime(2027, 3, 1, tzinfo=UTC), "UTC")
    assert refused.value.errors[0]["loc"] == ["body", "send_at"]


def test_other_scheduler_errors_are_not_hidden() -> None:
    schedules = CampaignSchedules(TARGET, lambda: FakeScheduler(refuse="AccessDeniedException"))
    with pytest.raises(ClientError):
        schedules.put("acme", "01C", "02D", datetime(2027, 3, 1, tzinfo=UTC), "UTC")


def test_delete_ignores_a_schedule_already_gone() -> None:
    scheduler = FakeScheduler(exists=True)
    schedules = CampaignSchedules(TARGET, lambda: scheduler)
    assert schedules.delete("01C") is True
    assert schedules.delete("01C") is False
    assert scheduler.calls[0] == ("delete", {"Name": "campaign-01C", "GroupName": TARGET.group})


def test_the_client_is_made_on_first_use() -> None:
    made: list[FakeScheduler] = []

    def make() -> FakeScheduler:
        made.append(FakeScheduler())
        return made[-1]

    schedules = CampaignSchedules(TARGET, make)
    assert made == []
    schedules.delete("01C")
    schedules.delete("01C")
    assert len(made) == 1
    assert schedule_name("01C") == "campaign-01C"


# Sender identities ---------------------------------------------------------------------------
def test_candidates_go_from_the_address_to_its_parent_domains() -> None:
    assert candidates("News@Mail.Example.com") == [
        "news@mail.example.com",
        "mail.example.com",
        "example.com",
    ]
    assert candidates("a@example.co.uk") == ["a@example.co.uk", "example.co.uk", "co.uk"]
    assert candidates("a@example.com") == ["a@example.com", "example.com"]
    assert candidates("no-at-sign") == []
    assert candidates("@example.com") == []


class FakeSes:
    def __init__(self, identities: dict[str, dict[str, Any] | str]) -> None:
        self.identities = identities
        self.asked: list[str] = []

    def get_email_identity(self, EmailIdentity: str) -> dict[str, Any]:  # noqa: N803
        self.asked.append(EmailIdentity)
        found = self.identities.get(EmailIdentity)
        if found is None:
            raise _error("NotFoundException")
        if isinstance(found, str):
            raise _error(found)
        return found


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SES_VERIFIED = {"VerifiedForSendingStatus": True, "VerificationStatus": "SUCCESS"}
MOTO_VERIFIED = {"VerifiedForSendingStatus": False, "VerificationStatus": "SUCCESS"}
PENDING = {"VerifiedForSendingStatus": False, "VerificationStatus": "PENDING"}


@pytest.mark.parametrize(
    ("identities", "verified"),
    [
        ({"news@mail.example.com": SES_VERIFIED}, True),
        ({"mail.example.com": SES_VERIFIED}, True),
        ({"example.com": MOTO_VERIFIED}, True),
        ({"mail.example.com": PENDING}, False),
        ({"news@mail.example.com": PENDING, "example.com": SES_VERIFIED}, True),
        ({"other.example.com": SES_VERIFIED}, False),
        ({"mail.example.com": "AccessDeniedException", "example.com": SES_VERIFIED}, True),
        # A bare 404 (an identity name with a `/` reaches no route): no such identity.
        ({"news@mail.example.com": "404", "example.com": SES_VERIFIED}, True),
        ({"news@mail.example.com": "308", "example.com": SES_VERIFIED}, True),
        ({}, False),
    ],
)
def test_verified_by_the_address_its_domain_or_a_parent(
    identities: dict[str, Any], verified: bool
) -> None:
    assert (
        SenderIdentities(lambda: FakeSes(identities)).verified("news@mail.example.com") is verified
    )


def test_answers_are_kept_for_a_while() -> None:
    ses = FakeSes({"mail.example.com": SES_VERIFIED})
    clock = Clock()
    senders = SenderIdentities(lambda: ses, clock)
    assert senders.verified("news@mail.example.com")
    assert ses.asked == ["news@mail.example.com", "mail.example.com"]
    assert senders.verified("news@mail.example.com")
    assert senders.verified("other@mail.example.com")  # the domain's answer serves all
    assert ses.asked == ["news@mail.example.com", "mail.example.com", "other@mail.example.com"]

    # A "no" is asked again sooner than a "yes".
    clock.now += CACHE_NO_SECONDS + 1
    assert senders.verified("news@mail.example.com")
    assert ses.asked[-1] == "news@mail.example.com"
    asked = len(ses.asked)
    clock.now += CACHE_SECONDS - CACHE_NO_SECONDS - 5
    senders.verified("other@mail.example.com")  # its "no" expired; the domain's "yes" has not
    assert ses.asked[asked:] == ["other@mail.example.com"]
    ses.identities.clear()
    clock.now += 10
    assert not senders.verified("news@mail.example.com")  # the domain's "yes" expired
    senders.forget()


def test_ses_outages_are_not_a_no() -> None:
    senders = SenderIdentities(lambda: FakeSes({"a@example.com": "ServiceUnavailable"}))
    with pytest.raises(ClientError):
        senders.verified("a@example.com")
