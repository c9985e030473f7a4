"""The runtime is one setting (template.yaml's `Globals.Function.Runtime`), and the code
keeps clear of what the next runtimes removed (docs/decisions.md: the runtime's plan)."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

from infra.build.artifact import runtime
from infra.cfn import load_template, resources
from tests.conftest import ROOT

# Standard-library modules Python 3.12 (PEP 594's first wave, distutils, imp) and 3.13
# (PEP 594) removed.
REMOVED = {
    "3.12": {"asynchat", "asyncore", "distutils", "imp", "smtpd"},
    "3.13": {
        "aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3", "mailcap",
        "msilib", "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr", "spwd", "sunau",
        "telnetlib", "uu", "xdrlib",
    },
}  # fmt: skip
CODE = ("shared", "functions", "infra", "scripts")


def _imports() -> Iterator[tuple[Path, str]]:
    for folder in CODE:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    yield from ((path, alias.name.split(".")[0]) for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    yield path, node.module.split(".")[0]


def test_the_runtime_is_one_setting_that_the_layer_and_the_build_follow() -> None:
    template = load_template()
    wanted = runtime()
    assert wanted == f"python{sys.version_info.major}.{sys.version_info.minor}"
    for logical, resource in resources(template, "AWS::Serverless::Function").items():
        assert "Runtime" not in resource["Properties"], f"{logical} sets its own runtime"
    for logical, layer in resources(template, "AWS::Serverless::LayerVersion").items():
        assert layer["Properties"]["CompatibleRuntimes"] == [wanted], logical
        assert layer["Metadata"]["BuildMethod"] == wanted, logical


def test_no_code_imports_a_module_the_next_runtimes_removed() -> None:
    removed = set().union(*REMOVED.values())
    found = sorted(
        f"{path.relative_to(ROOT)}: {name}" for path, name in _imports() if name in removed
    )
    assert found == []
