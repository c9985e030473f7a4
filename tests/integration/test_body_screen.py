"""Bodies Python's json reads but no client should send are a 400 on every route that takes
a body, before the role check: nesting deeper than the screen's bound (or than Python's
recursion limit), integers past Python's digit limit, and what RFC 8259 does not allow at
all (NaN, Infinity) or cannot hold (1e400). Nothing is written, and nothing is a 5xx.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from crm_core.ids import new_ulid
from crm_core.strict_json import MAX_DEPTH
from tests.support.api import Api, User
from tests.support.checks import assert_problem, table_items

# A viewer may write nothing: a 400 for these users proves the body is refused before the
# route looks at roles (and the admin proves it is not a permission answer either).
ADMIN = User("acme", ("admin",))
VIEWER = User("acme", ("viewer",))
WRITES = ("POST", "PUT", "PATCH")


def _nested(depth: int) -> str:
    """An object `depth` levels deep: {"a": {"a": ... {} ...}}."""
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


BODIES: list[tuple[str, str, str]] = [
    # (id, body, what the problem's detail must say)
    ("arrays-30000-deep", "[" * 30_000 + "]" * 30_000, f"deeper than {MAX_DEPTH}"),
    ("objects-12000-deep", '{"":' * 12_000 + "1" + "}" * 12_000, f"deeper than {MAX_DEPTH}"),
    ("unclosed-30000-deep", "[" * 30_000, f"deeper than {MAX_DEPTH}"),
    ("one-level-too-deep", _nested(MAX_DEPTH + 1), f"deeper than {MAX_DEPTH}"),
    ("integer-of-5000-digits", '{"email": "a@example.com", "x": ' + "9" * 5000 + "}", "digits"),
    ("nan", '{"email": "a@example.com", "attributes": {"x": NaN}}', "NaN"),
    ("infinity", '{"name": "x", "filter": {"min_score": Infinity}}', "Infinity"),
    ("minus-infinity", '{"name": "x", "filter": {"max_score": -Infinity}}', "Infinity"),
    ("overflow-to-infinity", '{"email": "a@example.com", "attributes": {"x": 1e400}}', "1e400"),
    ("negative-overflow", '{"email": "a@example.com", "attributes": {"x": -2e308}}', "large"),
]


@pytest.fixture
def routes(
    api: Api, activity_api: Api, lead_api: Api, scoring_api: Api, campaigns_api: Api
) -> list[tuple[Api, str, str]]:
    """(function, method, path) of every route of the API functions that takes a body, its
    path parameters filled with fresh ids (the screen runs before any path is read)."""
    found = []
    for function in (api, activity_api, lead_api, scoring_api, campaigns_api):
        for method, path, _ in function.routes:
            if method in WRITES:
                filled = path
                while "{" in filled:
                    start, end = filled.index("{"), filled.index("}")
                    filled = filled[:start] + new_ulid() + filled[end + 1 :]
                found.append((function, method, filled))
    return found


@pytest.mark.parametrize(
    ("body", "detail"), [(b, d) for _, b, d in BODIES], ids=[i for i, *_ in BODIES]
)
def test_bodies_python_reads_but_no_client_sends_are_400_on_every_route(
    routes: list[tuple[Api, str, str]], table: Any, body: str, detail: str
) -> None:
    assert len(routes) >= 20  # every write route of five functions
    before = table_items(table)
    for function, method, path in routes:
        for user in (VIEWER, ADMIN):
            reply = function.call(method, path, user, raw_body=body)
            problem = assert_problem(reply, 400)
            assert detail in problem["detail"], (method, path, problem)
    assert table_items(table) == before


def test_the_depth_bound_is_what_the_detail_says(api: Api, table: Any) -> None:
    """At the bound the screen lets the body through (the model then judges it: an unknown
    field here); one level more is the screen's 400."""
    at_bound = '{"email": "a@example.com", "attributes": ' + _nested(MAX_DEPTH - 1) + "}"
    assert_problem(api.call("POST", "/contacts", ADMIN, raw_body=at_bound), 422, field="attributes")
    over = '{"email": "a@example.com", "attributes": ' + _nested(MAX_DEPTH) + "}"
    problem = assert_problem(api.call("POST", "/contacts", ADMIN, raw_body=over), 400)
    assert problem["detail"] == f"the body is nested deeper than {MAX_DEPTH} levels"
    assert table_items(table) == []


def test_ordinary_numbers_still_pass(api: Api) -> None:
    """The screen's number rules refuse nothing a client means: large, small and negative
    finite numbers, and exponents, reach the model as they are."""
    body = {
        "email": "n@example.com",
        "attributes": {"big": 2**53, "tiny": 1e-15, "neg": -1.5e14, "exp": 1e10, "zero": -0.0},
    }
    reply = api.call("POST", "/contacts", ADMIN, raw_body=json.dumps(body))
    assert reply.status == 201, reply.text
    assert reply.json["attributes"] == body["attributes"]
