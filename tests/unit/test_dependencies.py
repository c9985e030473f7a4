"""What the layer deploys is what the tests ran against."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

from tests.support.api import ROOT

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?:\[[^\]]+\])?==(?P<version>[^\s;]+)$")


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        found = _PIN.match(text)
        assert found, f"not pinned with ==: {text!r}"
        pins[found["name"].lower()] = found["version"]
    return pins


def layer_pins() -> dict[str, str]:
    return _pins((ROOT / "shared" / "requirements.txt").read_text().splitlines())


def test_layer_requirements_match_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert _pins(project["dependencies"]) == layer_pins()


def test_virtualenv_runs_the_pinned_versions() -> None:
    for name, pinned in layer_pins().items():
        assert version(name) == pinned, name


def test_every_package_is_installed() -> None:
    """pyproject lists its packages by hand (crm_core lives in shared/): each folder of
    Python modules must be there, or a non-editable install (a wheel) would lack it."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(folder.relative_to(base).parts)
        for base, top in ((ROOT / "shared", "crm_core"), (ROOT, "infra"))
        for folder in [base / top, *(base / top).rglob("*")]
        if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py"))
    }
    assert found == listed
