"""Field types shared by the API models: bounded, normalized, and strict about types."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self

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
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema

from crm_core import normalize
from crm_core.countries import ISO_3166_ALPHA2
from crm_core.ids import ULID_PATTERN

# Models are built on first use, not at import: a cold start then builds only the models
# its first request needs (docs/decisions.md, "Cold start").
# Strings are not stripped before their checks: the schema's lengths and patterns apply to
# the text as sent (free text is stripped after its checks: `Text` types below).
INPUT_MODEL = ConfigDict(extra="forbid", defer_build=True)
# Outputs always carry every field (null when unset): their schemas say so.
OUTPUT_MODEL = ConfigDict(defer_build=True, json_schema_serialization_defaults_required=True)


def field_error(
    model: str, loc: tuple[str | int, ...], message: str, value: Any
) -> ValidationError:
    """A validation error of one field, raised from a model validator that needs several
    fields to decide (an amount and its currency): its `loc` names the field, not the body."""
    error = PydanticCustomError("value_error", "{message}", {"message": message})
    return ValidationError.from_exception_data(
        model, [InitErrorDetails(type=error, loc=loc, input=value)]
    )


def check_patch(patch: BaseModel, not_null: Iterable[str] = ()) -> None:
    """A PATCH body's common rules: the fields in `not_null` may be left out but not set to
    null, and the patch must change something."""
    for name in not_null:
        if name in patch.model_fields_set and getattr(patch, name) is None:
            raise ValueError(f"{name} cannot be null")
    if not patch.model_fields_set:
        raise ValueError("the patch changes nothing")


class PatchBody(BaseModel):
    """A PATCH body: the fields sent are changed; those of NOT_NULL may be left out but not
    set to null; it changes something. Its JSON schema says both (no null for NOT_NULL
    fields, `minProperties: 1`), so that a client held to the schema is held to the code."""

    model_config = INPUT_MODEL
    NOT_NULL: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _patch_rules(self) -> Self:
        check_patch(self, self.NOT_NULL)
        return self

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        json_schema = handler.resolve_ref_schema(handler(schema))
        for name in cls.NOT_NULL:
            field = json_schema["properties"][name]
            kept = [s for s in field.pop("anyOf", []) if s != {"type": "null"}]
            if len(kept) == 1:
                field.update(kept[0])
            elif kept:
                field["anyOf"] = kept
            field.pop("default", None)
        json_schema["minProperties"] = 1
        return json_schema


MAX_TAGS = 20
MAX_TAG_CHARS = 50
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_VALUE_CHARS = 1000
ATTRIBUTE_KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"

# Python's whitespace (what str.strip removes), spelled so that JSON Schema's regex dialect
# reads it alike: free text must hold something else (NOT_BLANK, a `pattern`, which JSON
# Schema searches for anywhere in the text).
WHITESPACE = "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = f"[^{WHITESPACE}]"
# Free text is stored without surrounding whitespace, once its checks (on the text as sent,
# as the schema states them) have passed.
STRIPPED = AfterValidator(str.strip)

Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NOT_BLANK), STRIPPED]
Title = Annotated[str, StringConstraints(min_length=1, max_length=150, pattern=NOT_BLANK), STRIPPED]
Ulid = Annotated[str, StringConstraints(pattern=ULID_PATTERN)]
# Users are Cognito subjects (UUIDs) today; other identity providers may use other forms.
UserId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")]


def _email(value: str) -> str:
    if value != value.strip():
        raise ValueError("an email address has no surrounding whitespace")
    return normalize.email(value)


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" for c in word)


# An address as RFC 5321 has it (the schema's `email` format), stored lower-cased, that can
# be delivered (normalize.email): a local part of at most 64 characters, a domain with a
# dot whose last label ends with a letter, and no special-use domain (RFC 6761: .test,
# .localhost...). The schema says each, as the validator applies it.
_SPECIAL_USE = "|".join(_any_case(name) for name in normalize.SPECIAL_USE_DOMAINS)
EMAIL_SCHEMA: dict[str, Any] = {
    "format": "email",
    "allOf": [{"pattern": "^[^@]{1,64}@"}, {"pattern": "@[^@]+\\.[^@.]*[A-Za-z]$"}],
    "not": {"pattern": f"[@.]({_SPECIAL_USE})$"},
}
Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=254),
    Field(json_schema_extra=EMAIL_SCHEMA),
    AfterValidator(_email),
]
# Kept as typed when it cannot be read as a number (the contact's country helps).
Phone = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=NOT_BLANK), STRIPPED]


def _country(value: str) -> str:
    if value not in ISO_3166_ALPHA2:
        raise ValueError("not an ISO 3166-1 alpha-2 country code (two capital letters, e.g. FR)")
    return value


Country = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(ISO_3166_ALPHA2),
            "description": "ISO 3166-1 alpha-2, in capitals.",
        }
    ),
    AfterValidator(_country),
]
# A domain name, or a URL whose host it is: `https://www.Acme.com/about` is `acme.com`. The
# pattern is the code's rule (normalize.DOMAIN_INPUT); ASCII only (send IDNs as punycode).
Domain = Annotated[
    str,
    StringConstraints(min_length=3, max_length=253, pattern=normalize.DOMAIN_INPUT),
    AfterValidator(normalize.domain),
]
# A tag as sent (letters, digits, space and _.:/+-, starting with a letter or digit), stored
# lower-cased with runs of spaces folded; a list keeps each tag once.
TAG_INPUT = r"^[A-Za-z0-9][A-Za-z0-9 _.:/+-]*$"


def _tags(values: list[str]) -> list[str]:
    return normalize.tags(values, MAX_TAGS, MAX_TAG_CHARS)


Tags = Annotated[
    list[Annotated[str, StringConstraints(max_length=MAX_TAG_CHARS, pattern=TAG_INPUT)]],
    Field(max_length=MAX_TAGS),
    AfterValidator(_tags),
]


def _whole(value: Any) -> Any:
    # JSON Schema's integer is any number without a fraction (1.0, 1e3 too): take those.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# On a strict integer, after its Field (`Annotated[int, Field(strict=True, ...), WHOLE]`:
# before it, pydantic's schema would lose the bounds): a JSON number without a fraction is
# an integer, as the schema's `integer` says.
WHOLE = BeforeValidator(_whole)

# Numbers stay within what JSON clients and DynamoDB both hold exactly: integers up to
# 2**53, finite floats of magnitude 1e-15..1e15 (DynamoDB refuses NaN, and tiny exponents).
MAX_SAFE_INTEGER = 2**53
MIN_MAGNITUDE = 1e-15
MAX_MAGNITUDE = 1e15


AttributeKey = Annotated[str, StringConstraints(pattern=ATTRIBUTE_KEY_PATTERN)]


@dataclass(frozen=True)
class Storable:
    """A number's metadata (`Annotated[float, Storable(limit)]`): finite, and 0 or of a
    magnitude between MIN_MAGNITUDE and `limit`. DynamoDB refuses
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


