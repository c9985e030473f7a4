"""Field types shared by the API models: bounded, normalized, and strict about types."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import CoreSchema, core_schema

from crm_core import normalize
from crm_core.ids import ULID_PATTERN

# Models are built on first use, not at import: a cold start then builds only the models
# its first request needs (docs/decisions.md, "Cold start").
INPUT_MODEL = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)
# Outputs always carry every field (null when unset): their schemas say so.
OUTPUT_MODEL = ConfigDict(defer_build=True, json_schema_serialization_defaults_required=True)


def check_patch(patch: BaseModel, not_null: Iterable[str] = ()) -> None:
    """A PATCH body's common rules: the fields in `not_null` may be left out but not set to
    null, and the patch must change something."""
    for name in not_null:
        if name in patch.model_fields_set and getattr(patch, name) is None:
            raise ValueError(f"{name} cannot be null")
    if not patch.model_fields_set:
        raise ValueError("the patch changes nothing")


MAX_TAGS = 20
MAX_TAG_CHARS = 50
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_VALUE_CHARS = 1000
ATTRIBUTE_KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
_ATTRIBUTE_KEY_RE = re.compile(ATTRIBUTE_KEY_PATTERN)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150)]
Ulid = Annotated[str, StringConstraints(pattern=ULID_PATTERN)]
# Users are Cognito subjects (UUIDs) today; other identity providers may use other forms.
UserId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")]
Email = Annotated[
    str, StringConstraints(min_length=3, max_length=254), AfterValidator(normalize.email)
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Country = Annotated[
    str, StringConstraints(min_length=2, max_length=2), AfterValidator(normalize.country)
]
Domain = Annotated[
    str, StringConstraints(min_length=3, max_length=255), AfterValidator(normalize.domain)
]


def _tags(values: list[str]) -> list[str]:
    return normalize.tags(values, MAX_TAGS, MAX_TAG_CHARS)


Tags = Annotated[
    list[Annotated[str, StringConstraints(max_length=MAX_TAG_CHARS * 2)]],
    Field(max_length=MAX_TAGS * 2),
    AfterValidator(_tags),
]

# Numbers stay within what JSON clients and DynamoDB both hold exactly: integers up to
# 2**53, finite floats of magnitude 1e-15..1e15 (DynamoDB refuses NaN, and tiny exponents).
MAX_SAFE_INTEGER = 2**53
MIN_MAGNITUDE = 1e-15
MAX_MAGNITUDE = 1e15


def _storable_float(value: float) -> float:
    if value != 0 and not MIN_MAGNITUDE <= abs(value) <= MAX_MAGNITUDE:
        raise ValueError("a number must be 0 or have a magnitude between 1e-15 and 1e15")
    return value


AttributeValue = (
    Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_VALUE_CHARS)]
    | StrictBool
    | Annotated[int, Field(strict=True, ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
    | Annotated[float, Field(strict=True, allow_inf_nan=False), AfterValidator(_storable_float)]
    | None
)


def _attributes(values: dict[str, Any]) -> dict[str, Any]:
    if len(values) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} custom attributes")
    for key in values:
        if not _ATTRIBUTE_KEY_RE.match(key):
            raise ValueError(
                f"attribute name {key[:70]!r} must start with a letter and use only letters, "
                "digits and _ (at most 64 characters)"
            )
    return values


Attributes = Annotated[
    dict[Annotated[str, StringConstraints(max_length=64)], AttributeValue],
    AfterValidator(_attributes),
]


@dataclass(frozen=True)
class Storable:
    """A number's metadata (`Annotated[float, Storable(limit)]`): finite, and 0 or of a
    magnitude between MIN_MAGNITUDE and `limit` (at most MAX_MAGNITUDE). DynamoDB refuses
    1e-300 (a 500 once it reached a write), and JSON clients lose digits beyond 1e15. The
    JSON schema says exactly that, so a client held to the schema is held to the code."""

    limit: float = MAX_MAGNITUDE

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {
            "anyOf": [
                {"const": 0},
                {"type": "number", "minimum": MIN_MAGNITUDE, "maximum": self.limit},
                {"type": "number", "minimum": -self.limit, "maximum": -MIN_MAGNITUDE},
            ],
            "description": f"0, or a magnitude between {self._range}.",
        }

    @property
    def _range(self) -> str:
        return f"{_shown(MIN_MAGNITUDE)} and {_shown(self.limit)}"

    def _check(self, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("a number must be finite")
        if value != 0 and not MIN_MAGNITUDE <= abs(value) <= self.limit:
            raise ValueError(f"a number must be 0 or have a magnitude between {self._range}")
        return value


def _shown(number: float) -> str:
    return f"{number:g}".replace("e+0", "e").replace("e+", "e")  # 1e9, 1e15, 1e-15


StorableNumber = Annotated[float, Storable()]


# Times every later step can turn into UTC and format (clock.format_iso): an offset can put
# a stored time before year 1 or after 9999 in UTC, an OverflowError (a 500) at each use.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_UTC_RANGE = "between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z (in UTC)"


def iso_text(value: Any) -> Any:
    # Pydantic would read a number (or digits) as Unix seconds, or milliseconds if large:
    # refuse the guess, as the schema (a date-time string) does.
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("a time is ISO 8601 text with a zone, such as 2026-06-01T09:30:00Z")


def in_utc(moment: datetime) -> datetime:
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # before year 1 or after 9999 once in UTC
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(f"the time must be {_UTC_RANGE}")
    return utc


# An aware date-time within EARLIEST..LATEST, kept in UTC: a model field, or a query
# parameter (`Annotated[UtcDateTime | None, Query(description=...)]`).
UtcDateTime = Annotated[
    AwareDatetime,
    BeforeValidator(iso_text),
    AfterValidator(in_utc),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": f"ISO 8601 with a zone, {_UTC_RANGE}.",
        }
    ),
]


# What a mail header (or any one-line text) must not carry: C0 and C1 controls (CR and LF
# end a header line), DEL, and the Unicode line and paragraph separators.
_CONTROLS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
ONE_LINE_PATTERN = f"^[^{_CONTROLS}]*$"
_CONTROL_RE = re.compile(f"[{_CONTROLS}]")


def _one_line(value: Any) -> Any:
    if isinstance(value, str) and _CONTROL_RE.search(value):
        raise ValueError("must be one line, without control characters (CR, LF, tab, NUL...)")
    return value


@dataclass(frozen=True)
class OneLine:
    """A text's metadata (`Annotated[str, StringConstraints(...), OneLine()]`): no control
    character or line break anywhere, checked before any stripping (a line break at either
    end is refused too, as the schema's `pattern` says)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(_one_line, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        json_schema: dict[str, Any] = handler(schema)
        json_schema["pattern"] = ONE_LINE_PATTERN
        return json_schema


def one_line(text: str) -> str:
    """`text` as one header line: control characters and line breaks become spaces, each
    run of whitespace one space, none at either end."""
    return " ".join(_CONTROL_RE.sub(" ", text).split())
