"""What the integration tests assert again and again: problem+json bodies, the table's items."""

from __future__ import annotations

from typing import Any

from tests.support.api import Reply

PROBLEM_JSON = "application/problem+json"


def table_items(table: Any) -> list[dict[str, Any]]:
    """Every item of the table, in key order. A Scan, allowed in tests only: it proves what a
    call wrote, so it runs outside any counted calls."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": table.name, "ConsistentRead": True}
    while True:
        page = table.client.scan(**params)
        items += page.get("Items", [])
        if not page.get("LastEvaluatedKey"):
            break
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(items, key=lambda item: (item["PK"]["S"], item["SK"]["S"]))


def tenant_items(table: Any, tenant_id: str) -> list[dict[str, Any]]:
    """The items of one tenant: every partition key starts with `T#<tenant>#`."""
    prefix = f"T#{tenant_id}#"
    return [item for item in table_items(table) if item["PK"]["S"].startswith(prefix)]


def assert_problem(reply: Reply, status: int, *, field: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem with `status`; for a 422, `errors` of {loc, msg}, naming `field`."""
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.text}"
    media = reply.headers.get("content-type", "").split(";")[0].strip()
    assert media == PROBLEM_JSON, f"content-type {media!r}: {reply.text}"
    body = reply.json
    assert isinstance(body, dict), reply.text
    assert isinstance(body.get("type"), str), body
    assert body["type"].startswith("https://"), body
    assert isinstance(body.get("title"), str), body
    assert body["title"], body
    assert body.get("status") == status, body
    assert isinstance(body.get("detail"), str), body
    assert body["detail"], body
    if status == 422:
        errors = body.get("errors")
        assert isinstance(errors, list), body
        assert errors, body
        for error in errors:
            assert set(error) == {"loc", "msg"}, error
            assert isinstance(error["loc"], list), error
            assert isinstance(error["msg"], str), error
            assert error["msg"], error
        if field is not None:
            assert any(field in error["loc"] for error in errors), (field, errors)
    return body
