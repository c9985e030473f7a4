"""The domain package's layers (ARCHITECTURE, "Layers"; docs/decisions.md, 69): no two of
its packages import each other, whichever modules the imports are in."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "shared" / "crm_core"


def package_imports() -> dict[str, set[str]]:
    """For each package of crm_core, the other packages its modules import."""
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    edges: dict[str, set[str]] = defaultdict(set)
    for module in PACKAGE.rglob("*.py"):
        parts = module.relative_to(PACKAGE).parts
        if len(parts) == 1:
            continue  # a basic module (keys, table, http...), not a package
        for node in ast.walk(ast.parse(module.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            path = node.module.split(".")
            if path[0] != "crm_core":
                continue
            names = path[1:2] or [alias.name for alias in node.names]
            edges[parts[0]].update(n for n in names if n in packages and n != parts[0])
    return edges


def test_no_two_packages_import_each_other() -> None:
    edges = package_imports()
    both_ways = sorted((a, b) for a in edges for b in edges[a] if a < b and a in edges[b])
    assert both_ways == [], both_ways


def test_the_lower_layers_import_no_capability() -> None:
    edges = package_imports()
    capabilities = {"contacts", "companies", "activities", "leads", "scoring", "campaigns"}
    for lower in ("records", "scores", "events"):
        assert not edges[lower] & capabilities, (lower, edges[lower])


def test_the_package_map_sees_the_imports() -> None:
    # The check above must not pass by reading nothing.
    edges = package_imports()
    assert "records" in edges["contacts"]
    assert "events" in edges["campaigns"]
    assert Path(PACKAGE / "records" / "contact.py").is_file()
