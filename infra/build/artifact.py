"""The deployable artifact: what `sam build` wrote, finished for Lambda and runnable here.

`finish(build_dir)` runs after `sam build` (`make build`, `make iac`):
  - it removes from the layer what no function loads (`PRUNED`, each with its reason, and
    every botocore service model but those of the clients our code creates);
  - it compiles every `.py` of the layer and of each function to bytecode for this Python,
    which is the runtime's (template.yaml's `Runtime`). Lambda's `/opt` and `/var/task` are
    read-only, so without bytecode every cold start compiles everything it imports. The
    bytecode is `unchecked-hash`: used as is, never compared with its source (a zip has no
    meaningful mtimes), and it names the files where Lambda has them (`/var/task/app.py`,
    `/opt/python/...`), so tracebacks do too.

`host_copy(build_dir, dest)` lays the artifact out as Lambda does (`dest/task/<Function>`,
`dest/opt/python`) for this machine: the layer holds arm64 wheels, so each distribution
with a compiled extension is swapped for this environment's copy of the same version
(refused if the versions differ). The benchmark and the artifact tests run that copy.
"""

from __future__ import annotations

import compileall
import importlib.metadata
import py_compile
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from infra.cfn import REPO_ROOT, load_template

BUILD_DIR = REPO_ROOT / ".aws-sam" / "build"
TASK_ROOT = "/var/task"
LAYER_ROOT = "/opt/python"

# Paths (globs) in the layer that no function loads, and why (tests/iac/test_artifact.py).
PRUNED: dict[str, str] = {
    "dns": "dnspython: email-validator uses it only for deliverability checks, which we skip",
    "phonenumbers/geodata": "40 MB of place names for numbers; we only parse and format",
    "phonenumbers/carrierdata": "carrier names for numbers; we only parse and format",
    "phonenumbers/tzdata": "time zones of numbers; we only parse and format",
    "boto3/examples": "documentation",
    "boto3/data": "boto3 resource models; we use clients only",
    "wrapt-stubs": "type stubs of wrapt, for type checkers",
    "*.data": "the wheels' scripts (jmespath's `jp.py`), which nothing runs",
}
# botocore's own data beside the service folders: endpoints, partitions, retry rules.
_BOTOCORE_ROOT_FILES = ("endpoints.json", "partitions.json", "sdk-default-configuration.json")
_CLIENT_RE = re.compile(r"""\bclient\(\s*["']([a-z0-9-]+)["']""")


@dataclass(frozen=True)
class Layout:
    """Where `sam build` put each function's code and the layer's `python/` folder."""

    functions: dict[str, Path]  # logical id -> code dir (Lambda's /var/task)
    layer: Path  # the layer's python/ (Lambda's /opt/python)

    @classmethod
    def of(cls, build_dir: Path = BUILD_DIR) -> Layout:
        template = load_template(build_dir / "template.yaml")
        functions: dict[str, Path] = {}
        layers: list[Path] = []
        for logical, resource in template["Resources"].items():
            props = resource.get("Properties") or {}
            if resource["Type"] == "AWS::Serverless::Function":
                functions[logical] = build_dir / str(props["CodeUri"])
            elif resource["Type"] == "AWS::Serverless::LayerVersion":
                layers.append(build_dir / str(props["ContentUri"]) / "python")
        if len(layers) != 1:
            raise ValueError(f"expected one layer in {build_dir}, found {len(layers)}")
        return cls(functions, layers[0])


def used_services(*roots: Path) -> set[str]:
    """The AWS services our code makes clients of (`client("name")`, ours or boto3's)."""
    found: set[str] = set()
    for root in roots:
        for path in root.rglob("*.py"):
            found.update(_CLIENT_RE.findall(path.read_text()))
    return found


def runtime() -> str:
    """The functions' runtime: template.yaml's one setting (`Globals.Function.Runtime`)."""
    return str(load_template()["Globals"]["Function"]["Runtime"])


def finish(build_dir: Path = BUILD_DIR) -> Layout:
    """Prune the layer and compile the layer and every function (see the module's doc)."""
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime() != here:
        # Bytecode is per Python version: another runtime would ignore ours and compile again.
        raise RuntimeError(f"the template's runtime is {runtime()}; this build runs {here}")
    layout = Layout.of(build_dir)
    prune(layout.layer, used_services(REPO_ROOT / "shared", REPO_ROOT / "functions"))
    compile_tree(layout.layer, LAYER_ROOT)
    for code_dir in layout.functions.values():
        compile_tree(code_dir, TASK_ROOT)
    return layout


