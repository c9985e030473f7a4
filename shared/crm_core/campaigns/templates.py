"""A campaign's subject and bodies: Jinja2 templates of merge fields, rendered in a sandbox.

    {{ first_name | default("there") }}, {{ attributes.plan }}, {{ unsubscribe_url }}

- The sandbox (`SandboxedEnvironment`) refuses attribute access to Python internals, so a
  template written by a tenant's user cannot reach the function's code or environment.
- The HTML body autoescapes every merge field: a contact named `<script>` is shown, never
  run. The subject and the text part are not HTML, so they are not escaped (a subject's
  line breaks are removed, as a header must not carry them).
- Only the merge fields below exist (`MERGE_FIELDS`); a template naming another, or one
  that does not parse, is refused when the campaign is saved (422), not when it is sent.
  Missing values render empty unless the template gives a `default`.
- A template is checked before anything renders, so that a template saved renders for every
  contact, in bounded time and memory (docs/decisions.md, "Merge fields render in Jinja2's
  sandbox"):
  - It holds text, merge fields, the filters of `FILTERS` and the tests of `TESTS`, `if`,
    `set` and `with`, operators, and numbers of at most `MAX_NUMBER`. Loops, macros,
    includes, blocks, calls, slices, lists, `{% filter %}` blocks, a filter on a `{% set %}`
    block, `autoescape` blocks and `**` are refused, and so are `*` and `%` on a string
    (repetition, printf formatting): no construct lets a template choose how long a value is.
  - The longest value each expression can take is computed from the longest value each
    merge field can hold (`merge_values` cuts a longer one): a part that could render to
    more than `MAX_RENDERED_CHARS`, or whose values add up to more than `MAX_WORK_CHARS`,
    is refused. This also refuses doubling a value through `set` or `with`.
  - A template nested deeper than `MAX_DEPTH` is refused (the parser and compiler recurse).
- Operations are total, so that no contact's values can make a render fail: an operation
  that cannot be made (a division by zero, `+` of a string and a number, a number past
  `MAX_MAGNITUDE`, a filter given a value it cannot take) renders as a missing value (empty,
  or the template's `default`); a comparison that cannot be made (a string with a number) is
  false. A subject blank for a contact renders as for a contact without fields (which the
  check makes sure is not blank).
- Rendering stops as soon as a part passes `MAX_RENDERED_CHARS` (a last resort: the check
  makes it unreachable for a template it accepted).
- The footer with the tenant's postal address and the unsubscribe link is added to every
  message by `render` (the template cannot leave it out).
"""

from __future__ import annotations

import functools
import html as html_lib
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from crm_core.errors import Unprocessable
from crm_core.fields import MAX_ATTRIBUTE_VALUE_CHARS, one_line

MERGE_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "full_name",
        "email",
        "title",
        "country",
        "lifecycle_stage",
        "attributes",
        "unsubscribe_url",
        "company_name",
    }
)
MAX_RENDERED_CHARS = 500_000
# The sum of the lengths of every value one part computes: bounds a render's time and memory.
MAX_WORK_CHARS = 2_000_000
MAX_NUMBER = 10_000  # in a template
MAX_DEPTH = 40
# A computed number past this is a failed operation (it would also print long).
MAX_MAGNITUDE = 10**18
# The longest text of a number: a float's repr, or a Decimal of 28 digits and an exponent.
NUMBER_CHARS = 40
# The longest text of each merge value (the contact models' limits; `merge_values` cuts a
# longer one, which only a writer other than the API can have stored).
FIELD_CHARS = {
    "first_name": 100,
    "last_name": 100,
    "full_name": 201,
    "email": 254,
    "title": 150,
    "country": 100,
    "lifecycle_stage": 100,
    "unsubscribe_url": 2048,
    "company_name": 200,
}
ATTRIBUTE_CHARS = MAX_ATTRIBUTE_VALUE_CHARS  # numbers are shorter (NUMBER_CHARS)
# How much longer text can get: HTML escaping (' -> &#39;), case mapping (ﬃ -> FFI),
# percent-encoding (4 UTF-8 bytes of 3 characters each).
_ESCAPED = 5
_CASED = 3
_URL_ENCODED = 12
_BOOL_CHARS = 5  # "False"
# Statements that repeat work or reach other templates: a merge template needs none.
_REFUSED_STATEMENTS = {
    "For": "loops",
    "Macro": "macros",
    "CallBlock": "call blocks",
    "Include": "includes",
    "Import": "imports",
    "FromImport": "imports",
    "Extends": "extends",
    "Block": "blocks",
}
_ONLY = "templates hold merge fields, filters and if only"
# Names Jinja gives a meaning of its own.
_RESERVED_NAMES = frozenset({"self", "loop", "caller", "varargs", "kwargs", "super"})
_SAMPLE_CONTACT = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "title": "Analyst",
    "country": "GB",
    "lifecycle_stage": "lead",
    "attributes": {},
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Footer:
    postal_address: str
    unsubscribe_url: str
    company_name: str | None = None


