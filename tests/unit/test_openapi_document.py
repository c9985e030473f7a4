"""docs/openapi.json is generated from the code; it must be current and describe every route."""

from __future__ import annotations

import json
import subprocess
import sys

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
    ):
        assert set(template_routes(function)) <= documented, function
    for path, ops in document["paths"].items():
        for method, operation in ops.items():
            # Every refusal is a problem+json; the webhook has no 422 (a lead is not validated
            # until it is processed), nor has the unsubscribe link (its token is the only
            # input: a bad one is a 400); every other route has.
            refusals = {s: r for s, r in operation["responses"].items() if s >= "400"}
            assert refusals, (method, path)
            if not path.startswith(("/webhooks/", "/unsubscribe")):
                assert "422" in refusals, (method, path)
            for response in refusals.values():
                problem = response["content"]["application/problem+json"]
                assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}, (method, path)


def test_only_the_webhook_and_the_unsubscribe_link_go_without_a_token() -> None:
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
