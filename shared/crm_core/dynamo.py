"""The DynamoDB client and attribute-value conversion.

We use a plain botocore client rather than boto3: `import boto3` also imports s3transfer
and friends, which costs cold-start time for nothing we use (see docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

Item = dict[str, Any]
AttributeValue = dict[str, Any]


def dynamodb_client() -> Any:
    """One client per process, created at cold start."""
    from crm_core.clients import client

    return client("dynamodb")


def to_attr(value: Any) -> AttributeValue:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes):
        return {"B": value}
    if isinstance(value, int | float | Decimal):
        return {"N": _number(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def _number(value: int | float | Decimal) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def from_attr(attr: AttributeValue, exact: bool = False) -> Any:
    """A Python value; a fractional number as a float, or as a Decimal when `exact` (sums of
    money, which a float would round)."""
    ((kind, raw),) = attr.items()
    if kind == "S":
        return raw
    if kind == "N":
        number = Decimal(raw)
        if number == number.to_integral_value():
            return int(number)
        return number if exact else float(number)
    if kind == "BOOL":
        return bool(raw)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attr(v, exact) for k, v in raw.items()}
    if kind == "L":
        return [from_attr(v, exact) for v in raw]
    if kind == "SS":
        return sorted(raw)
    if kind == "B":
        return bytes(raw)
    raise TypeError(f"unsupported attribute type {kind}")


def to_item(values: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """Serialize a plain dict; None values are left out (absent attribute, sparse indexes)."""
    return {k: to_attr(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, AttributeValue], exact: bool = False) -> Item:
    return {k: from_attr(v, exact) for k, v in item.items()}


def key_attrs(key: Mapping[str, str]) -> dict[str, AttributeValue]:
    return {k: {"S": v} for k, v in key.items()}