_CHECK_FOOTER = Footer("1 Sample Street, Sample Town", "https://example.invalid/unsubscribe")


# Filters and tests ----------------------------------------------------------------------------
# Whether a value is markup (escaped HTML, which Jinja does not escape again): an escaped
# string, a `{% set %}` block in HTML, and what keeps them so (`upper`, `+`...).
_PLAIN, _MARKUP, _EITHER = "plain", "markup", "either"


@dataclass(frozen=True)
class _Filter:
    """A filter templates may use: its parameters, by position, each either "any"
    expression or a constant of the type named; the longest text of its result, from the
    longest of its value, of its "any" arguments, and its constants; and whether its result
    is markup: `_MARKUP`, `_PLAIN`, or None when it is markup if its value is."""

    params: tuple[tuple[str, str], ...]
    longest: Callable[[int, dict[str, int], dict[str, Any]], int]
    markup: str | None = _PLAIN
    required: int = 0


def _number(*_: Any) -> int:
    return NUMBER_CHARS


def _replaced(value: int, _: dict[str, int], given: dict[str, Any]) -> int:
    old, new, count = given["old"], given["new"], given.get("count")
    if not old:
        raise ValueError("uses replace with an empty text to replace: give the text to replace")
    times = value // len(old)
    if count is not None and count >= 0:
        times = min(times, count)
    return value + times * _ESCAPED * len(new)  # in markup, `new` is escaped


def _truncated(value: int, _: dict[str, int], given: dict[str, Any]) -> int:
    end = given.get("end", "...")
    if given.get("length", 255) < len(end) or given.get("leeway", 0) < 0:
        raise ValueError(
            f"uses truncate with a length shorter than its end ({end!r}): make it longer"
        )
    return value + _ESCAPED * len(end)


_DEFAULT = _Filter(
    (("default_value", "any"), ("boolean", "bool")),
    lambda value, sizes, _: max(value, sizes.get("default_value", 0)),
    markup=_EITHER,
)
_CASE = _Filter((), lambda value, *_: _CASED * value, markup=None)
_ESCAPE = _Filter((), lambda value, *_: _ESCAPED * value, markup=_MARKUP)
_LENGTH = _Filter((), _number)
_FILTERS = {
    "default": _DEFAULT,
    "d": _DEFAULT,
    "upper": _CASE,
    "lower": _CASE,
    "capitalize": _CASE,
    "title": _Filter((), lambda value, *_: _CASED * value),  # joins words as plain text
    "trim": _Filter((("chars", "str"),), lambda value, *_: value, markup=None),
    "truncate": _Filter(
        (("length", "int"), ("killwords", "bool"), ("end", "str"), ("leeway", "int")),
        _truncated,
        markup=None,
    ),
    # Markup in HTML only: in plain text, Jinja's replace returns a str.
    "replace": _Filter(
        (("old", "str"), ("new", "str"), ("count", "int")), _replaced, markup=None, required=2
    ),
    "escape": _ESCAPE,
    "e": _ESCAPE,
    "striptags": _Filter((), lambda value, *_: value),
    "urlencode": _Filter((), lambda value, *_: _URL_ENCODED * value),
    "int": _Filter((("default", "int"), ("base", "int")), _number),
    "float": _Filter((("default", "number"),), _number),
    "round": _Filter((("precision", "int"), ("method", "str")), _number),
    "abs": _Filter((), _number),
    "length": _LENGTH,
    "count": _LENGTH,
    "wordcount": _LENGTH,
}
FILTERS = frozenset(_FILTERS)
# Tests: the number of arguments each takes. All are total (false when they cannot answer).
_TESTS = {
    **dict.fromkeys(
        ("defined", "undefined", "none", "number", "string", "boolean", "true", "false"), 0
    ),
    **dict.fromkeys(("integer", "float", "lower", "upper", "even", "odd"), 0),
    **dict.fromkeys(("divisibleby", "in", "eq", "equalto", "==", "ne", "!="), 1),
    **dict.fromkeys(("lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">"), 1),
    **dict.fromkeys(("ge", ">="), 1),
}
TESTS = frozenset(_TESTS)
# The tests comparisons are made by, so that they are total too.
_COMPARISONS = {"eq": "eq", "ne": "ne", "lt": "lt", "lteq": "le", "gt": "gt", "gteq": "ge"}


# Total operations -----------------------------------------------------------------------------
class _Failed(Exception):
    """An operation that cannot be made: it renders as a missing value."""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal)


def _checked(value: Any) -> Any:
    """`value`, if it is not a number too large or not finite to render."""
    if not _is_number(value) or isinstance(value, bool):
        return value
    finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    if not finite or abs(value) > MAX_MAGNITUDE or len(str(value)) > NUMBER_CHARS:
        raise _Failed(f"{value!r} is out of range")
    return value


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
}


