"""Field types shared by the API models: bounded, normalized, and strict about types."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints

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


def _storable_float(value: float) -> float:
    if value != 0 and not 1e-15 <= abs(value) <= 1e15:
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
