"""PATCH semantics shared by every resource (docs/decisions.md, "PATCH semantics")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def apply_patch(old: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Fields sent are set and `null` clears them; `attributes` merge like RFC 7396 (a null
    key is removed, a null map clears them all); `tags` replace the list (null empties it)."""
    new = dict(old)
    for name, value in changes.items():
        if name == "attributes":
            merged = {**old.get("attributes", {}), **value} if value is not None else {}
            new[name] = {k: v for k, v in merged.items() if v is not None}
        elif name == "tags":
            new[name] = value or []
        elif value is None:
            new.pop(name, None)
        else:
            new[name] = value
    return new
