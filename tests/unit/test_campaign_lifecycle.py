"""A campaign's pure decisions, without a table or HTTP: when it may be scheduled
(crm_core/campaigns/lifecycle.py), whether it may still change, where a template error
points, and what an SES error tells a test send's caller (crm_core/campaigns/test_email.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_core.campaigns.campaign_models import CampaignState
from crm_core.campaigns.lifecycle import (
    MAX_SCHEDULE_AHEAD,
    editable,
    refusal,
    send_time_errors,
    template_errors,
)
from crm_core.campaigns.test_email import recipient_errors, ses_error
from crm_core.errors import Conflict, PreconditionFailed, TooManyRequests, Unprocessable

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "moment",
    [NOW - timedelta(days=1), NOW, NOW + MAX_SCHEDULE_AHEAD + timedelta(seconds=1)],
)
def test_a_send_time_in_the_past_now_or_past_a_year_is_refused_on_send_at(
    moment: datetime,
) -> None:
    (error,) = send_time_errors(moment, NOW)
    assert error["loc"] == ["body", "send_at"]
    assert "2026-12-07T09:30:00" in error["msg"] or "2027-12-07T09:30:00" in error["msg"]


@pytest.mark.parametrize(
    "moment", [NOW + timedelta(seconds=1), NOW + timedelta(days=30), NOW + MAX_SCHEDULE_AHEAD]
)
def test_a_send_time_ahead_within_a_year_is_accepted(moment: datetime) -> None:
    assert send_time_errors(moment, NOW) == []


def _campaign(state: CampaignState, version: int = 3) -> dict[str, Any]:
    return {"state": state.value, "version": version}


@pytest.mark.parametrize("state", [CampaignState.DRAFT, CampaignState.SCHEDULED])
def test_a_draft_or_scheduled_campaign_may_change(state: CampaignState) -> None:
    item = _campaign(state)
    assert editable(item, None, "changed") is item
    assert editable(item, 3, "changed") is item


@pytest.mark.parametrize(
    "state",
    [
        CampaignState.SENDING,
        CampaignState.SENT,
        CampaignState.PAUSED,
        CampaignState.CANCELLED,
        CampaignState.FAILED,
    ],
)
def test_a_campaign_past_scheduled_may_not_change(state: CampaignState) -> None:
    with pytest.raises(Conflict, match=f"the campaign is {state.value}: only a draft"):
        editable(_campaign(state), None, "sent")


def test_a_stale_if_match_is_refused_before_the_state_is_looked_at() -> None:
    with pytest.raises(PreconditionFailed, match="at version 3, not 2"):
        editable(_campaign(CampaignState.SENT), 2, "changed")


def test_a_template_error_points_into_the_body_or_the_stored_campaign() -> None:
    assert template_errors("Hi", "<p>Hi</p>", "Hi", "body") == []
    errors = template_errors("Hi {{ first_name", "<p>Hi</p>", "Hi", "campaign")
    assert errors
    assert all(e["loc"][0] == "campaign" for e in errors), errors
    assert errors[0]["loc"][1:] == ["subject"], errors


def test_a_refusal_says_every_reason() -> None:
    errors = [{"loc": ["a"], "msg": "one"}, {"loc": ["b"], "msg": "two"}]
    refused = refusal(errors, "the campaign cannot be sent")
    assert isinstance(refused, Unprocessable)
    assert refused.detail == "the campaign cannot be sent: one; two"
    assert refused.errors == errors


@pytest.mark.parametrize(
    ("code", "answer", "loc"),
    [
        ("Throttling", TooManyRequests, None),
        ("TooManyRequestsException", TooManyRequests, None),
        ("MessageRejected", Unprocessable, ["body", "to"]),
        ("MailFromDomainNotVerifiedException", Unprocessable, ["campaign", "from_address"]),
    ],
)
def test_ses_errors_the_caller_can_act_on_are_answered(
    code: str, answer: type[Exception], loc: list[str] | None
) -> None:
    found = ses_error(code, "Email address is not verified.")
    assert isinstance(found, answer)
    if loc is not None:
        assert isinstance(found, Unprocessable)
        assert found.errors == [{"loc": loc, "msg": "Email address is not verified."}]


@pytest.mark.parametrize("code", ["AccessDeniedException", "InternalFailure", ""])
def test_other_ses_errors_are_ours_and_not_mapped(code: str) -> None:
    assert ses_error(code, "x") is None


def test_a_test_email_goes_to_the_callers_own_address_or_a_teammate_only() -> None:
    assert recipient_errors("me@acme.test", "me@acme.test", is_teammate=False) == []
    assert recipient_errors("bob@acme.test", "me@acme.test", is_teammate=True) == []
    (error,) = recipient_errors("eve@evil.test", "me@acme.test", is_teammate=False)
    assert error["loc"] == ["body", "to"]
    assert "eve@evil.test may not receive test emails" in error["msg"]
    assert recipient_errors("me@acme.test", None, is_teammate=False) != []
