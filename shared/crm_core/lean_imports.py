"""Library packages whose `__init__` imports far more than we use, opened lazily.

`aws_lambda_powertools.event_handler/__init__.py` imports every resolver (AppSync with
asyncio, Bedrock, VPC Lattice, ...) and `utilities/data_classes/__init__.py` every event
class (32 modules); importing one submodule runs the whole `__init__` first. That is about
25 ms of each HTTP function's and the sender's cold start for code they never run
(docs/decisions.md, 68).

`install()` puts a lazy stand-in for each such package in `sys.modules` before anything
imports it: its submodules import as usual (the stand-in has the package's `__path__`),
and a name the real `__init__` would export (`from aws_lambda_powertools.event_handler
import Response`) is imported from its submodule on first access (PEP 562). The names and
their submodules are read from the package's own `__init__`, so an upgrade that adds one
keeps working; an `__init__` that does anything but import names is left alone.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from types import ModuleType

LAZY_PACKAGES = (
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.data_classes",
)


def install(packages: tuple[str, ...] = LAZY_PACKAGES) -> list[str]:
    """Open each package lazily unless it is already imported; the names of those opened."""
    return [name for name in packages if name not in sys.modules and _open_lazily(name)]


def exports(source: str, package: str) -> dict[str, tuple[str, str]] | None:
    """`name -> (submodule, attribute)` for what an `__init__` re-exports, or None when it
    does more than import names (then only running it is safe)."""
    found: dict[str, tuple[str, str]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            relative = "." * node.level + (node.module or "")
            module = importlib.util.resolve_name(relative, package) if node.level else relative
            for alias in node.names:
                if alias.name == "*":
                    return None
                found[alias.asname or alias.name] = (module, alias.name)
        elif not _is_inert(node):
            return None
    return found


def _is_inert(node: ast.stmt) -> bool:
    """A docstring, `from __future__`, or an `__all__ = [...]` of plain strings."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return True
    if isinstance(node, ast.ImportFrom) and node.module == "__future__":
        return True
    if isinstance(node, ast.Assign) and [_target_name(t) for t in node.targets] == ["__all__"]:
        return isinstance(node.value, (ast.List, ast.Tuple)) and all(
            isinstance(item, ast.Constant) and isinstance(item.value, str)
            for item in node.value.elts
        )
    return False


def _target_name(target: ast.expr) -> str | None:
    return target.id if isinstance(target, ast.Name) else None


def _open_lazily(name: str) -> bool:
    spec = importlib.util.find_spec(name)  # imports the parent packages, as an import would
    if spec is None or spec.origin is None or spec.submodule_search_locations is None:
        return False
    try:
        with open(spec.origin, encoding="utf-8") as file:
            names = exports(file.read(), name)
    except (OSError, SyntaxError, ValueError):
        return False
    if names is None:
        return False
    module = importlib.util.module_from_spec(spec)  # __path__ and __spec__, __init__ not run
    _add_lazy_names(module, names)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return True


def _add_lazy_names(module: ModuleType, names: dict[str, tuple[str, str]]) -> None:
    def __getattr__(attribute: str) -> object:  # noqa: N807 - PEP 562's hook
        if attribute not in names:
            raise AttributeError(f"module {module.__name__!r} has no attribute {attribute!r}")
        source, original = names[attribute]
        value = getattr(importlib.import_module(source), original)
        setattr(module, attribute, value)
        return value

    # PEP 562: a module's __getattr__ answers the names it does not hold yet.
    setattr(module, "__getattr__", __getattr__)  # noqa: B010 - ModuleType declares neither
    setattr(module, "__all__", list(names))  # noqa: B010