def _arithmetic(operator_: str, left: Any, right: Any) -> Any:
    """`left operator right` on numbers (and `+` on two strings), or _Failed."""
    if operator_ == "+" and isinstance(left, str) and isinstance(right, str):
        return left + right
    if operator_ not in _ARITHMETIC or not (_is_number(left) and _is_number(right)):
        raise _Failed(f"{operator_} of {type(left).__name__} and {type(right).__name__}")
    # Contacts' numbers are Decimals (as DynamoDB gives them); a template's are floats.
    if isinstance(left, Decimal) and isinstance(right, float):
        right = Decimal(repr(right))
    elif isinstance(right, Decimal) and isinstance(left, float):
        left = Decimal(repr(left))
    try:
        return _checked(_ARITHMETIC[operator_](left, right))
    except _Failed:
        raise
    except Exception as exc:  # ZeroDivisionError, decimal's signals, OverflowError...
        raise _Failed(str(exc) or type(exc).__name__) from None


def _negated(operator_: str, value: Any) -> Any:
    if not _is_number(value):
        raise _Failed(f"{operator_}{type(value).__name__}")
    return _checked(-value if operator_ == "-" else +value)


def _total_filter(function: Callable[..., Any], undefined: Callable[..., Any]) -> Any:
    @functools.wraps(function)  # keeps Jinja's pass_eval_context/pass_environment mark
    def total(*args: Any, **kwargs: Any) -> Any:
        try:
            return _checked(function(*args, **kwargs))
        except Exception:  # what a value cannot go through renders as a missing value
            return undefined(hint=f"the filter {function.__name__} failed")

    return total


def _total_test(function: Callable[..., Any]) -> Any:
    @functools.wraps(function)
    def total(*args: Any) -> bool:
        try:
            return bool(function(*args))
        except Exception:  # a test that cannot answer is false
            return False

    return total


# On numbers only: Jinja's own use `%`, which formats a string.
def _even(value: Any) -> bool:
    return _is_number(value) and value % 2 == 0


def _odd(value: Any) -> bool:
    return _is_number(value) and value % 2 == 1


def _divisible_by(value: Any, number: Any) -> bool:
    return _is_number(value) and _is_number(number) and value % number == 0


def _bounded_environment(autoescape: bool) -> Any:
    from jinja2.filters import FILTERS as JINJA_FILTERS
    from jinja2.runtime import Undefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.tests import TESTS as JINJA_TESTS

    class Bounded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({*_ARITHMETIC, "**"})
        intercepted_unops = frozenset({"-", "+"})

        def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
            try:
                return _arithmetic(operator_, left, right)
            except _Failed as failed:
                return self.undefined(hint=str(failed))

        def call_unop(self, context: Any, operator_: str, arg: Any) -> Any:
            try:
                return _negated(operator_, arg)
            except _Failed as failed:
                return self.undefined(hint=str(failed))

        def getitem(self, obj: Any, argument: Any) -> Any:
            """An attribute of `attributes`, or a character of a string: nothing of
            Python's (no methods, no internals)."""
            if isinstance(obj, dict) and isinstance(argument, str) and argument in obj:
                return obj[argument]
            if isinstance(obj, str) and isinstance(argument, int):
                try:
                    return obj[argument]
                except IndexError:
                    pass
            return self.undefined(obj=obj, name=argument)

        def getattr(self, obj: Any, attribute: str) -> Any:
            return self.getitem(obj, attribute) if isinstance(obj, dict) else self.undefined()

    environment = Bounded(autoescape=autoescape, keep_trailing_newline=True)
    environment.globals.clear()
    environment.filters = {name: _total_filter(JINJA_FILTERS[name], Undefined) for name in _FILTERS}
    jinja_tests = cast("dict[str, Callable[..., Any]]", JINJA_TESTS)
    tests = {name: jinja_tests[name] for name in _TESTS}
    tests.update(even=_even, odd=_odd, divisibleby=_divisible_by)
    environment.tests = {name: _total_test(test) for name, test in tests.items()}
    return environment


