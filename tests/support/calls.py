"""Short forms of the API calls tests make to set the scene: each asserts it succeeded."""

from __future__ import annotations

from typing import Any

from tests.support.api import Api, User


def create(api: Api, path: str, user: User, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """POST `body` and return the created object (the call must answer 201)."""
    reply = api.call("POST", path, user, body, **kw)
    assert reply.status == 201, reply.text
    created: dict[str, Any] = reply.json
    return created


def get(api: Api, path: str, user: User, **kw: Any) -> Any:
    reply = api.call("GET", path, user, **kw)
    assert reply.status == 200, reply.text
    return reply.json


def patch(api: Api, path: str, user: User, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    reply = api.call("PATCH", path, user, body, **kw)
    assert reply.status == 200, reply.text
    changed: dict[str, Any] = reply.json
    return changed


def walk(
    api: Api, path: str, user: User, query: dict[str, str] | None = None, limit: int = 2
) -> list[list[dict[str, Any]]]:
    """Every page of a list, following `next_cursor` until it is null."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        params = {**(query or {}), "limit": str(limit)}
        if cursor:
            params["cursor"] = cursor
        page = get(api, path, user, query=params)
        assert set(page) == {"items", "next_cursor"}, page
        assert len(page["items"]) <= limit, page
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 1000, "the cursor never ends"


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]