def prune(layer: Path, services: set[str]) -> None:
    for pattern in PRUNED:
        for target in layer.glob(pattern):
            if target.is_dir():
                shutil.rmtree(target)
    data = layer / "botocore" / "data"
    if not data.is_dir():
        return
    missing = {s for s in services if not (data / s).is_dir()}
    if not services or missing:
        raise ValueError(f"no botocore model to keep, or none for {sorted(missing)}")
    for entry in data.iterdir():
        if entry.is_dir():
            if entry.name not in services:
                shutil.rmtree(entry)
        elif entry.name not in _BOTOCORE_ROOT_FILES and not entry.name.startswith("_"):
            entry.unlink()  # _retry.json and its kind stay


def compile_tree(root: Path, runtime_dir: str) -> None:
    """Bytecode for every .py under `root`, naming its file as Lambda will see it."""
    ok = compileall.compile_dir(
        str(root),
        quiet=2,
        workers=0,
        stripdir=str(root),
        prependdir=runtime_dir,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        raise RuntimeError(f"some files under {root} do not compile")


def _binary_distributions(layer: Path) -> Iterator[tuple[str, str, Path]]:
    """(name, version, dist-info) of each distribution in the layer with a compiled
    extension (a `.so`): those are built for the runtime's architecture."""
    for info in sorted(layer.glob("*.dist-info")):
        record = info / "RECORD"
        if record.is_file() and ".so," in record.read_text():
            name, _, rest = info.name.removesuffix(".dist-info").partition("-")
            yield name, rest, info


def host_copy(build_dir: Path, dest: Path) -> tuple[Layout, list[str]]:
    """A copy of the artifact that runs on this machine; returns its layout and the
    distributions swapped for this environment's (`name==version`)."""
    layout = Layout.of(build_dir)
    if dest.exists():
        shutil.rmtree(dest)
    functions = {}
    for logical, code_dir in layout.functions.items():
        functions[logical] = dest / "task" / logical
        shutil.copytree(code_dir, functions[logical], symlinks=True)
    layer = dest / "opt" / "python"
    shutil.copytree(layout.layer, layer, symlinks=True)
    swapped = []
    for name, version, info in list(_binary_distributions(layer)):
        here = importlib.metadata.distribution(name)
        if here.version != version:
            raise ValueError(f"{name}: the layer has {version}, this environment {here.version}")
        for line in (info / "RECORD").read_text().splitlines():
            relative = line.split(",")[0]
            if relative and not relative.startswith(".."):
                (layer / relative).unlink(missing_ok=True)
        tops = set()
        for file in here.files or []:
            if "__pycache__" in file.parts or str(file).startswith(".."):
                continue
            target = layer / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(str(file.locate()), target)
            tops.add(file.parts[0])
        for top in sorted(tops):
            if (layer / top).is_dir() and not top.endswith(".dist-info"):
                compile_tree(layer / top, f"{LAYER_ROOT}/{top}")
        swapped.append(f"{name}=={version}")
    return Layout(functions, layer), swapped


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def zipped_bytes(root: Path, scratch: Path) -> int:
    """The size of `root` zipped as `sam deploy` zips it (deflate)."""
    archive = shutil.make_archive(str(scratch / root.name), "zip", root)
    size = Path(archive).stat().st_size
    Path(archive).unlink()
    return size


def main() -> None:
    """`python -m infra.build.artifact [build_dir]`: finish a `sam build` output and report the
    layer's size beside Lambda's limits."""
    import tempfile

    build_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else BUILD_DIR
    layout = finish(build_dir)
    with tempfile.TemporaryDirectory() as scratch:
        zipped = zipped_bytes(layout.layer.parent, Path(scratch))
    unzipped = tree_bytes(layout.layer.parent)
    biggest = max(tree_bytes(d) for d in layout.functions.values())
    mb = 1024 * 1024
    print(
        f"artifact: {len(layout.functions)} functions compiled; layer {unzipped / mb:.1f} MB "
        f"unzipped (with the largest function {(unzipped + biggest) / mb:.1f} MB; Lambda's "
        f"limit 250 MB), {zipped / mb:.1f} MB zipped (limit 50 MB)"
    )


if __name__ == "__main__":
    main()