class _Environments:
    """Built on first use: jinja2's import and environments cost cold-start time that only
    campaign writes and sends need."""

    def __init__(self) -> None:
        self._html: Any = None
        self._plain: Any = None

    def get(self, autoescape: bool) -> Any:
        if self._html is None:
            self._html = _bounded_environment(True)
            self._plain = _bounded_environment(False)
        return self._html if autoescape else self._plain


_environments = _Environments()


# Merge values ---------------------------------------------------------------------------------
def _attribute(value: Any) -> Any:
    if isinstance(value, str):
        return value[:ATTRIBUTE_CHARS]
    if isinstance(value, bool):
        return value
    try:
        return _checked(value) if _is_number(value) else None
    except _Failed:
        return None


def merge_values(
    contact: Mapping[str, Any], unsubscribe_url: str, company_name: str | None
) -> dict[str, Any]:
    """What a template can name, from a contact item (or the API's contact). Missing values
    are left out, so they render empty or as the template's `default`; so are values of
    types the contact models do not hold, and text is cut to `FIELD_CHARS`."""
    first = _text(contact.get("first_name"), "first_name")
    last = _text(contact.get("last_name"), "last_name")
    attributes = contact.get("attributes")
    values = {
        "first_name": first,
        "last_name": last,
        "full_name": " ".join(part for part in (first, last) if part) or None,
        "email": _text(contact.get("email"), "email"),
        "title": _text(contact.get("title"), "title"),
        "country": _text(contact.get("country"), "country"),
        "lifecycle_stage": _text(contact.get("lifecycle_stage"), "lifecycle_stage"),
        "attributes": {
            key: found
            for key, value in (attributes.items() if isinstance(attributes, Mapping) else ())
            if isinstance(key, str) and (found := _attribute(value)) is not None
        },
        "unsubscribe_url": _text(unsubscribe_url, "unsubscribe_url"),
        "company_name": _text(company_name, "company_name"),
    }
    return {name: value for name, value in values.items() if value is not None}


def _text(value: Any, name: str) -> str | None:
    return value[: FIELD_CHARS[name]] if isinstance(value, str) else None


# Checking a template ----------------------------------------------------------------------------
def _refuse(where: str, detail: str) -> Unprocessable:
    return Unprocessable(f"the {where} {detail}", [{"loc": ["body", where], "msg": detail}])


def _nodes(tree: Any) -> Iterable[tuple[Any, int]]:
    """Every node of `tree` and its depth, without recursion (a tree may be deep)."""
    todo = [(tree, 1)]
    while todo:
        node, depth = todo.pop()
        yield node, depth
        todo.extend((child, depth + 1) for child in node.iter_child_nodes())


def _screen(tree: Any, where: str) -> None:
    """Refuse the statements and numbers templates may not hold, and a tree too deep for
    the recursive walks that follow."""
    for node, depth in _nodes(tree):
        if depth > MAX_DEPTH:
            raise _too_deep(where)
        kind = type(node).__name__
        if kind in _REFUSED_STATEMENTS:
            raise _refuse(where, f"uses {_REFUSED_STATEMENTS[kind]}: {_ONLY}")
        if kind == "Pow":
            raise _refuse(where, "uses the power operator (**), which templates may not")
        if kind in ("ScopedEvalContextModifier", "EvalContextModifier"):
            raise _refuse(
                where,
                "turns autoescaping off, which templates may not: merge fields are always "
                "escaped in HTML",
            )
        value = node.value if kind == "Const" else None
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and abs(value) > MAX_NUMBER:  # type: ignore[arg-type]
            raise _refuse(where, f"has a number above {MAX_NUMBER}")


def _too_deep(where: str) -> Unprocessable:
    return _refuse(
        where,
        f"nests too deeply (more than {MAX_DEPTH} levels of parentheses, operators, filters "
        "or blocks): split it, or use ~ to join values",
    )


