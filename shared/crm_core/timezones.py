"""IANA time zones, as the API takes them: the names of the tzdata package the layer pins.

The system's zone database differs between machines and runtimes (this one lists
`localtime`, Lambda's may lack a new zone); the pinned list is the same everywhere, so the
OpenAPI document can enumerate exactly what every function accepts. zoneinfo reads a zone
from the system's files when it has them, else from the same package.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, WithJsonSchema


@functools.cache
def names() -> tuple[str, ...]:
    listed = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return tuple(sorted(listed.split()))


def zone(name: str) -> ZoneInfo:
    """The zone of an IANA name of `names()`; ValueError for any other."""
    if name not in _known():
        raise ValueError(f"unknown time zone {name[:64]!r} (an IANA name, e.g. Europe/Paris)")
    return ZoneInfo(name)


@functools.cache
def _known() -> frozenset[str]:
    return frozenset(names())


def _checked(name: str) -> str:
    zone(name)
    return name


TimeZone = Annotated[
    str,
    WithJsonSchema({"type": "string", "enum": list(names()), "description": "An IANA name."}),
    AfterValidator(_checked),
]
