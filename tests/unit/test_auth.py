"""Who is calling: groups into roles, claims into a principal, or a clear 401."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.auth import (
    PERMISSIONS,
    TENANT_ID_PATTERN,
    Action,
    Principal,
    Role,
    parse_groups,
    principal_from_claims,
)
from crm_core.errors import Forbidden, Unauthorized
from tests.unit.strategies import tenant_ids

ROLE_NAMES = [r.value for r in Role]
junk_names = st.from_regex(r"[a-z][a-z_-]{0,10}", fullmatch=True).filter(
    lambda n: n not in ROLE_NAMES
)


@given(st.lists(st.sampled_from(ROLE_NAMES) | junk_names, max_size=8))
def test_groups_in_every_shape_give_the_known_roles(names: list[str]) -> None:
    expected = frozenset(Role(n) for n in names if n in ROLE_NAMES)
    assert parse_groups(names) == expected
    assert parse_groups(tuple(names)) == expected
    assert parse_groups("[" + " ".join(names) + "]") == expected
    assert parse_groups(", ".join(names)) == expected
    assert parse_groups(" ".join(names)) == expected


@pytest.mark.parametrize(
    ("raw", "roles"),
    [
        (None, set()),
        ("", set()),
        ("[]", set()),
        ("[admin]", {Role.ADMIN}),
        ("[sales viewer]", {Role.SALES, Role.VIEWER}),
        (["marketing", "Admin", "root"], {Role.MARKETING}),
        (42, set()),
    ],
)
def test_group_examples(raw: Any, roles: set[Role]) -> None:
    assert parse_groups(raw) == roles


def claims(**overrides: Any) -> dict[str, Any]:
    base = {"sub": "3f5c1e9a", "custom:tenant_id": "acme", "cognito:groups": "[sales]"}
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


def test_a_valid_token() -> None:
    principal = principal_from_claims(claims())
    assert principal == Principal("acme", "3f5c1e9a", frozenset({Role.SALES}))


@given(tenant_ids)
def test_any_valid_tenant_is_accepted(tenant: str) -> None:
    assert principal_from_claims(claims(**{"custom:tenant_id": tenant})).tenant_id == tenant


@given(st.text(max_size=80) | st.integers() | st.none() | st.lists(st.text(max_size=5)))
def test_an_invalid_tenant_is_401(tenant: Any) -> None:
    if isinstance(tenant, str) and re.match(TENANT_ID_PATTERN, tenant):
        return
    with pytest.raises(Unauthorized):
        principal_from_claims(claims(**{"custom:tenant_id": tenant}))


@pytest.mark.parametrize("tenant", ["", "acme corp", "acme#2", "T#acme", "../x", "a" * 65, "-x"])
def test_tenant_examples_refused(tenant: str) -> None:
    with pytest.raises(Unauthorized):
        principal_from_claims(claims(**{"custom:tenant_id": tenant}))


@pytest.mark.parametrize("sub", ["", None, 7])
def test_a_token_without_subject_is_401(sub: Any) -> None:
    with pytest.raises(Unauthorized):
        principal_from_claims({**claims(), "sub": sub} if sub is not None else claims(sub=None))


@pytest.mark.parametrize("raw", [None, {}])
def test_no_claims_is_401(raw: Any) -> None:
    with pytest.raises(Unauthorized):
        principal_from_claims(raw)


json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=30)


@given(
    st.dictionaries(
        st.sampled_from(["sub", "custom:tenant_id", "cognito:groups", "x"]),
        json_scalars | st.lists(json_scalars, max_size=3),
    )
)
def test_any_claims_give_a_principal_or_401(raw: dict[str, Any]) -> None:
    try:
        principal = principal_from_claims(raw)
    except Unauthorized:
        return
    assert re.match(TENANT_ID_PATTERN, principal.tenant_id)
    assert principal.user_id


@pytest.mark.parametrize("role", list(Role))
def test_require_follows_the_permission_table(role: Role) -> None:
    principal = Principal("acme", "u", frozenset({role}))
    for action in Action:
        if action in PERMISSIONS[role]:
            principal.require(action)
        else:
            with pytest.raises(Forbidden):
                principal.require(action)


def test_no_role_may_do_nothing() -> None:
    nobody = Principal("acme", "u", frozenset())
    assert not any(nobody.can(action) for action in Action)