def _constant(node: Any, kinds: str) -> Any:
    if type(node).__name__ != "Const":
        raise _Failed("not a constant")
    value = node.value
    matches = {
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": _is_number(value) and not isinstance(value, bool),
    }
    if not matches[kinds]:
        raise _Failed(f"not a constant {kinds}")
    return value


@dataclass(frozen=True)
class _Value:
    """The longest text an expression can take, and whether it is markup."""

    size: int
    markup: str = _PLAIN


def _either(*values: _Value) -> str:
    kinds = {value.markup for value in values}
    return kinds.pop() if len(kinds) == 1 else _EITHER


def _joined(values: list[_Value]) -> _Value:
    """Strings joined where markup escapes the others (`+`, and `~` in HTML)."""
    if all(value.markup == _PLAIN for value in values):
        return _Value(sum(value.size for value in values))
    size = sum(v.size if v.markup == _MARKUP else _ESCAPED * v.size for v in values)
    return _Value(size, _MARKUP if any(v.markup == _MARKUP for v in values) else _EITHER)


@dataclass
class _Measure:
    """Walks a template, refusing what templates may not do, and computes the longest text
    it can render (`template`) and the sum of the longest values it computes (`work`), from
    the longest value each merge field can hold. Names assigned by `set` and `with` keep the
    longest value ever assigned: whatever Jinja's scoping, that bounds what they hold."""

    where: str
    autoescape: bool
    names: dict[str, _Value] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)
    work: int = 0

    def refuse(self, detail: str) -> Unprocessable:
        return _refuse(self.where, detail)

    def template(self, tree: Any) -> int:
        return self.statements(tree.body)

    def statements(self, body: list[Any]) -> int:
        return _capped(sum(self.statement(node) for node in body))

    def statement(self, node: Any) -> int:
        kind = type(node).__name__
        if kind == "Output":
            size = 0
            for part in node.nodes:
                if type(part).__name__ == "TemplateData":
                    size += len(part.data)
                else:
                    size += self.shown(self.expr(part))
            self.work = _capped(self.work + size)
            return _capped(size)
        if kind == "If":
            self.expr(node.test)
            for branch in node.elif_:
                self.expr(branch.test)
            branches = [node.body, *(branch.body for branch in node.elif_), node.else_]
            return max(self.statements(branch) for branch in branches)
        if kind == "Assign":
            self.assign(node.target, self.expr(node.node))
            return 0
        if kind == "AssignBlock":
            if node.filter is not None:
                raise self.refuse(
                    "filters a {% set %} block, which templates may not (in HTML it would "
                    "unescape merge fields): apply the filter to each merge field instead"
                )
            size = self.statements(node.body)
            self.assign(node.target, _Value(size, _MARKUP if self.autoescape else _PLAIN))
            return 0
        if kind == "With":
            for target, value in zip(node.targets, node.values, strict=True):
                self.assign(target, self.expr(value))
            return self.statements(node.body)
        if kind == "FilterBlock":
            raise self.refuse(
                "uses a {% filter %} block, which templates may not: apply the filter to "
                "each merge field instead"
            )
        raise self.refuse(f"uses {kind}: {_ONLY}")

    def shown(self, value: _Value) -> int:
        """Its length once output: escaped in HTML, unless it is markup."""
        escaped = self.autoescape and value.markup != _MARKUP
        return _ESCAPED * value.size if escaped else value.size

    def assign(self, target: Any, value: _Value) -> None:
        if type(target).__name__ != "Name":
            raise self.refuse("assigns to something other than one name, which it may not")
        if target.name in _RESERVED_NAMES:
            raise self.refuse(f"assigns to {target.name!r}, a name Jinja reserves")
        before = self.names.get(target.name, value)
        self.names[target.name] = _Value(max(before.size, value.size), _either(before, value))

    def expr(self, node: Any) -> _Value:
        value = self._expr(node)
        size = _capped(value.size)
        self.work = _capped(self.work + size)
        return _Value(size, value.markup)

    def _expr(self, node: Any) -> _Value:
        kind = type(node).__name__
        if kind == "Const":
            return _Value(len(str(node.value)))
        if kind == "Name":
            return self.name(node.name)
        if kind in ("Getattr", "Getitem"):
            return self.item(node, kind)
        if kind == "Filter":
            return self.filter(node, self.expr(node.node))
        if kind == "Test":
            self.test(node.name, node)
            return _Value(_BOOL_CHARS)
        if kind == "Compare":
            self.expr(node.expr)
            for operand in node.ops:
                self.operand(operand.expr, operand.op in ("in", "notin"))
            return _Value(_BOOL_CHARS)
        if kind == "CondExpr":
            self.expr(node.test)
            chosen = self.expr(node.expr1)
            otherwise = self.expr(node.expr2) if node.expr2 is not None else _Value(0)
            return _Value(max(chosen.size, otherwise.size), _either(chosen, otherwise))
        if kind in ("And", "Or"):  # either operand
            left, right = self.expr(node.left), self.expr(node.right)
            return _Value(max(left.size, right.size), _either(left, right))
        if kind == "Not":
            self.expr(node.node)
            return _Value(_BOOL_CHARS)
        if kind in ("Neg", "Pos"):
            self.expr(node.node)
            return _Value(NUMBER_CHARS)
        if kind in ("Add", "Sub", "Mul", "Div", "FloorDiv", "Mod"):
            return self.arithmetic(node, kind)
        if kind == "Concat":  # in HTML, markup escapes the other parts; in text, plain
            parts = [self.expr(part) for part in node.nodes]
            if self.autoescape:
                return _joined(parts)
            return _Value(sum(part.size for part in parts))
        if kind == "Call":
            raise self.refuse(f"calls a function or method, which templates may not: {_ONLY}")
        if kind in ("Tuple", "List", "Dict"):
            raise self.refuse(
                "builds a tuple, list or dict, which templates may not (only `in` may test "
                "a tuple of constants, as in `country in ('FR', 'BE')`)"
            )
        raise self.refuse(f"uses {kind}: {_ONLY}")

    def name(self, name: str) -> _Value:
        if name == "attributes":
            raise self.refuse(
                "uses attributes as a whole: name one of them, as attributes.plan or "
                "attributes['plan']"
            )
        if name not in self.names and name not in FIELD_CHARS:
            self.unknown.add(name)
        assigned = self.names.get(name)
        if assigned is None:
            return _Value(FIELD_CHARS.get(name, 0))
        if name in FIELD_CHARS:  # a merge field's own value before the assignment
            return _Value(max(assigned.size, FIELD_CHARS[name]), _either(assigned, _Value(0)))
        return assigned

    def item(self, node: Any, kind: str) -> _Value:
        base = node.node
        on_attributes = type(base).__name__ == "Name" and base.name == "attributes"
        key = node.attr if kind == "Getattr" else node.arg
        if on_attributes and (kind == "Getattr" or _is_constant(key, "str")):
            return _Value(ATTRIBUTE_CHARS)
        if kind == "Getitem" and type(key).__name__ == "Slice":
            raise self.refuse("takes a slice, which templates may not: use truncate")
        if kind == "Getitem" and _is_constant(key, "int"):
            return _Value(1, self.expr(base).markup)  # a character
        raise self.refuse(
            "reads a field of something other than attributes (as attributes.plan), or an "
            "index that is not a number (as first_name[0])"
        )

    def filter(self, node: Any, value: _Value) -> _Value:
        spec = _FILTERS.get(node.name)
        if spec is None:
            raise self.refuse(
                f"uses the filter {node.name!r}, which templates may not use: remove it; "
                f"the filters templates may use are {', '.join(sorted(_FILTERS))}"
            )
        names = [name for name, _ in spec.params]
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise self.refuse(f"passes *args or **kwargs to {node.name}, which it may not")
        if len(node.args) > len(names):
            raise self.refuse(f"gives {node.name} more than {len(names)} arguments")
        given = dict(zip(names, node.args, strict=False))
        for keyword in node.kwargs:
            if keyword.key not in names or keyword.key in given:
                raise self.refuse(f"gives {node.name} an argument {keyword.key!r} it does not take")
            given[keyword.key] = keyword.value
        if any(name not in given for name in names[: spec.required]):
            raise self.refuse(f"gives {node.name} fewer than {spec.required} arguments")
        arguments: dict[str, _Value] = {}
        constants: dict[str, Any] = {}
        for name, kinds in spec.params:
            if name not in given:
                continue
            if kinds == "any":
                arguments[name] = self.expr(given[name])
                continue
            try:
                constants[name] = _constant(given[name], kinds)
            except _Failed:
                raise self.refuse(
                    f"gives {node.name} a {name} that is not a constant {kinds}: write one "
                    "in the template"
                ) from None
        try:
            size = spec.longest(value.size, {k: v.size for k, v in arguments.items()}, constants)
        except ValueError as refused:
            raise self.refuse(str(refused)) from None
        if spec.markup is None:  # markup if its value is (plain text only in text parts)
            markup = value.markup if self.autoescape or node.name != "replace" else _PLAIN
        elif spec.markup == _EITHER:  # its value or its default
            markup = _either(value, arguments.get("default_value", _Value(0)))
        else:
            markup = spec.markup
        return _Value(size, markup)

    def test(self, name: str, node: Any) -> None:
        if name not in _TESTS:
            raise self.refuse(
                f"uses the test {name!r}, which templates may not use; the tests templates "
                f"may use are {', '.join(sorted(_TESTS))}"
            )
        if node.kwargs or node.dyn_args is not None or node.dyn_kwargs is not None:
            raise self.refuse(f"gives the test {name} keyword or * arguments")
        if len(node.args) != _TESTS[name]:
            raise self.refuse(f"gives the test {name} {len(node.args)} arguments")
        self.expr(node.node)
        for arg in node.args:
            self.operand(arg, name == "in")

    def operand(self, node: Any, container: bool) -> None:
        """The right of a comparison: in `in`, a tuple or list of constants may be."""
        if container and type(node).__name__ in ("Tuple", "List"):
            for item in node.items:
                if type(item).__name__ != "Const":
                    raise self.refuse("tests `in` a tuple or list of other than constants")
            return
        self.expr(node)

    def arithmetic(self, node: Any, kind: str) -> _Value:
        left, right = self.expr(node.left), self.expr(node.right)
        strings = [_is_constant(n, "str") for n in (node.left, node.right)]
        if kind == "Mul" and any(strings):
            raise self.refuse(
                "repeats a string (a repetition with *), which templates may not: * is for numbers"
            )
        if kind == "Mod" and any(strings):
            raise self.refuse(
                "formats a string with %, which templates may not: % is for numbers; "
                "join values with ~"
            )
        if all(type(n).__name__ == "Const" for n in (node.left, node.right)):
            try:
                _arithmetic(node.operator, node.left.value, node.right.value)
            except _Failed as failed:
                raise self.refuse(
                    f"computes {node.left.value!r} {node.operator} {node.right.value!r}, "
                    f"which fails ({failed})"
                ) from None
        if kind == "Add":  # two numbers, or two strings joined (markup escapes the other)
            joined = _joined([left, right])
            return _Value(max(NUMBER_CHARS, joined.size), joined.markup)
        return _Value(NUMBER_CHARS)


