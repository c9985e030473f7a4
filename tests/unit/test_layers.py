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


# infra/ by audience (ARCHITECTURE, "Layers"; docs/decisions.md, 71) -------------------------
INFRA = ROOT / "infra"


def infra_imports() -> dict[str, set[str]]:
    """For each module of infra/ (as `ops/stage.py`), the infra modules it imports, at its top
    or inside a function."""
    found: dict[str, set[str]] = defaultdict(set)
    for module in INFRA.rglob("*.py"):
        name = module.relative_to(INFRA).as_posix()
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "infra":
                    found[name].update(f"infra.{alias.name}" for alias in node.names)
                elif node.module.startswith("infra."):
                    found[name].add(node.module)
            elif isinstance(node, ast.Import):
                found[name].update(a.name for a in node.names if a.name.startswith("infra."))
    return found


def test_nothing_that_acts_on_a_stage_or_builds_imports_the_local_cloud() -> None:
    reaching = sorted(
        (module, imported)
        for module, imports in infra_imports().items()
        if not module.startswith(("local/", "cli.py"))
        for imported in imports
        if imported == "infra.local" or imported.startswith("infra.local.")
    )
    assert reaching == [], reaching


def test_the_infra_map_sees_the_imports() -> None:
    imports = infra_imports()
    assert "infra.local.endpoint" in imports["local/dev.py"]
    assert "infra.ops.stage" in imports["ops/dlq_replay.py"]
    assert "infra.running" in imports["ops/stage.py"]  # inside a function
