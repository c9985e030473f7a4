"""Tables of bad requests: each row is a request a route must refuse with a problem+json
status, leaving the table exactly as it was. `{name}` in a row's path, body, query or
headers names an object of the test's world (ids, cursors), filled in at run time."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.api import Api, User
from tests.support.checks import assert_problem, table_items


@dataclass(frozen=True)
class Row:
    """One bad request. `{name}` in the path, body, query or headers names a world object."""

    id: str
    method: str
    path: str
    status: int
    body: Any = None
    raw: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    user: str = "admin"
    loc: str | None = None  # the field a 422's `errors` must name


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def cursor(list_name: str, key: Mapping[str, str]) -> str:
    """A cursor in the server's own format, so only its content is wrong."""
    return b64(json.dumps({"l": list_name, "k": dict(key)}).encode())


def fill(value: Any, names: Mapping[str, str]) -> Any:
    """`value` with each `{name}` replaced by the world's object of that name."""
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    if isinstance(value, dict):
        return {fill(k, names): fill(v, names) for k, v in value.items()}
    return value


def next_cursor(api: Api, path: str, user: User, query: dict[str, str] | None = None) -> str:
    """A real cursor of the list at `path` (its first page of one item)."""
    reply = api.call("GET", path, user, query={**(query or {}), "limit": "1"})
    assert reply.status == 200, reply.text
    assert reply.json["next_cursor"], reply.text
    return str(reply.json["next_cursor"])


def assert_refused(
    api: Api, table: Any, users: Mapping[str, User | None], world: Mapping[str, str], row: Row
) -> None:
    """The row's request is refused as the row says, and nothing in the table changed."""
    before = table_items(table)
    reply = api.call(
        row.method,
        fill(row.path, world),
        users[row.user],
        fill(row.body, world),
        raw_body=row.raw,
        query=fill(dict(row.query), world) or None,
        headers=fill(dict(row.headers), world) or None,
    )
    assert_problem(reply, row.status, field=row.loc)
    assert table_items(table) == before