def _is_constant(node: Any, kinds: str) -> bool:
    try:
        _constant(node, kinds)
    except _Failed:
        return False
    return True


def _capped(size: int) -> int:
    """Sizes past what is refused anyway need not grow (a doubling would make them huge)."""
    return min(size, MAX_WORK_CHARS + 1)


def _total_comparisons(tree: Any) -> Any:
    """Comparisons as tests, which are total: Jinja compiles `a < b` to Python's `<`, which
    raises for a string and a number."""
    from jinja2 import nodes
    from jinja2.visitor import NodeTransformer

    class Total(NodeTransformer):
        def visit_Compare(self, node: Any) -> Any:  # noqa: N802 - Jinja's visitor names
            self.generic_visit(node)
            left, parts = node.expr, []
            for operand in node.ops:
                name = "in" if operand.op in ("in", "notin") else _COMPARISONS[operand.op]
                test = nodes.Test(left, name, [operand.expr], [], None, None)
                parts.append(nodes.Not(test) if operand.op == "notin" else test)
                left = operand.expr
            result: Any = parts[0]
            for part in parts[1:]:
                result = nodes.And(result, part)
            return result.set_lineno(node.lineno)

    return Total().visit(tree)


@dataclass(frozen=True)
class _Compiled:
    template: Any
    longest: int


