"""What a scoring model makes of an activity and of a contact (crm_core/scoring/rules.py),
and the scorer's pure parts: a fit evaluated again (`refit`), a threshold crossed
(`crossed`, crm_core/scoring/decision.py)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crm_core.scores import decay
from crm_core.scores.state import CAP_DAYS_KEPT, ScoreState
from crm_core.scoring.decision import crossed
from crm_core.scoring.models import DEFAULT_MODEL, BehaviourRule, FitRule, ScoringModel
from crm_core.scoring.rules import Activity, Earned, earn, field_value, fit_of, holds, matches
from crm_core.scoring.scorer import refit

NOW_AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
NOW = NOW_AT.timestamp()


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def activity(type: str = "call", at: datetime = NOW_AT, **facts: Any) -> Activity:
    return Activity(
        id=f"a-{type}-{at.timestamp()}", contact_id="c", type=type, occurred_at=iso(at), **facts
    )


def rule(**fields: Any) -> BehaviourRule:
    return BehaviourRule.model_validate({"id": "r", "activity_type": "call", "points": 5, **fields})


def fit_rule(field: str, operator: str, value: Any = None, points: int = 3) -> FitRule:
    body: dict[str, Any] = {"id": "f", "field": field, "operator": operator, "points": points}
    if value is not None:
        body["value"] = value
    return FitRule.model_validate(body)


def model(
    behaviour: list[dict[str, Any]] | None = None,
    fit: list[dict[str, Any]] | None = None,
    half_life_days: float = 30,
    thresholds: dict[str, int] | None = None,
) -> ScoringModel:
    body = copy.deepcopy(DEFAULT_MODEL)
    if behaviour is not None:
        body["behaviour"] = behaviour
    if fit is not None:
        body["fit"] = fit
    body["half_life_days"] = half_life_days
    if thresholds is not None:
        body["thresholds"] = thresholds
    return ScoringModel.model_validate({**body, "version": 1, "is_default": False})


def engagement(state: ScoreState, at: float = NOW) -> float:
    return state.engagement_at(at)


# matches: every condition -----------------------------------------------------------------
def test_a_rule_matches_only_its_activity_type() -> None:
    assert matches(rule(), activity("call"))
    assert not matches(rule(), activity("meeting"))
    assert not matches(rule(), activity("activity"))


@pytest.mark.parametrize(
    ("conditions", "facts", "expected"),
    [
        ({"direction": "inbound"}, {"direction": "inbound"}, True),
        ({"direction": "inbound"}, {"direction": "outbound"}, False),
        ({"direction": "inbound"}, {}, False),
        ({"outcome": "connected"}, {"outcome": "connected"}, True),
        ({"outcome": "connected"}, {"outcome": "busy"}, False),
        ({"outcome": "connected"}, {}, False),
        ({}, {"direction": "outbound", "outcome": "busy"}, True),
        ({"direction": "inbound", "outcome": "connected"}, {"direction": "inbound"}, False),
        (
            {"direction": "inbound", "outcome": "connected"},
            {"direction": "inbound", "outcome": "connected"},
            True,
        ),
    ],
)
def test_call_conditions(conditions: dict[str, str], facts: dict[str, Any], expected: bool) -> None:
    assert matches(rule(conditions=conditions), activity("call", **facts)) is expected


def test_meeting_outcome() -> None:
    held = rule(activity_type="meeting", conditions={"outcome": "completed"})
    assert matches(held, activity("meeting", outcome="completed"))
    assert not matches(held, activity("meeting", outcome="scheduled"))
    assert not matches(held, activity("meeting", outcome="no_show"))


def test_task_status() -> None:
    done = rule(activity_type="task", conditions={"status": "completed"})
    assert matches(done, activity("task", status="completed"))
    assert not matches(done, activity("task", status="open"))
    assert not matches(done, activity("task"))


@pytest.mark.parametrize("activity_type", ["email_opened", "email_clicked", "unsubscribed"])
def test_campaign_id(activity_type: str) -> None:
    facts: dict[str, Any] = (
        {"url": "https://x.example/"} if activity_type == "email_clicked" else {}
    )
    spring = rule(activity_type=activity_type, conditions={"campaign_id": "spring"})
    assert matches(spring, activity(activity_type, campaign_id="spring", **facts))
    assert not matches(spring, activity(activity_type, campaign_id="autumn", **facts))
    assert not matches(spring, activity(activity_type, **facts))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://acme.example/pricing", True),
        ("https://acme.example/PRICING?plan=pro", True),
        ("https://acme.example/plans#Pricing", True),
        ("https://acme.example/blog", False),
        (None, False),
    ],
)
def test_url_contains_is_case_insensitive(url: str | None, expected: bool) -> None:
    pricing = rule(activity_type="email_clicked", conditions={"url_contains": "Pricing"})
    assert matches(pricing, activity("email_clicked", url=url)) is expected


def test_email_direction() -> None:
    replied = rule(activity_type="email", conditions={"direction": "inbound"})
    assert matches(replied, activity("email", direction="inbound"))
    assert not matches(replied, activity("email", direction="outbound"))


# Activity.of --------------------------------------------------------------------------------
def test_an_activity_from_an_events_facts() -> None:
    facts = {
        "id": "a1",
        "contact_id": "c1",
        "type": "email_clicked",
        "occurred_at": "2026-03-01T10:00:00.000Z",
        "url": "https://acme.example/pricing",
        "campaign_id": "spring",
        "direction": None,
    }
    parsed = Activity.of(facts)
    assert (parsed.id, parsed.contact_id, parsed.type) == ("a1", "c1", "email_clicked")
    assert (parsed.url, parsed.campaign_id) == ("https://acme.example/pricing", "spring")
    assert parsed.epoch == datetime(2026, 3, 1, 10, tzinfo=UTC).timestamp()
    assert parsed.created_epoch == parsed.epoch  # no created_at: when it happened


def test_an_activity_from_a_stored_activity_item() -> None:
    item = {
        "type": "activity",  # every item has its kind in `type`
        "activity_type": "call",
        "id": "a1",
        "contact_id": "c1",
        "occurred_at": "2026-03-01T10:00:00.000Z",
        "created_at": "2026-03-01T10:00:05.000Z",
        "direction": "outbound",
        "outcome": "connected",
    }
    parsed = Activity.of(item)
    assert parsed.type == "call"
    assert matches(rule(conditions={"outcome": "connected"}), parsed)


def test_the_created_time_of_an_activity_item() -> None:
    parsed = Activity.of(
        {
            "id": "a1",
            "contact_id": "c1",
            "activity_type": "call",
            "occurred_at": "2026-03-01T10:00:00Z",
            "created_at": "2026-03-01T10:00:05.000Z",
        }
    )
    assert parsed.created_epoch - parsed.epoch == 5


# earn -----------------------------------------------------------------------------------------
def test_earn_adds_the_points_at_the_activitys_time() -> None:
    scoring = model([{"id": "call", "activity_type": "call", "points": 10}], half_life_days=10)
    ten_days_ago = NOW_AT - timedelta(days=10)

    state, earned = earn(ScoreState(), scoring, activity("call", ten_days_ago), NOW)

    assert earned == [Earned("call", 10)]
    assert engagement(state) == pytest.approx(5)
    assert engagement(state, NOW + 10 * decay.DAY) == pytest.approx(2.5)
    assert state.half_life_days == 10
    assert state.seq == 1
    assert engagement(ScoreState(behaviour=state.behaviour, half_life_days=10)) == 0
    assert decay.value_at(state.behaviour["call"], NOW, 10) == pytest.approx(5)


def test_earn_with_no_rule_matching_keeps_the_state() -> None:
    start = ScoreState(fit=3, seq=7)
    state, earned = earn(start, model(), activity("note"), NOW)
    assert state is start
    assert earned == []


def test_one_activity_may_meet_several_rules() -> None:
    state, earned = earn(
        ScoreState(), model(), activity("email_clicked", url="https://x.example/pricing"), NOW
    )
    assert earned == [Earned("email-clicked", 5), Earned("pricing-clicked", 10)]
    assert engagement(state) == pytest.approx(15)
    assert set(state.behaviour) == {"email-clicked", "pricing-clicked"}


def test_negative_points_take_away() -> None:
    scoring = model()
    state, _ = earn(ScoreState(), scoring, activity("meeting", outcome="completed"), NOW)
    state, earned = earn(state, scoring, activity("unsubscribed"), NOW)
    assert earned == [Earned("unsubscribed", -25)]
    assert engagement(state) == pytest.approx(0, abs=1e-9)
    state, _ = earn(state, scoring, activity("email_bounced"), NOW)
    assert engagement(state) == pytest.approx(-10)


def opens(
    state: ScoreState, scoring: ScoringModel, day: datetime, count: int
) -> tuple[ScoreState, list[int]]:
    gained = []
    for n in range(count):
        state, earned = earn(
            state, scoring, activity("email_opened", day + timedelta(minutes=n)), NOW
        )
        gained.append(sum(e.points for e in earned))
    return state, gained


def test_a_cap_per_day_counts_each_day_apart() -> None:
    scoring = model(
        [{"id": "open", "activity_type": "email_opened", "points": 2, "cap_per_day": 5}]
    )
    first, second = NOW_AT - timedelta(days=2), NOW_AT - timedelta(days=1)

    state, day_one = opens(ScoreState(), scoring, first, 4)
    state, day_two = opens(state, scoring, second, 4)

    assert day_one == [2, 2, 1, 0]  # the last point of the 5 is a part of the rule's 2
    assert day_two == [2, 2, 1, 0]
    assert state.caps["open"] == {"total": 10, "days": {"2026-03-08": 5, "2026-03-09": 5}}


def test_a_cap_in_all_bounds_the_rule_for_good() -> None:
    scoring = model([{"id": "open", "activity_type": "email_opened", "points": 3, "cap_total": 7}])

    state, gained = opens(ScoreState(), scoring, NOW_AT - timedelta(days=20), 2)
    state, later = opens(state, scoring, NOW_AT - timedelta(days=1), 2)

    assert gained + later == [3, 3, 1, 0]
    assert state.caps["open"]["total"] == 7


def test_both_caps_the_lower_wins() -> None:
    scoring = model(
        [
            {
                "id": "open",
                "activity_type": "email_opened",
                "points": 2,
                "cap_per_day": 3,
                "cap_total": 4,
            }
        ]
    )

    state, day_one = opens(ScoreState(), scoring, NOW_AT - timedelta(days=2), 3)
    state, day_two = opens(state, scoring, NOW_AT - timedelta(days=1), 3)

    assert day_one == [2, 1, 0]
    assert day_two == [1, 0, 0]
    assert state.caps["open"] == {"total": 4, "days": {"2026-03-08": 3, "2026-03-09": 1}}
    # (a minute between opens is nothing to a 30-day half-life)
    assert engagement(state) == pytest.approx(3 * 2 ** (-2 / 30) + 1 * 2 ** (-1 / 30), abs=1e-3)


def test_a_capped_rule_does_not_stop_another_rule_of_the_same_activity() -> None:
    scoring = model()
    url = "https://x.example/pricing"
    state = ScoreState()
    gained = []
    for n in range(4):
        click = activity("email_clicked", NOW_AT - timedelta(minutes=n + 1), url=url)
        state, earned = earn(state, scoring, click, NOW)
        gained.append({e.rule_id: e.points for e in earned})

    assert gained == [
        {"email-clicked": 5, "pricing-clicked": 10},
        {"email-clicked": 5},
        {"email-clicked": 5},
        {},
    ]


def test_cap_days_are_kept_for_a_week_only() -> None:
    scoring = model(
        [{"id": "open", "activity_type": "email_opened", "points": 1, "cap_per_day": 1}]
    )
    state = ScoreState()
    for day in range(10, 0, -1):
        state, _ = opens(state, scoring, NOW_AT - timedelta(days=day), 1)

    days = state.caps["open"]["days"]
    assert len(days) == CAP_DAYS_KEPT
    assert min(days) == "2026-03-03"
    assert state.caps["open"]["total"] == 10


def test_late_activities_of_an_old_day_are_capped_as_a_day_of_their_own() -> None:
    scoring = model(
        [{"id": "open", "activity_type": "email_opened", "points": 1, "cap_per_day": 3}]
    )
    state = ScoreState()
    for day in range(CAP_DAYS_KEPT, 0, -1):  # a week of opens: every kept day is taken
        state, _ = opens(state, scoring, NOW_AT - timedelta(days=day), 1)

    # Opens of a day before that week arrive late (a provider's backlog, say).
    state, late = opens(state, scoring, NOW_AT - timedelta(days=10), 5)

    assert sum(late) == 3


def test_a_future_dated_activity_counts_from_now() -> None:
    scoring = model(
        [{"id": "meeting", "activity_type": "meeting", "points": 20, "cap_per_day": 20}]
    )
    next_week = NOW_AT + timedelta(days=7)

    state, earned = earn(ScoreState(), scoring, activity("meeting", next_week), NOW)

    assert earned == [Earned("meeting", 20)]
    assert engagement(state) == pytest.approx(20)  # not 20 * 2 ** (7 / 30)
    assert state.caps["meeting"]["days"] == {"2026-03-10": 20}  # today's cap, not next week's


def test_earn_keeps_the_fit_and_what_other_rules_earned() -> None:
    scoring = model()
    start = ScoreState(fit=12, fit_rules={"has-title": 2, "senior-title": 10}, model_version=1)
    state, _ = earn(start, scoring, activity("call", outcome="connected"), NOW)
    state, _ = earn(state, scoring, activity("form_submission"), NOW)

    assert state.total_at(NOW) == pytest.approx(12 + 10 + 15)
    assert dict(state.fit_rules) == {"has-title": 2, "senior-title": 10}
    assert state.rule_points_at(NOW) == pytest.approx(
        {"has-title": 2, "senior-title": 10, "call-connected": 10, "form-submitted": 15}
    )


# fit_of / holds ---------------------------------------------------------------------------------
CONTACT: dict[str, Any] = {
    "title": "VP of Sales",
    "country": "GB",
    "lifecycle_stage": "lead",
    "tags": ["webinar", "vip"],
    "company_id": "01JCOMPANY0000000000000000",
    "email": "ada@Engines.example",
    "email_consent": "subscribed",
    "first_name": "",
    "owner_id": None,
    "attributes": {
        "seats": 50,
        "budget": "12000.5",
        "plan": "Pro",
        "trial": True,
        "regions": ["EU", "US"],
        "empty": "",
        "none": [],
        "label": "n/a",
    },
}


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        # eq: strings without regard to case; other values as they are
        ("country", "eq", "gb", True),
        ("country", "eq", "US", False),
        ("title", "eq", "vp of sales", True),
        ("attributes.plan", "eq", "PRO", True),
        ("attributes.seats", "eq", 50, True),
        ("attributes.seats", "eq", 50.0, True),
        ("attributes.seats", "eq", "50", False),
        ("attributes.trial", "eq", True, True),
        ("attributes.trial", "eq", False, False),
        ("attributes.seats", "eq", True, False),
        ("attributes.missing", "eq", "x", False),
        # in: any of the values
        ("country", "in", ["us", "gb"], True),
        ("country", "in", ["US", "CA"], False),
        ("lifecycle_stage", "in", ["LEAD", "mql"], True),
        # contains: text, without regard to case
        ("title", "contains", "vp", True),
        ("title", "contains", "sales", True),
        ("title", "contains", "CEO", False),
        ("attributes.seats", "contains", "5", False),
        ("owner_id", "contains", "x", False),
        # exists: something other than nothing, an empty text or an empty list
        ("title", "exists", None, True),
        ("company_id", "exists", None, True),
        ("owner_id", "exists", None, False),
        ("first_name", "exists", None, False),
        ("last_name", "exists", None, False),
        ("attributes.empty", "exists", None, False),
        ("attributes.none", "exists", None, False),
        ("attributes.regions", "exists", None, True),
        ("attributes.trial", "exists", None, True),
        ("attributes.missing", "exists", None, False),
        # gte, lte: numbers, numeric text included
        ("attributes.seats", "gte", 50, True),
        ("attributes.seats", "gte", 51, False),
        ("attributes.seats", "lte", 50, True),
        ("attributes.seats", "lte", 49.5, False),
        ("attributes.budget", "gte", 12000, True),
        ("attributes.budget", "lte", 12000, False),
        ("attributes.budget", "lte", 12000.5, True),
        ("attributes.label", "gte", 0, False),
        ("attributes.trial", "gte", 0, False),
        ("attributes.missing", "lte", 10, False),
        ("country", "lte", 10, False),
        # lists: any member
        ("tags", "eq", "VIP", True),
        ("tags", "eq", "customer", False),
        ("tags", "in", ["customer", "webinar"], True),
        ("tags", "contains", "web", True),
        ("tags", "exists", None, True),
        ("attributes.regions", "eq", "eu", True),
        # the email's domain
        ("email_domain", "eq", "engines.example", True),
        ("email_domain", "in", ["ENGINES.EXAMPLE", "acme.example"], True),
        ("email_domain", "contains", "engines", True),
        ("email_domain", "eq", "ada@engines.example", False),
        ("email_domain", "exists", None, True),
        ("email_consent", "eq", "SUBSCRIBED", True),
    ],
)
def test_holds(field: str, operator: str, value: Any, expected: bool) -> None:
    assert holds(fit_rule(field, operator, value), CONTACT) is expected


def test_an_empty_tag_list_and_a_contact_without_email() -> None:
    bare = {"tags": [], "phone": "+441234567890"}
    assert not holds(fit_rule("tags", "exists"), bare)
    assert not holds(fit_rule("tags", "eq", "vip"), bare)
    assert not holds(fit_rule("email_domain", "exists"), bare)
    assert field_value(bare, "email_domain") is None
    assert field_value({"attributes": None}, "attributes.x") is None


def test_fit_of_gives_the_rules_that_hold_with_their_points() -> None:
    scoring = model(
        fit=[
            {"id": "has-title", "field": "title", "operator": "exists", "points": 2},
            {"id": "vp", "field": "title", "operator": "contains", "value": "VP", "points": 10},
            {
                "id": "big",
                "field": "attributes.seats",
                "operator": "gte",
                "value": 100,
                "points": 7,
            },
            {"id": "british", "field": "country", "operator": "in", "value": ["GB"], "points": 4},
            {
                "id": "lead",
                "field": "lifecycle_stage",
                "operator": "eq",
                "value": "lead",
                "points": -3,
            },
        ]
    )
    assert fit_of(scoring, CONTACT) == {"has-title": 2, "vp": 10, "british": 4, "lead": -3}
    assert fit_of(scoring, {"lifecycle_stage": "mql"}) == {}


# refit -----------------------------------------------------------------------------------------
def test_refit_of_a_contact_never_scored_scores_it_even_with_no_fit() -> None:
    scoring = model()
    state, reasons = refit(ScoreState(), {"lifecycle_stage": "lead"}, scoring, NOW)
    assert reasons == []
    assert (state.fit, dict(state.fit_rules), state.seq) == (0, {}, 1)


def test_refit_with_the_same_rules_holding_changes_nothing() -> None:
    scoring = model()
    start = ScoreState(fit=12, fit_rules={"has-title": 2, "senior-title": 10}, model_version=0)
    state, reasons = refit(start, {"title": "VP Sales"}, scoring, NOW)
    assert state is start
    assert reasons == []


def test_refit_names_the_rules_gained_and_lost() -> None:
    scoring = model()
    start = ScoreState(
        fit=7,
        fit_rules={"has-title": 2, "has-company": 5},
        model_version=0,
        engagement=decay.add(decay.NONE, 10, NOW, 30),
        half_life_days=30,
        seq=4,
    )

    state, reasons = refit(start, {"title": "VP Sales"}, scoring, NOW)

    assert sorted(reasons, key=lambda e: e.rule_id) == [
        Earned("has-company", -5),
        Earned("senior-title", 10),
    ]
    assert (state.fit, dict(state.fit_rules)) == (12, {"has-title": 2, "senior-title": 10})
    assert state.engagement == start.engagement
    assert state.seq == 5


# crossed -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (0, 39.99, None),
        (0, 40, "mql"),
        (39.99, 40, "mql"),
        (10, 79.99, "mql"),
        (39, 80, "sql"),
        (0, 500, "sql"),
        (40, 79, None),
        (45, 80, "sql"),
        (80, 120, None),
        (90, 10, None),
        (50, 30, None),
        (40, 40, None),
        (-20, 41, "mql"),
    ],
)
def test_crossed_names_the_highest_threshold_risen_across(
    old: float, new: float, expected: str | None
) -> None:
    assert crossed(model(), old, new) == expected


def test_crossed_compares_scores_as_shown_to_2_decimals() -> None:
    # 15 + 25 earned seconds apart is 39.9999... now: shown as 40, it has reached 40.
    assert crossed(model(), 14.99, 39.9999) == "mql"
    assert crossed(model(), 0, 39.996) == "mql"
    assert crossed(model(), 0, 39.994) is None
    # A score already shown as 40 crosses nothing by rising further.
    assert crossed(model(), 39.996, 45) is None


def test_crossed_follows_the_models_thresholds() -> None:
    scoring = model(thresholds={"mql": 10, "sql": 20})
    assert crossed(scoring, 5, 15) == "mql"
    assert crossed(scoring, 5, 25) == "sql"
    assert crossed(model(), 5, 25) is None
