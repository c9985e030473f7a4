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
    assert set(template_routes("ContactsFunction")) <= documented
    for path, ops in document["paths"].items():
        for method, operation in ops.items():
            problem = operation["responses"]["422"]["content"]["application/problem+json"]
            assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}, (method, path)
