"""Bad input of every kind gets a clear 4xx problem+json, and writes nothing.

One table: each row is a request a client could send and the status it must get. Every
row also proves that the table holds exactly the same items after the call as before it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from crm_core.ids import new_ulid
from tests.support.api import Api, User
from tests.support.bad_inputs import Row, assert_refused, b64, cursor, next_cursor

USERS: dict[str, User | None] = {
    "admin": User("acme", ("admin",)),
    "sales": User("acme", ("sales",)),
    "marketing": User("acme", ("marketing",)),
    "viewer": User("acme", ("viewer",)),
    "no-claims": None,
    "no-tenant": User(None),
    "bad-tenant": User("acme corp!"),
    "guest": User("acme", ("guest",)),
}
GLOBEX = User("globex", ("admin",))

NEW = {"email": "new@example.com"}
COMPANY = {"name": "Initech"}
LONG_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com"
assert len(LONG_EMAIL) == 255


SERVER_OWNED = ("id", "tenant_id", "score", "created_at", "updated_at", "version")

ROWS: list[Row] = [
    # Bodies that are not a JSON object -------------------------------------------------
    Row("malformed-json", "POST", "/contacts", 400, raw='{"email": "a@example.com",'),
    Row("malformed-json-patch", "PATCH", "/contacts/{contact}", 400, raw="{title: x}"),
    Row("json-array", "POST", "/contacts", 422, raw='[{"email": "a@example.com"}]'),
    Row("json-string", "POST", "/contacts", 422, raw='"a@example.com"'),
    Row("json-null", "POST", "/contacts", 422, raw="null"),
    Row("json-array-company", "POST", "/companies", 422, raw='[{"name": "Initech"}]'),
    # Wrong types ---------------------------------------------------------------------------
    Row("first-name-int", "POST", "/contacts", 422, {**NEW, "first_name": 5}, loc="first_name"),
    Row("tags-string", "POST", "/contacts", 422, {**NEW, "tags": "x"}, loc="tags"),
    Row(
        "attributes-list", "POST", "/contacts", 422, {**NEW, "attributes": ["a"]}, loc="attributes"
    ),
    Row("email-int", "POST", "/contacts", 422, {"email": 42}, loc="email"),
    Row(
        "lifecycle-unknown",
        "POST",
        "/contacts",
        422,
        {**NEW, "lifecycle_stage": "prospect"},
        loc="lifecycle_stage",
    ),
    Row(
        "consent-unknown",
        "POST",
        "/contacts",
        422,
        {**NEW, "email_consent": "yes"},
        loc="email_consent",
    ),
    Row(
        "company-id-not-ulid",
        "POST",
        "/contacts",
        422,
        {**NEW, "company_id": "acme"},
        loc="company_id",
    ),
    Row(
        "owner-id-invalid",
        "POST",
        "/contacts",
        422,
        {**NEW, "owner_id": "not an id!"},
        loc="owner_id",
    ),
    # Unknown and server-owned fields -----------------------------------------------------
    Row("unknown-field", "POST", "/contacts", 422, {**NEW, "nickname": "Ace"}, loc="nickname"),
    *[
        Row(f"server-owned-{name}", "POST", "/contacts", 422, {**NEW, name: value}, loc=name)
        for name, value in zip(
            SERVER_OWNED,
            (
                "01ARZ3NDEKTSV4RRFFQ69G5FAV",
                "globex",
                99,
                "2020-01-01T00:00:00Z",
                "2020-01-01T00:00:00Z",
                7,
            ),
            strict=True,
        )
    ],
    *[
        Row(
            f"patch-server-owned-{name}",
            "PATCH",
            "/contacts/{contact}",
            422,
            {name: value},
            loc=name,
        )
        for name, value in (("version", 9), ("tenant_id", "globex"), ("score", 100))
    ],
    Row("company-unknown-field", "POST", "/companies", 422, {**COMPANY, "ceo": "Bill"}, loc="ceo"),
    Row(
        "company-server-owned-contact-count",
        "POST",
        "/companies",
        422,
        {**COMPANY, "contact_count": 3},
        loc="contact_count",
    ),
    # Sizes ---------------------------------------------------------------------------------
    Row(
        "first-name-too-long",
        "POST",
        "/contacts",
        422,
        {**NEW, "first_name": "x" * 101},
        loc="first_name",
    ),
    Row(
        "last-name-too-long",
        "POST",
        "/contacts",
        422,
        {**NEW, "last_name": "x" * 101},
        loc="last_name",
    ),
    Row("title-too-long", "POST", "/contacts", 422, {**NEW, "title": "x" * 151}, loc="title"),
    Row("email-too-long", "POST", "/contacts", 422, {"email": LONG_EMAIL}, loc="email"),
    Row("phone-too-long", "POST", "/contacts", 422, {"phone": "1" * 41}, loc="phone"),
    Row(
        "too-many-tags",
        "POST",
        "/contacts",
        422,
        {**NEW, "tags": [f"t{i}" for i in range(21)]},
        loc="tags",
    ),
    Row("tag-too-long", "POST", "/contacts", 422, {**NEW, "tags": ["t" * 51]}, loc="tags"),
    Row("tag-bad-characters", "POST", "/contacts", 422, {**NEW, "tags": ["#vip"]}, loc="tags"),
    Row(
        "too-many-attributes",
        "POST",
        "/contacts",
        422,
        {**NEW, "attributes": {f"a{i}": i for i in range(51)}},
        loc="attributes",
    ),
    Row(
        "attribute-name-digit",
        "POST",
        "/contacts",
        422,
        {**NEW, "attributes": {"1st": "x"}},
        loc="attributes",
    ),
    Row(
        "attribute-name-dash",
        "POST",
        "/contacts",
        422,
        {**NEW, "attributes": {"a-b": "x"}},
        loc="attributes",
    ),
    Row(
        "attribute-name-too-long",
        "POST",
        "/contacts",
        422,
        {**NEW, "attributes": {"a" * 65: "x"}},
        loc="attributes",
    ),
    Row(
        "attribute-value-too-long",
        "POST",
        "/contacts",
        422,
        {**NEW, "attributes": {"bio": "x" * 1001}},
        loc="attributes",
    ),
    Row(
        "attribute-value-nested",
        "POST",
        "/contacts",
        422,
        {**NEW, "attributes": {"address": {"city": "Oslo"}}},
        loc="attributes",
    ),
    Row(
        "attribute-value-list",
        "POST",
        "/contacts",
        422,
        {**NEW, "attributes": {"langs": ["no", "en"]}},
        loc="attributes",
    ),
    # A JSON escape can spell a lone surrogate, which is not UTF-8: DynamoDB refuses it.
    Row(
        "lone-surrogate",
        "POST",
        "/contacts",
        400,
        raw='{"email": "new@example.com", "first_name": "\\ud800"}',
    ),
    # NaN is not JSON (RFC 8259), and no JSON client holds 1e400: the body screen refuses
    # both, so no model ever sees them (DynamoDB stores neither).
    Row(
        "attribute-value-nan",
        "POST",
        "/contacts",
        400,
        raw='{"email": "new@example.com", "attributes": {"x": NaN}}',
    ),
    Row(
        "attribute-value-infinity",
        "POST",
        "/contacts",
        400,
        raw='{"email": "new@example.com", "attributes": {"x": 1e400}}',
    ),
    Row(
        "attribute-value-5000-digits",
        "POST",
        "/contacts",
        400,
        raw='{"email": "new@example.com", "attributes": {"x": ' + "9" * 5000 + "}}",
    ),
    Row("body-30000-deep", "POST", "/contacts", 400, raw="[" * 30_000 + "]" * 30_000),
    Row(
        "patch-body-65-deep",
        "PATCH",
        "/contacts/{contact}",
        400,
        raw='{"attributes": ' + '{"a": ' * 63 + "{}" + "}" * 63 + "}",
    ),
    # DynamoDB stores numbers of at most 38 digits within 1E-130..1E+126.
    Row(
        "attribute-value-huge-int",
        "POST",
        "/contacts",
        422,
        {**NEW, "attributes": {"x": 10**40}},
        loc="attributes",
    ),
    Row(
        "attribute-value-tiny-float",
        "POST",
        "/contacts",
        422,
        {**NEW, "attributes": {"x": 1e-200}},
        loc="attributes",
    ),
    Row(
        "body-over-64-kib",
        "POST",
        "/contacts",
        413,
        raw=json.dumps({**NEW, "first_name": "x" * (64 * 1024)}),
    ),
    # Values ---------------------------------------------------------------------------------
    Row("email-invalid", "POST", "/contacts", 422, {"email": "not-an-email"}, loc="email"),
    Row("email-no-domain-dot", "POST", "/contacts", 422, {"email": "ada@localhost"}, loc="email"),
    Row("email-and-phone-missing", "POST", "/contacts", 422, {"first_name": "Ada"}),
    Row("email-and-phone-null", "POST", "/contacts", 422, {"email": None, "phone": None}),
    Row("country-unknown", "POST", "/contacts", 422, {**NEW, "country": "XX"}, loc="country"),
    Row("country-alpha3", "POST", "/contacts", 422, {**NEW, "country": "USA"}, loc="country"),
    # The schema's exact forms (an enum in capitals, an address without spaces, a tag that
    # starts with a letter or digit, an ASCII domain): what the document refuses, the code does.
    Row("country-lower-case", "POST", "/contacts", 422, {**NEW, "country": "fr"}, loc="country"),
    Row("email-padded", "POST", "/contacts", 422, {"email": " ada@example.com"}, loc="email"),
    Row("tag-padded", "POST", "/contacts", 422, {**NEW, "tags": [" vip"]}, loc="tags"),
    Row(
        "name-blank", "POST", "/contacts", 422, {**NEW, "first_name": " \u3000 "}, loc="first_name"
    ),
    Row(
        "company-id-unknown",
        "POST",
        "/contacts",
        422,
        {**NEW, "company_id": "{missing}"},
        loc="company_id",
    ),
    Row("email-taken", "POST", "/contacts", 409, {"email": "ADA@example.com"}),
    # Media type ----------------------------------------------------------------------------
    Row(
        "content-type-text",
        "POST",
        "/contacts",
        415,
        raw=json.dumps(NEW),
        headers={"content-type": "text/plain"},
    ),
    Row(
        "content-type-form",
        "POST",
        "/contacts",
        415,
        raw="email=new%40example.com",
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    # Idempotency-Key -----------------------------------------------------------------------
    Row(
        "idempotency-key-other-body",
        "POST",
        "/contacts",
        422,
        {"email": "other@example.com"},
        headers={"idempotency-key": "key-1"},
    ),
    Row(
        "idempotency-key-not-ascii",
        "POST",
        "/contacts",
        400,
        NEW,
        headers={"idempotency-key": "clé"},
    ),
    # Cursors and limits ----------------------------------------------------------------------
    Row("cursor-garbage", "GET", "/contacts", 400, query={"cursor": "!!not a cursor!!"}),
    Row(
        "cursor-base64-of-wrong-json",
        "GET",
        "/contacts",
        400,
        query={"cursor": b64(b'{"hello": "world"}')},
    ),
    Row(
        "cursor-base64-of-binary",
        "GET",
        "/contacts",
        400,
        query={"cursor": b64(b"\xff\xfe\x00binary")},
    ),
    Row("cursor-too-long", "GET", "/contacts", 400, query={"cursor": "A" * 3000}),
    Row("cursor-other-tenant", "GET", "/contacts", 400, query={"cursor": "{globex_cursor}"}),
    Row("cursor-other-list", "GET", "/contacts", 400, query={"cursor": "{stage_cursor}"}),
    Row(
        "cursor-companies-to-contacts",
        "GET",
        "/contacts",
        400,
        query={"cursor": "{companies_cursor}"},
    ),
    Row(
        "cursor-contacts-to-companies",
        "GET",
        "/companies",
        400,
        query={"cursor": "{contacts_cursor}"},
    ),
    Row(
        "cursor-other-name-prefix",
        "GET",
        "/companies",
        400,
        query={"name_prefix": "zeta", "cursor": "{companies_cursor}"},
    ),
    Row(
        "cursor-other-tag", "GET", "/contacts", 400, query={"tag": "gold", "cursor": "{tag_cursor}"}
    ),
    Row(
        "cursor-forged-outside-tag",
        "GET",
        "/contacts",
        400,
        query={
            "tag": "vip",
            "cursor": cursor("contacts-by-tag", {"PK": "T#acme#TAG#vip", "SK": "ZZZ"}),
        },
    ),
    Row(
        "cursor-forged-other-tenant-key",
        "GET",
        "/contacts",
        400,
        query={
            "tag": "vip",
            "cursor": cursor("contacts-by-tag", {"PK": "T#globex#TAG#vip", "SK": "C#1"}),
        },
    ),
    # Keys DynamoDB refuses (moto does not): a sort key over 1,024 bytes, a lone surrogate.
    Row(
        "cursor-sort-key-over-1024-bytes",
        "GET",
        "/contacts",
        400,
        query={
            "cursor": cursor(
                "contacts",
                {
                    "GSI1PK": "T#acme#CONTACTS",
                    "GSI1SK": "2026-01-01T00:00:00.000Z#" + "x" * 1000,
                    "PK": "T#acme#C#01ARZ3NDEKTSV4RRFFQ69G5FAV",
                    "SK": "PROFILE",
                },
            )
        },
    ),
    Row(
        "cursor-lone-surrogate",
        "GET",
        "/contacts",
        400,
        query={
            "cursor": cursor(
                "contacts",
                {
                    "GSI1PK": "T#acme#CONTACTS",
                    "GSI1SK": "2026\ud800",
                    "PK": "T#acme#C#01ARZ3NDEKTSV4RRFFQ69G5FAV",
                    "SK": "PROFILE",
                },
            )
        },
    ),
    Row("cursor-nested-deep", "GET", "/contacts", 400, query={"cursor": b64(b"[" * 1536)}),
    # The ranked list's own cursor (crm_core/scores/ranking.py) reads JSON strictly too.
    Row(
        "score-cursor-nested-deep",
        "GET",
        "/contacts",
        400,
        query={"lifecycle_stage": "lead", "sort": "-score", "cursor": b64(b"[" * 1536)},
    ),
    Row(
        "cursor-with-email-filter",
        "GET",
        "/contacts",
        400,
        query={"email": "ada@example.com", "cursor": "{contacts_cursor}"},
    ),
    Row(
        "cursor-company-contacts-garbage",
        "GET",
        "/companies/{company}/contacts",
        400,
        query={"cursor": "%%%"},
    ),
    Row("limit-0", "GET", "/contacts", 422, query={"limit": "0"}, loc="limit"),
    Row("limit-101", "GET", "/contacts", 422, query={"limit": "101"}, loc="limit"),
    Row("limit-abc", "GET", "/contacts", 422, query={"limit": "abc"}, loc="limit"),
    Row("companies-limit-0", "GET", "/companies", 422, query={"limit": "0"}, loc="limit"),
    Row(
        "filter-stage-unknown",
        "GET",
        "/contacts",
        422,
        query={"lifecycle_stage": "hot"},
        loc="lifecycle_stage",
    ),
    Row("filter-email-invalid", "GET", "/contacts", 422, query={"email": "nope"}, loc="email"),
    Row("filter-tag-invalid", "GET", "/contacts", 422, query={"tag": "#vip"}, loc="tag"),
    Row(
        "filter-two-at-once",
        "GET",
        "/contacts",
        400,
        query={"lifecycle_stage": "lead", "tag": "vip"},
    ),
    # ETags ------------------------------------------------------------------------------------
    Row(
        "if-match-stale",
        "PATCH",
        "/contacts/{contact}",
        412,
        {"title": "CTO"},
        headers={"if-match": '"99"'},
    ),
    Row(
        "if-match-malformed",
        "PATCH",
        "/contacts/{contact}",
        400,
        {"title": "CTO"},
        headers={"if-match": "version-1"},
    ),
    Row("if-match-stale-delete", "DELETE", "/contacts/{contact}", 412, headers={"if-match": '"2"'}),
    Row(
        "if-match-stale-merge",
        "POST",
        "/contacts/{contact}/merge",
        412,
        {"from_id": "{other}"},
        headers={"if-match": '"5"'},
    ),
    Row(
        "if-match-stale-company",
        "PATCH",
        "/companies/{company}",
        412,
        {"industry": "Paper"},
        headers={"if-match": '"3"'},
    ),
    # Who is calling ------------------------------------------------------------------------
    Row("no-claims", "POST", "/contacts", 401, NEW, user="no-claims"),
    Row("no-claims-read", "GET", "/contacts", 401, user="no-claims"),
    Row("no-tenant-claim", "POST", "/contacts", 401, NEW, user="no-tenant"),
    Row("invalid-tenant-claim", "POST", "/contacts", 401, NEW, user="bad-tenant"),
    Row("unknown-group", "POST", "/contacts", 403, NEW, user="guest"),
    Row("unknown-group-read", "GET", "/contacts/{contact}", 403, user="guest"),
    Row("viewer-create", "POST", "/contacts", 403, NEW, user="viewer"),
    Row(
        "marketing-patch-title",
        "PATCH",
        "/contacts/{contact}",
        403,
        {"title": "CTO"},
        user="marketing",
    ),
    Row("sales-delete", "DELETE", "/contacts/{contact}", 403, user="sales"),
    # Paths ------------------------------------------------------------------------------------
    Row("path-not-ulid", "GET", "/contacts/not-a-ulid", 422, loc="contact_id"),
    Row(
        "path-lowercase-ulid",
        "PATCH",
        "/contacts/01arz3ndektsv4rrffq69g5fav",
        422,
        {"title": "CTO"},
        loc="contact_id",
    ),
    Row("path-company-not-ulid", "DELETE", "/companies/acme", 422, loc="company_id"),
    Row("path-missing-contact", "PATCH", "/contacts/{missing}", 404, {"title": "CTO"}),
    # PATCH rules ------------------------------------------------------------------------------
    Row("patch-empty", "PATCH", "/contacts/{contact}", 422, {}),
    Row("patch-lifecycle-null", "PATCH", "/contacts/{contact}", 422, {"lifecycle_stage": None}),
    Row("patch-consent-null", "PATCH", "/contacts/{contact}", 422, {"email_consent": None}),
    Row("patch-clears-email-and-phone", "PATCH", "/contacts/{contact}", 422, {"email": None}),
    Row("patch-email-taken", "PATCH", "/contacts/{contact}", 409, {"email": "bob@example.com"}),
    Row(
        "patch-company-unknown",
        "PATCH",
        "/contacts/{contact}",
        422,
        {"company_id": "{missing}"},
        loc="company_id",
    ),
    # Merge --------------------------------------------------------------------------------------
    Row(
        "merge-into-itself",
        "POST",
        "/contacts/{contact}/merge",
        422,
        {"from_id": "{contact}"},
        loc="from_id",
    ),
    Row(
        "merge-from-unknown",
        "POST",
        "/contacts/{contact}/merge",
        422,
        {"from_id": "{missing}"},
        loc="from_id",
    ),
    Row(
        "merge-from-not-ulid",
        "POST",
        "/contacts/{contact}/merge",
        422,
        {"from_id": "bob"},
        loc="from_id",
    ),
    Row("merge-without-from", "POST", "/contacts/{contact}/merge", 422, {}, loc="from_id"),
    # Companies ------------------------------------------------------------------------------------
    Row("company-name-missing", "POST", "/companies", 422, {"domain": "initech.com"}, loc="name"),
    Row("company-name-blank", "POST", "/companies", 422, {"name": "   "}, loc="name"),
    Row("company-name-too-long", "POST", "/companies", 422, {"name": "x" * 201}, loc="name"),
    Row(
        "company-domain-invalid",
        "POST",
        "/companies",
        422,
        {**COMPANY, "domain": "not a domain"},
        loc="domain",
    ),
    Row(
        "company-domain-single-label",
        "POST",
        "/companies",
        422,
        {**COMPANY, "domain": "localhost"},
        loc="domain",
    ),
    Row(
        "company-domain-unicode",
        "POST",
        "/companies",
        422,
        {**COMPANY, "domain": "bücher.example"},
        loc="domain",
    ),
    Row(
        "company-employees-negative",
        "POST",
        "/companies",
        422,
        {**COMPANY, "employee_count": -1},
        loc="employee_count",
    ),
    Row(
        "company-employees-string",
        "POST",
        "/companies",
        422,
        {**COMPANY, "employee_count": "5"},
        loc="employee_count",
    ),
    Row(
        "company-employees-float",
        "POST",
        "/companies",
        422,
        {**COMPANY, "employee_count": 5.5},
        loc="employee_count",
    ),
    Row(
        "company-domain-taken",
        "POST",
        "/companies",
        409,
        {**COMPANY, "domain": "https://www.ACME.com/about"},
    ),
    Row(
        "company-patch-domain-taken", "PATCH", "/companies/{company2}", 409, {"domain": "acme.com"}
    ),
    Row("company-patch-empty", "PATCH", "/companies/{company}", 422, {}),
    Row("company-patch-name-null", "PATCH", "/companies/{company}", 422, {"name": None}),
    Row("company-delete-with-contacts", "DELETE", "/companies/{company}", 409),
    Row("company-missing", "GET", "/companies/{missing}/contacts", 404),
]


def _created(api: Api, path: str, user: User, body: dict[str, Any], **kw: Any) -> str:
    reply = api.call("POST", path, user, body, **kw)
    assert reply.status == 201, reply.text
    return str(reply.json["id"])


@pytest.fixture
def world(api: Api) -> dict[str, str]:
    """Tenant acme with two companies and three contacts, tenant globex with two contacts."""
    admin = USERS["admin"]
    assert admin is not None
    company = _created(api, "/companies", admin, {"name": "Acme", "domain": "acme.com"})
    company2 = _created(api, "/companies", admin, {"name": "Acme Labs"})
    contact = _created(
        api,
        "/contacts",
        admin,
        {"email": "ada@example.com", "company_id": company, "tags": ["vip"]},
    )
    other = _created(api, "/contacts", admin, {"email": "bob@example.com", "tags": ["vip"]})
    _created(
        api,
        "/contacts",
        admin,
        {"email": "keyed@example.com", "tags": ["gold", "vip"]},
        headers={"idempotency-key": "key-1"},
    )
    for email in ("x@globex.example", "y@globex.example"):
        _created(api, "/contacts", GLOBEX, {"email": email})
    return {
        "contact": contact,
        "other": other,
        "company": company,
        "company2": company2,
        "missing": new_ulid(),
        "contacts_cursor": next_cursor(api, "/contacts", admin, {}),
        "stage_cursor": next_cursor(api, "/contacts", admin, {"lifecycle_stage": "lead"}),
        "tag_cursor": next_cursor(api, "/contacts", admin, {"tag": "vip"}),
        "companies_cursor": next_cursor(api, "/companies", admin, {"name_prefix": "acme"}),
        "globex_cursor": next_cursor(api, "/contacts", GLOBEX, {}),
    }


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_is_refused_and_writes_nothing(
    api: Api, table: Any, world: dict[str, str], row: Row
) -> None:
    assert_refused(api, table, USERS, world, row)


def test_the_table_is_large_and_its_ids_unique() -> None:
    assert len(ROWS) >= 40
    assert len({row.id for row in ROWS}) == len(ROWS)
