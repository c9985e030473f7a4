"""Campaign templates that could exhaust a function's memory, over the HTTP API: refused
when saved (422 naming what to change, never a 500), and a campaign saved before they were
refused cannot be scheduled or sent until its template is fixed
(crm_core/campaigns/templates.py; its unit tests hold the attack templates)."""

from __future__ import annotations

from typing import Any

from crm_core import keys
from tests.integration.test_campaigns_api import (  # noqa: F401 - a fixture
    ADMIN,
    CONTENT,
    TENANT,
    _campaign,
    scene,
)
from tests.support.api import Api
from tests.support.checks import assert_problem, table_items

WIDE = '<p>{{ "%020000000d" | format(1) }}</p>'  # 20 MB of zeros, 40 times the cap
DEEP = "{{ " + "(" * 10_000 + "first_name" + ")" * 10_000 + " }}"


def _set_html(table: Any, campaign_id: str, html: str) -> None:
    """What an older version of the API let a campaign keep."""
    table.client.update_item(
        TableName=table.name,
        Key={k: {"S": v} for k, v in keys.campaign_content(TENANT, campaign_id).items()},
        UpdateExpression="SET html = :h",
        ExpressionAttributeValues={":h": {"S": html}},
    )


def test_a_template_that_sizes_its_output_is_a_422_naming_the_filter(
    campaigns_api: Api,
    scene: dict[str, Any],  # noqa: F811 - the fixture imported above
    table: Any,
) -> None:
    campaign = _campaign(campaigns_api, scene["segment_id"])
    before = table_items(table)
    body = {"name": "x", "segment_id": scene["segment_id"], **CONTENT, "html": WIDE}
    for reply in (
        campaigns_api.call("POST", "/campaigns", ADMIN, body),
        campaigns_api.call("PATCH", f"/campaigns/{campaign['id']}", ADMIN, {"html": WIDE}),
    ):
        problem = assert_problem(reply, 422)
        (error,) = problem["errors"]
        assert error["loc"] == ["body", "html"]
        assert "the filter 'format'" in error["msg"]
        assert "truncate" in error["msg"]  # the filters a template may use
    assert table_items(table) == before


def test_a_template_nested_ten_thousand_deep_is_a_422_not_a_500(
    campaigns_api: Api,
    scene: dict[str, Any],  # noqa: F811 - the fixture imported above
) -> None:
    body = {"name": "x", "segment_id": scene["segment_id"], **CONTENT, "html": DEEP}
    problem = assert_problem(campaigns_api.call("POST", "/campaigns", ADMIN, body), 422)
    assert problem["errors"][0]["loc"] == ["body", "html"]
    assert "nests too deeply" in problem["detail"]


def test_a_campaign_saved_with_a_template_now_refused_is_sent_once_it_is_fixed(
    campaigns_api: Api,
    scene: dict[str, Any],  # noqa: F811 - the fixture imported above
    table: Any,
) -> None:
    campaign = _campaign(campaigns_api, scene["segment_id"])
    path = f"/campaigns/{campaign['id']}"
    _set_html(table, campaign["id"], "<p>{{ first_name | center(40) }}</p>")
    before = table_items(table)

    problem = assert_problem(campaigns_api.call("POST", f"{path}/send", ADMIN), 422)
    html_errors = [e for e in problem["errors"] if e["loc"] == ["campaign", "html"]]
    assert len(html_errors) == 1, problem
    assert "the filter 'center'" in html_errors[0]["msg"]
    assert "remove it" in html_errors[0]["msg"]
    assert table_items(table) == before

    fixed = campaigns_api.call("PATCH", path, ADMIN, {"html": "<p>{{ first_name }}</p>"})
    assert fixed.status == 200, fixed.text
    assert campaigns_api.call("GET", path, ADMIN).json["html"] == "<p>{{ first_name }}</p>"
    sent = campaigns_api.call("POST", f"{path}/send", ADMIN)
    assert sent.status == 202, sent.text
