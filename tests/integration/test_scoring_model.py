"""GET and PUT /scoring/model: the default out of the box, versions kept, roles, If-Match."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from crm_core import keys
from crm_core.scoring.models import DEFAULT_MODEL
from tests.support.api import Api, User

ADMIN = User("acme", ("admin",))
MARKETING = User("acme", ("marketing",))


def edited(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(DEFAULT_MODEL), **changes}


def test_a_tenant_starts_with_the_default_model(scoring_api: Api) -> None:
    reply = scoring_api.call("GET", "/scoring/model", User("acme", ("viewer",)))
    assert reply.status == 200, reply.text
    model = reply.json
    assert model["version"] == 0
    assert model["is_default"] is True
    assert reply.headers["etag"] == '"0"'
    assert model["half_life_days"] == DEFAULT_MODEL["half_life_days"]
    assert [r["id"] for r in model["fit"]] == [r["id"] for r in DEFAULT_MODEL["fit"]]
    assert model["thresholds"] == DEFAULT_MODEL["thresholds"]
    assert [r["id"] for r in model["behaviour"]] == [r["id"] for r in DEFAULT_MODEL["behaviour"]]


def test_each_put_is_a_new_version_and_old_ones_stay_readable(scoring_api: Api, table: Any) -> None:
    first = scoring_api.call("PUT", "/scoring/model", MARKETING, edited(half_life_days=14))
    assert first.status == 200, first.text
    assert (first.json["version"], first.json["is_default"]) == (1, False)
    assert first.json["updated_by"] == MARKETING.sub
    second = scoring_api.call(
        "PUT",
        "/scoring/model",
        ADMIN,
        edited(thresholds={"mql": 30, "sql": 60}),
        headers={"If-Match": '"1"'},
    )
    assert second.status == 200, second.text
    assert second.json["version"] == 2
    assert second.headers["etag"] == '"2"'
    current = scoring_api.call("GET", "/scoring/model", ADMIN).json
    assert current["thresholds"] == {"mql": 30, "sql": 60}
    assert current["half_life_days"] == 30
    past = scoring_api.call("GET", "/scoring/model", ADMIN, query={"version": "1"}).json
    assert past["half_life_days"] == 14
    assert past["version"] == 1
    default = scoring_api.call("GET", "/scoring/model", ADMIN, query={"version": "0"}).json
    assert default["is_default"] is True
    missing = scoring_api.call("GET", "/scoring/model", ADMIN, query={"version": "9"})
    assert missing.status == 404
    # Each version put its ScoringModelChanged in the outbox, beside the model.
    events = table.query_all(None, keys.scoring_model("acme")["PK"], sort_below="OUTBOX$")
    changed = [json.loads(e["detail"]) for e in events if e.get("type") == "outbox_event"]
    assert sorted(e["data"]["version"] for e in changed) == [1, 2]
    assert {e["data"]["previous_version"] for e in changed} == {0, 1}


def test_a_stale_if_match_is_412_and_changes_nothing(scoring_api: Api) -> None:
    assert scoring_api.call("PUT", "/scoring/model", ADMIN, edited()).status == 200
    stale = scoring_api.call(
        "PUT", "/scoring/model", ADMIN, edited(half_life_days=7), headers={"If-Match": '"0"'}
    )
    assert stale.status == 412
    assert scoring_api.call("GET", "/scoring/model", ADMIN).json["version"] == 1


@pytest.mark.parametrize("role", ["sales", "support", "viewer"])
def test_only_admins_and_marketing_change_the_model(scoring_api: Api, role: str) -> None:
    reply = scoring_api.call("PUT", "/scoring/model", User("acme", (role,)), edited())
    assert reply.status == 403
    assert scoring_api.call("GET", "/scoring/model", ADMIN).json["version"] == 0


def test_tenants_have_their_own_models(scoring_api: Api) -> None:
    assert scoring_api.call("PUT", "/scoring/model", ADMIN, edited(half_life_days=9)).status == 200
    other = scoring_api.call("GET", "/scoring/model", User("globex", ("admin",))).json
    assert (other["version"], other["half_life_days"]) == (0, 30)
    past = scoring_api.call(
        "GET", "/scoring/model", User("globex", ("admin",)), query={"version": "1"}
    )
    assert past.status == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        edited(half_life_days=0),
        edited(thresholds={"mql": 50, "sql": 50}),
        edited(behaviour=[{"id": "x", "activity_type": "note", "points": 0}]),
        edited(fit=[{"id": "x", "field": "password", "operator": "exists", "points": 1}]),
        edited(version=5),
        edited(score=10),
    ],
)
def test_bad_models_are_422_and_change_nothing(scoring_api: Api, body: dict[str, Any]) -> None:
    reply = scoring_api.call("PUT", "/scoring/model", ADMIN, body)
    assert reply.status == 422, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json["errors"]
    assert scoring_api.call("GET", "/scoring/model", ADMIN).json["version"] == 0


def test_malformed_json_is_400(scoring_api: Api) -> None:
    reply = scoring_api.call("PUT", "/scoring/model", ADMIN, raw_body="{not json")
    assert reply.status == 400