@functools.lru_cache(maxsize=16)
def _compiled(source: str, autoescape: bool, where: str) -> _Compiled:
    """The template, checked: each recipient of a send renders the same three."""
    from jinja2 import TemplateError, TemplateSyntaxError

    environment = _environments.get(autoescape)
    try:
        tree = environment.parse(source)
    except TemplateSyntaxError as exc:
        raise Unprocessable(
            f"the {where} is not a valid template: {exc.message} (line {exc.lineno})",
            [{"loc": ["body", where], "msg": f"line {exc.lineno}: {exc.message}"}],
        ) from None
    except RecursionError:
        raise _too_deep(where) from None
    _screen(tree, where)
    measure = _Measure(where, autoescape)
    longest = measure.template(tree)
    unknown = sorted(measure.unknown)
    if unknown:
        raise Unprocessable(
            f"the {where} names unknown merge fields: {', '.join(unknown)}",
            [
                {
                    "loc": ["body", where],
                    "msg": f"unknown merge field {name!r}; known: "
                    + ", ".join(sorted(MERGE_FIELDS)),
                }
                for name in unknown
            ],
        )
    if longest > MAX_RENDERED_CHARS or measure.work > MAX_WORK_CHARS:
        escaped = ", 5 times that once escaped" if autoescape else ""
        raise _refuse(
            where,
            f"could render to more than {MAX_RENDERED_CHARS} characters for some contacts "
            f"(counting each merge field as long as a contact's can be: {ATTRIBUTE_CHARS} "
            f"characters for an attribute{escaped}): use fewer merge fields, or shorten "
            "them with truncate",
        )
    tree = _total_comparisons(tree)
    tree.set_environment(environment)
    if any(depth > MAX_DEPTH + 5 for _, depth in _nodes(tree)):
        raise _too_deep(where)
    try:
        template = environment.from_string(tree)
    except TemplateError as exc:
        raise _refuse(where, f"is not a valid template: {exc}") from None
    except (RecursionError, SyntaxError, MemoryError):  # the Python it compiles to
        raise _too_deep(where) from None
    return _Compiled(template, longest)


