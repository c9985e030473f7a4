"""docs/openapi.json is generated from the code; it must be current and describe every route."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core import http, idempotency
from crm_core.errors import BadRequest
from tests.support.api import ROOT, template_routes


def test_committed_document_is_current() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/generate_openapi.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_document_covers_every_template_route() -> None:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    documented = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    for function in (
        "ContactsFunction",
        "ActivitiesFunction",
        "LeadSourcesFunction",
        "LeadWebhookFunction",
        "ScoringFunction",
        "CampaignsFunction",
        "UnsubscribeFunction",
        "CsatFunction",
        "DealsFunction",
    ):
        assert set(template_routes(function)) <= documented, function
    for path, ops in document["paths"].items():
        for method, operation in ops.items():
            # Every refusal is a problem+json; the webhook has no 422 (a lead is not validated
            # until it is processed), nor has the unsubscribe link or the satisfaction page
            # (their token is the only input: a bad one is a 400); every other route has.
            refusals = {s: r for s, r in operation["responses"].items() if s >= "400"}
            assert refusals, (method, path)
            tokens_only = path.startswith("/unsubscribe") or (method, path) == ("get", "/csat")
            if not path.startswith("/webhooks/") and not tokens_only:
                assert "422" in refusals, (method, path)
            for response in refusals.values():
                problem = response["content"]["application/problem+json"]
                assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}, (method, path)


def test_only_the_webhook_and_the_signed_links_go_without_a_token() -> None:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    public = {
        (method, path)
        for path, ops in document["paths"].items()
        for method, operation in ops.items()
        if operation.get("security") == []
    }
    assert public == {
        ("post", "/webhooks/leads/{source_id}"),
        ("get", "/unsubscribe"),
        ("post", "/unsubscribe"),
        ("get", "/csat"),
        ("post", "/csat"),
    }


def test_every_reference_names_a_component() -> None:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    schemas = document["components"]["schemas"]
    refs: set[str] = set()

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    refs.add(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(document)
    prefix = "#/components/schemas/"
    assert all(ref.startswith(prefix) for ref in refs), refs
    assert {ref.removeprefix(prefix) for ref in refs} <= set(schemas)


def _document() -> dict[str, Any]:
    return dict(json.loads((ROOT / "docs" / "openapi.json").read_text()))


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, ops in _document()["paths"].items()
        for method, operation in ops.items()
    ]


def test_a_204_has_no_body() -> None:
    for method, path, operation in _operations():
        if "204" in operation["responses"]:
            assert "content" not in operation["responses"]["204"], (method, path)


def test_api_gateways_own_answers_are_documented_beside_ours() -> None:
    # The JWT authorizer answers 401 `{"message": "Unauthorized"}` as application/json before
    # any function runs; a token without a tenant is the function's own problem+json 401.
    for method, path, operation in _operations():
        if operation.get("security") == []:
            continue
        content = operation["responses"]["401"]["content"]
        assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/Gateway"}
        assert "application/problem+json" in content, (method, path)
    assert _document()["components"]["schemas"]["Gateway"]["required"] == ["message"]


def test_every_operation_has_a_capability_tag_and_its_functions_name() -> None:
    document = _document()
    tags = {tag["name"] for tag in document["tags"]}
    ids = [operation["operationId"] for _, _, operation in _operations()]
    assert len(ids) == len(set(ids))
    for method, path, operation in _operations():
        (tag,) = operation["tags"]
        assert tag in tags, (method, path)
        assert re.fullmatch(r"[a-z][a-z_]*", operation["operationId"]), (method, path)


def test_links_name_operations_and_parameters_that_exist() -> None:
    operations = {
        operation["operationId"]: (path, operation) for _, path, operation in _operations()
    }
    linked = 0
    for _, _, operation in _operations():
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                path, target = operations[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
                assert set(link["parameters"]) == names, (link, path)
                linked += 1
    assert linked > 30


def test_no_schema_carries_a_keyword_json_schema_does_not_know() -> None:
    # A constraint pydantic could not place comes out as `ge`/`le` (Field after a
    # BeforeValidator): clients and fuzzers ignore it, so the document would be looser
    # than the code.
    unknown = {"ge", "le", "gt", "lt", "strict", "allow_inf_nan"}
    found: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if "type" in node or "anyOf" in node or "$ref" in node:
                found.extend(f"{where}.{key}" for key in unknown & set(node))
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(_document(), "")
    assert found == []


@settings(max_examples=200)
@given(
    st.one_of(
        st.text(st.sampled_from(' \t"W/*0123456789x٣'), max_size=20),
        st.from_regex(r'^ *(\*|(W/)?"[0-9]{1,12}") *$', fullmatch=True),
    )
)
def test_if_match_takes_what_the_document_says(raw: str) -> None:
    pattern = _header("If-Match")["schema"]["pattern"]
    documented = re.fullmatch(pattern, raw) is not None
    try:
        http.parse_if_match(raw)
    except BadRequest:
        taken = False
    else:
        taken = True
    assert taken == documented, raw


@settings(max_examples=200)
@given(st.text(st.characters(max_codepoint=0x2FF), max_size=300))
def test_idempotency_keys_are_what_the_document_says(key: str) -> None:
    pattern = _header("Idempotency-Key")["schema"]["pattern"]
    assert idempotency.valid_key(key) == (re.fullmatch(pattern, key) is not None), key


def _header(name: str) -> dict[str, Any]:
    (found,) = {
        json.dumps(p)
        for _, _, operation in _operations()
        for p in operation.get("parameters", [])
        if p["in"] == "header" and p["name"] == name
    }
    return dict(json.loads(found))