def _no_rounded_integer(value: Any) -> Any:
    # An integer the int branch refused (past 2**53) would become the nearest double here:
    # 2**53 + 1 stored as 2**53, another number than the one sent.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"an integer must be between -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}")
    return value


# A custom attribute's value: text, a boolean, an integer JSON clients hold exactly, or a
# storable number (up to 2**53 too, so a float such as 5e15, an integer to JSON Schema, is
# taken either way).
AttributeValue = (
    Annotated[str, StringConstraints(max_length=MAX_ATTRIBUTE_VALUE_CHARS)]
    | StrictBool
    | Annotated[int, Field(strict=True, ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
    | Annotated[
        float,
        Field(strict=True),
        Storable(float(MAX_SAFE_INTEGER)),
        BeforeValidator(_no_rounded_integer),
    ]
    | None
)
Attributes = Annotated[
    dict[AttributeKey, AttributeValue],
    Field(
        max_length=MAX_ATTRIBUTES,
        description="Names start with a letter: letters, digits and _, at most 64.",
        # patternProperties alone would let other names through: the code refuses them.
        json_schema_extra={"additionalProperties": False},
    ),
]


# Times every later step can turn into UTC and format (clock.format_iso): an offset can put
# a stored time before year 1 or after 9999 in UTC, an OverflowError (a 500) at each use.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_UTC_RANGE = "between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z (in UTC)"
# ISO 8601 times as the code reads them (the schema says the same): RFC 3339's form, but
# seconds may be left out; a year of 1970 to 9999, each part in its range, at most
# microseconds, and a zone (optional where a time zone is given beside it: schedules).
_DATE_TIME = (
    "(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    "[Tt]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,6})?)?"
)
_ZONE = "([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
DATE_TIME_PATTERN = f"^{_DATE_TIME}{_ZONE}$"
LOCAL_DATE_TIME_PATTERN = f"^{_DATE_TIME}{_ZONE}?$"
_DATE_TIME_RE = re.compile(DATE_TIME_PATTERN)
_LOCAL_DATE_TIME_RE = re.compile(LOCAL_DATE_TIME_PATTERN)


def iso_text(value: Any) -> Any:
    # Pydantic would read a number (or digits) as Unix seconds, and other shapes of text
    # than RFC 3339: refuse them, as the schema does.
    if isinstance(value, datetime) or (isinstance(value, str) and _DATE_TIME_RE.fullmatch(value)):
        return value
    raise ValueError("a time is ISO 8601 text with a zone, such as 2026-06-01T09:30:00Z")


def local_iso_text(value: Any) -> Any:
    """Like iso_text, the zone optional (a time read in a time zone given beside it)."""
    if isinstance(value, datetime) or (
        isinstance(value, str) and _LOCAL_DATE_TIME_RE.fullmatch(value)
    ):
        return value
    raise ValueError("a time is ISO 8601 text, such as 2026-06-01T09:30 or 2026-06-01T09:30Z")


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
            "pattern": DATE_TIME_PATTERN,
            "description": f"ISO 8601 with a zone (seconds optional), {_UTC_RANGE}.",
        }
    ),
]


# What a mail header (or any one-line text) must not carry: C0 and C1 controls (CR and LF
# end a header line), DEL, and the Unicode line and paragraph separators.
_CONTROLS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
ONE_LINE_PATTERN = f"^[^{_CONTROLS}]*$"
_CONTROL_RE = re.compile(f"[{_CONTROLS}]")
# A template that must render to something visible (a subject): it holds a character that
# is neither whitespace nor a control (which `one_line` makes spaces).
VISIBLE = f"[^{WHITESPACE}{_CONTROLS}]"


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
        other = json_schema.pop("pattern", None)
        if other is None:
            json_schema["pattern"] = ONE_LINE_PATTERN
        else:
            json_schema["allOf"] = [{"pattern": other}, {"pattern": ONE_LINE_PATTERN}]
        return json_schema


def one_line(text: str) -> str:
    """`text` as one header line: control characters and line breaks become spaces, each
    run of whitespace one space, none at either end."""
    return " ".join(_CONTROL_RE.sub(" ", text).split())
