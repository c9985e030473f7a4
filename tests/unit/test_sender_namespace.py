"""Sender namespaces on the shared domain: a tenant's addresses are `<tenant lower-cased>.<x>@`
the domain itself, and no address is in two tenants' namespaces unless their ids differ only
in case (which the table's claim settles)."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from crm_core.campaigns.sender_namespace import in_namespace, namespace, on_shared_domain
from tests.unit.strategies import tenant_ids

DOMAIN = "mail.example.com"
local_tails = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True)


@given(tenant_ids, local_tails)
def test_a_tenants_addresses_are_in_its_namespace(tenant: str, tail: str) -> None:
    assert in_namespace(f"{tenant.lower()}.{tail}@{DOMAIN}", tenant, DOMAIN)
    assert in_namespace(f"{tenant}.{tail}@{DOMAIN.upper()}", tenant, DOMAIN)  # as typed


@given(tenant_ids, tenant_ids, local_tails)
def test_no_address_is_in_two_namespaces(a: str, b: str, tail: str) -> None:
    assume(namespace(a) != namespace(b))
    address = f"{namespace(a)}.{tail}@{DOMAIN}"
    assert not in_namespace(address, b, DOMAIN)


def test_what_is_outside_the_namespace() -> None:
    for address in (
        f"acme@{DOMAIN}",  # the bare tenant id
        f"acme.@{DOMAIN}",
        f"acmecorp.news@{DOMAIN}",  # a longer id's prefix
        f"news.acme@{DOMAIN}",
        f"acme.news@eu.{DOMAIN}",  # a subdomain: no namespace there
        "acme.news@example.com",  # the parent domain
        f"acme.news@x{DOMAIN}",
    ):
        assert not in_namespace(address, "Acme", DOMAIN), address


def test_the_shared_domain_covers_its_subdomains_only() -> None:
    assert on_shared_domain(DOMAIN, DOMAIN)
    assert on_shared_domain(f"eu.{DOMAIN}", DOMAIN)
    assert not on_shared_domain(f"x{DOMAIN}", DOMAIN)
    assert not on_shared_domain("example.com", DOMAIN)
