"""JSON as RFC 8259 defines it, within bounds no real client reaches.

Python's json reads more than RFC 8259 allows, and fails in ways a caller does not expect:
- `NaN`, `Infinity` and `-Infinity` are not JSON; a number such as `1e400` is, but no
  client (nor DynamoDB) holds the infinity Python makes of it;
- an integer of more than 4,300 digits is a ValueError that is not a JSONDecodeError;
- deep nesting is a RecursionError, or, just short of it, a value that code walking it
  recursively (pydantic, json.dumps) fails on later.
`loads` refuses each with JsonRefused (a ValueError), whose message can be shown to the
client: nothing downstream meets them.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, NoReturn

# No real body nests this deep (a contact is 3 levels, a scoring model 5); a fuzzer does.
MAX_DEPTH = 64


class JsonRefused(ValueError):
    """The text is not JSON this service reads; the message says why."""


class NotJson(JsonRefused):
    """The text is not JSON at all (a syntax error), as Python's json also says."""


def loads(text: str, subject: str = "the JSON") -> Any:
    """The value of `text`, or JsonRefused naming `subject` ("the body", say)."""
    try:
        value = json.loads(
            text,
            parse_constant=lambda name: _refuse(f"{subject} holds {name}, which is not JSON"),
            parse_float=lambda literal: _finite(literal, subject),
            parse_int=lambda literal: _integer(literal, subject),
        )
    except RecursionError:
        raise JsonRefused(_too_deep(subject)) from None
    except JsonRefused:
        raise
    except ValueError:  # JSONDecodeError
        raise NotJson(f"{subject} is not valid JSON") from None
    _check_depth(value, subject)
    return value


def _refuse(message: str) -> NoReturn:
    raise JsonRefused(message)


def _too_deep(subject: str) -> str:
    return f"{subject} is nested deeper than {MAX_DEPTH} levels"


def _finite(literal: str, subject: str) -> float:
    value = float(literal)
    if math.isinf(value):
        _refuse(f"{subject} holds a number too large to represent: {literal[:40]}")
    return value


def _integer(literal: str, subject: str) -> int:
    try:
        return int(literal)
    except ValueError:  # beyond Python's limit on the digits it converts
        _refuse(f"{subject} holds an integer of more than {sys.get_int_max_str_digits()} digits")


def _check_depth(value: Any, subject: str) -> None:
    """Within MAX_DEPTH arrays and objects, checked without recursion."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        current, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise JsonRefused(_too_deep(subject))
        children = current.values() if isinstance(current, dict) else current
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
