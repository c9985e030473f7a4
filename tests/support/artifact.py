"""The built artifact for the tests that check or run it: `make build`'s output, built
first when it is missing or older than the sources (`make test` builds before its tests)."""

from __future__ import annotations

import subprocess

from infra.build.artifact import BUILD_DIR, Layout
from infra.cfn import REPO_ROOT

SOURCES = ("template.yaml", "shared", "functions", "infra/build/artifact.py")


def _newest_source() -> float:
    newest = 0.0
    for name in SOURCES:
        path = REPO_ROOT / name
        files = [path] if path.is_file() else path.rglob("*")
        newest = max([newest, *(f.stat().st_mtime for f in files if "__pycache__" not in f.parts)])
    return newest


def built() -> Layout:
    template = BUILD_DIR / "template.yaml"
    if not template.exists() or template.stat().st_mtime < _newest_source():
        subprocess.run(["make", "-s", "build"], cwd=REPO_ROOT, check=True)
    return Layout.of(BUILD_DIR)
