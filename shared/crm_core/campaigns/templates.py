"""A campaign's subject and bodies: Jinja2 templates of merge fields, rendered in a sandbox.

    {{ first_name | default("there") }}, {{ attributes.plan }}, {{ unsubscribe_url }}

- The sandbox (`SandboxedEnvironment`) refuses attribute access to Python internals, so a
  template written by a tenant's user cannot reach the function's code or environment.
- The HTML body autoescapes every merge field: a contact named `<script>` is shown, never
  run. The subject and the text part are not HTML, so they are not escaped (a subject's
  line breaks are removed, as a header must not carry them).
- Only the merge fields below exist (`MERGE_FIELDS`); a template naming another, or one
  that does not parse or render, is refused when the campaign is saved (422), not when it
  is sent. Missing values render empty unless the template gives a `default`.
- A template's work is bounded, so that saving or sending one cannot stall a function:
  merge fields, filters and `if` are what campaigns need, so loops, macros, includes and
  blocks are refused, the environment has no globals (no `range`, `lipsum`...), a number
  in a template is at most `MAX_NUMBER`, `**` is refused and `*` may not build a string or
  list longer than `MAX_RENDERED_CHARS`.
- The footer with the tenant's postal address and the unsubscribe link is added to every
  message by `render` (the template cannot leave it out).
"""

from __future__ import annotations

import html as html_lib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crm_core.errors import Unprocessable

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
MAX_NUMBER = 10_000
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


def _bounded_environment(autoescape: bool) -> Any:
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Bounded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**":
                raise SecurityError("the power operator (**) is not allowed in templates")
            for sequence, times in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(times, int)
                    and len(sequence) * times > MAX_RENDERED_CHARS
                ):
                    raise SecurityError(f"a repetition longer than {MAX_RENDERED_CHARS} characters")
            return super().call_binop(context, operator, left, right)

    environment = Bounded(autoescape=autoescape, keep_trailing_newline=True)
    environment.globals.clear()
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


def merge_values(
    contact: Mapping[str, Any], unsubscribe_url: str, company_name: str | None
) -> dict[str, Any]:
    """What a template can name, from a contact item (or the API's contact). Missing values
    are left out, so they render empty or as the template's `default`."""
    first, last = contact.get("first_name"), contact.get("last_name")
    values = {
        "first_name": first,
        "last_name": last,
        "full_name": " ".join(part for part in (first, last) if part) or None,
        "email": contact.get("email"),
        "title": contact.get("title"),
        "country": contact.get("country"),
        "lifecycle_stage": contact.get("lifecycle_stage"),
        "attributes": dict(contact.get("attributes") or {}),
        "unsubscribe_url": unsubscribe_url,
        "company_name": company_name,
    }
    return {name: value for name, value in values.items() if value is not None}


def _refuse(where: str, detail: str) -> Unprocessable:
    return Unprocessable(f"the {where} {detail}", [{"loc": ["body", where], "msg": detail}])


def _bounded(parsed: Any, where: str) -> None:
    from jinja2 import nodes

    for node in parsed.find_all(nodes.Node):
        refused = _REFUSED_STATEMENTS.get(type(node).__name__)
        if refused:
            raise _refuse(
                where, f"uses {refused}: templates hold merge fields, filters and if only"
            )
        value = getattr(node, "value", None) if isinstance(node, nodes.Const) else None
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and abs(value) > MAX_NUMBER:  # type: ignore[arg-type]
            raise _refuse(where, f"has a number above {MAX_NUMBER}")


def _compile(source: str, autoescape: bool, where: str) -> Any:
    from jinja2 import TemplateSyntaxError, meta

    environment = _environments.get(autoescape)
    try:
        parsed = environment.parse(source)
        _bounded(parsed, where)
        # Compiling (here, to find the names) checks that every filter and test exists.
        declared = meta.find_undeclared_variables(parsed)
    except TemplateSyntaxError as exc:
        raise Unprocessable(
            f"the {where} is not a valid template: {exc.message} (line {exc.lineno})",
            [{"loc": ["body", where], "msg": f"line {exc.lineno}: {exc.message}"}],
        ) from None
    unknown = sorted(declared - MERGE_FIELDS)
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
    return environment.from_string(source)


def _render_one(source: str, autoescape: bool, where: str, values: Mapping[str, Any]) -> str:
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    template = _compile(source, autoescape, where)
    try:
        result = str(template.render(**values))
    except SecurityError as exc:
        raise Unprocessable(
            f"the {where} does something templates may not: {exc}",
            [{"loc": ["body", where], "msg": str(exc)}],
        ) from None
    except (
        TemplateError,
        ArithmeticError,
        TypeError,
        ValueError,
        LookupError,
        MemoryError,
        RecursionError,
    ) as exc:
        raise Unprocessable(
            f"the {where} does not render: {exc}", [{"loc": ["body", where], "msg": str(exc)}]
        ) from None
    if len(result) > MAX_RENDERED_CHARS:
        raise Unprocessable(
            f"the {where} renders to more than {MAX_RENDERED_CHARS} characters",
            [{"loc": ["body", where], "msg": "too long once rendered"}],
        )
    return result


def render(
    subject: str,
    html: str,
    text: str,
    contact: Mapping[str, Any],
    footer: Footer,
) -> Rendered:
    """The message for one contact, footer included (Unprocessable if it cannot render)."""
    values = merge_values(contact, footer.unsubscribe_url, footer.company_name)
    rendered_subject = " ".join(_render_one(subject, False, "subject", values).split())
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


def check(subject: str, html: str, text: str) -> None:
    """Refuse (422) templates that do not parse, name unknown fields, or do not render for a
    sample contact (or one with no fields at all)."""
    footer = Footer("1 Sample Street, Sample Town", "https://example.invalid/unsubscribe")
    for contact in (_SAMPLE_CONTACT, {}):
        render(subject, html, text, contact, footer)


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
