"""IANA time zones, as the API takes them: the names of the tzdata package the layer pins.

The system's zone database differs between machines and runtimes (this one lists
`localtime`, Lambda's may lack a new zone); the pinned list is the same everywhere, so the
OpenAPI document can enumerate exactly what every function accepts. zoneinfo reads a zone
from the system's files when it has them, else from the same package.

The list is read on first use, not at import: a cold start that schedules nothing never
reads it (and the document, which enumerates it, is built by scripts, not functions).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import CoreSchema, core_schema


@functools.cache
def names() -> frozenset[str]:
    import tzdata

    listed = Path(tzdata.__file__).with_name("zones").read_text(encoding="utf-8")
    return frozenset(listed.split())


def zone(name: str) -> ZoneInfo:
    """The zone of an IANA name of `names()`; ValueError for any other."""
    if name not in names():
        raise ValueError(f"unknown time zone {name[:64]!r} (an IANA name, e.g. Europe/Paris)")
    return ZoneInfo(name)


def _checked(name: str) -> str:
    zone(name)
    return name


@dataclass(frozen=True)
class _IanaName:
    """A string's metadata: one of `names()`, which its JSON schema enumerates."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_checked, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"type": "string", "enum": sorted(names()), "description": "An IANA name."}


TimeZone = Annotated[str, _IanaName()]