def longest(where: str, source: str) -> int:
    """The longest `source` can render to as the `where` part, for any contact (422 if it
    is refused)."""
    return _compiled(source, where == "html", where).longest


def _render_one(source: str, autoescape: bool, where: str, values: Mapping[str, Any]) -> str:
    compiled = _compiled(source, autoescape, where)
    parts: list[str] = []
    size = 0
    try:
        for chunk in compiled.template.generate(**values):
            size += len(chunk)
            if size > MAX_RENDERED_CHARS:
                raise _refuse(where, f"renders to more than {MAX_RENDERED_CHARS} characters")
            parts.append(chunk)
    except Unprocessable:
        raise
    except Exception as exc:  # a last resort: operations and filters are total
        raise _refuse(where, f"does not render: {exc}") from None
    return "".join(parts)


def render(
    subject: str,
    html: str,
    text: str,
    contact: Mapping[str, Any],
    footer: Footer,
) -> Rendered:
    """The message for one contact, footer included (Unprocessable if it cannot render,
    which `check` makes sure of for every contact)."""
    values = merge_values(contact, footer.unsubscribe_url, footer.company_name)
    rendered_subject = _subject(subject, values)
    if not rendered_subject:
        # As for the contact without fields `check` renders it for: never blank then.
        blank = merge_values({}, _CHECK_FOOTER.unsubscribe_url, _CHECK_FOOTER.company_name)
        rendered_subject = _subject(subject, blank)
    if not rendered_subject:
        raise Unprocessable(
            "the subject renders empty", [{"loc": ["body", "subject"], "msg": "renders empty"}]
        )
    body_html = _render_one(html, True, "html", values)
    body_text = _render_one(text, False, "text", values)
    return Rendered(
        subject=rendered_subject,
        html=body_html + _html_footer(footer),
        text=body_text.rstrip("\n") + "\n" + _text_footer(footer),
    )


def _subject(source: str, values: Mapping[str, Any]) -> str:
    return one_line(_render_one(source, False, "subject", values))  # no control character


def check(subject: str, html: str, text: str) -> None:
    """Refuse (422) templates that do not parse, name unknown fields, do what templates may
    not, could render too long for some contact, or whose subject is blank for a contact
    without fields. One that passes renders for every contact."""
    for contact in (_SAMPLE_CONTACT, {}):
        render(subject, html, text, contact, _CHECK_FOOTER)


def _html_footer(footer: Footer) -> str:
    address = html_lib.escape(footer.postal_address).replace("\n", "<br>")
    url = html_lib.escape(footer.unsubscribe_url, quote=True)
    sender = f"{html_lib.escape(footer.company_name)}<br>" if footer.company_name else ""
    return (
        '\n<div style="margin-top:32px;font-size:12px;color:#666">'
        f"<p>{sender}{address}</p>"
        f'<p><a href="{url}">Unsubscribe</a> from these emails.</p></div>\n'
    )


def _text_footer(footer: Footer) -> str:
    sender = f"{footer.company_name}\n" if footer.company_name else ""
    return f"\n--\n{sender}{footer.postal_address}\nUnsubscribe: {footer.unsubscribe_url}\n"
