"""Campaign templates (crm_core/campaigns/templates.py): merge fields, escaping, the footer,
and the sandbox that keeps a tenant's template away from the function's internals."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_core.campaigns import templates
from crm_core.campaigns.templates import Footer, check, render
from crm_core.errors import Unprocessable

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "<script>alert(1)</script>"
FOOTER = Footer("1 Main Street\nSpringfield 12345", "https://api.example.com/unsubscribe?token=a&b")
CONTACT: dict[str, Any] = {
    "first_name": SCRIPT,
    "last_name": "O'Neil & Co",
    "email": "ada@example.com",
    "country": "GB",
    "lifecycle_stage": "lead",
    "attributes": {"plan": "<b>pro</b>", "seats": 3},
}


def _refused(subject: str = "s", html: str = "h", text: str = "t") -> dict[str, Any]:
    with pytest.raises(Unprocessable) as refused:
        check(subject, html, text)
    error = refused.value
    assert error.errors, error.detail
    for item in error.errors:
        assert set(item) == {"loc", "msg"}
        assert item["loc"][0] == "body"
        assert item["msg"]
    return {"detail": error.detail, "errors": error.errors}


# Merge fields and escaping ------------------------------------------------------------------
def test_html_escapes_merge_fields_and_text_and_subject_do_not() -> None:
    rendered = render(
        "Hi {{ first_name }}",
        "<p>{{ first_name }} {{ last_name }} {{ attributes.plan }}</p>",
        "{{ first_name }} {{ last_name }} {{ attributes.plan }}",
        CONTACT,
        FOOTER,
    )
    assert rendered.subject == f"Hi {SCRIPT}"
    assert "<script>" not in rendered.html
    assert (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt; O&#39;Neil &amp; Co &lt;b&gt;pro&lt;/b&gt;</p>"
        in rendered.html
    )
    assert rendered.text.startswith(f"{SCRIPT} O'Neil & Co <b>pro</b>\n")


def test_the_template_markup_itself_is_kept() -> None:
    rendered = render("s", "<h1 class='x'>Hello</h1>", "t", {}, FOOTER)
    assert rendered.html.startswith("<h1 class='x'>Hello</h1>")


def test_fields_the_contact_lacks_render_their_default_or_empty() -> None:
    rendered = render(
        "Hello {{ attributes.nick | default('there') }}",
        "<p>[{{ attributes.nothing }}]</p>",
        "t",
        {},
        FOOTER,
    )
    assert rendered.subject == "Hello there"
    assert rendered.html.startswith("<p>[]</p>")


_NONE_REASON = (
    "templates.merge_values maps a field the contact lacks to None, not to undefined: it "
    "renders as the text 'None' ('Hi None' to every contact without a first name) and "
    "`default(...)` never applies, though the module promises 'Missing values render empty "
    "unless the template gives a default'"
)


def test_missing_fields_render_empty_or_their_default() -> None:
    rendered = render(
        "Hello {{ first_name | default('there') }}",
        "<p>[{{ title }}]</p>",
        "{{ full_name }}|{{ company_name }}",
        {},
        FOOTER,
    )
    assert rendered.subject == "Hello there"
    assert rendered.html.startswith("<p>[]</p>")
    assert rendered.text.startswith("|\n")


def test_full_name_and_company_name() -> None:
    footer = Footer("1 Main Street, Springfield", "https://u.example/x", company_name="Acme & Sons")
    rendered = render(
        "{{ full_name }}",
        "{{ company_name }}",
        "{{ full_name }}",
        {"last_name": "Lovelace"},
        footer,
    )
    assert rendered.subject == "Lovelace"
    assert rendered.html.startswith("Acme &amp; Sons")
    assert "Acme &amp; Sons<br>" in rendered.html
    assert "Acme & Sons\n" in rendered.text


def test_a_subject_never_carries_line_breaks() -> None:
    rendered = render(
        "Hi\r\n{{ first_name }}\nBcc: x@evil.test", "h", "t", {"first_name": "A\nB"}, FOOTER
    )
    assert "\n" not in rendered.subject
    assert "\r" not in rendered.subject
    assert rendered.subject == "Hi A B Bcc: x@evil.test"


def test_a_subject_that_renders_empty_is_refused() -> None:
    with pytest.raises(Unprocessable) as refused:
        render("{{ first_name }}", "h", "t", {}, FOOTER)
    assert refused.value.errors[0]["loc"] == ["body", "subject"]


def test_every_message_gets_the_footer_escaped_in_html() -> None:
    rendered = render("s", "<p>body</p>", "body", {}, FOOTER)
    assert "1 Main Street<br>Springfield 12345" in rendered.html
    assert 'href="https://api.example.com/unsubscribe?token=a&amp;b"' in rendered.html
    assert rendered.text == (
        "body\n\n--\n1 Main Street\nSpringfield 12345\n"
        "Unsubscribe: https://api.example.com/unsubscribe?token=a&b\n"
    )


def test_unsubscribe_url_is_a_merge_field() -> None:
    rendered = render(
        "s", '<a href="{{ unsubscribe_url }}">out</a>', "{{ unsubscribe_url }}", {}, FOOTER
    )
    assert rendered.html.startswith('<a href="https://api.example.com/unsubscribe?token=a&amp;b">')
    assert rendered.text.startswith("https://api.example.com/unsubscribe?token=a&b")


@given(st.text(max_size=200))
def test_any_field_value_is_escaped_in_html(value: str) -> None:
    rendered = render("s", "{{ first_name }}", "{{ first_name }}", {"first_name": value}, FOOTER)
    body = rendered.html[: rendered.html.index('\n<div style="margin-top:32px')]
    for char in '<>"':
        assert char not in body
    assert rendered.text.startswith(value.rstrip("\n"))


# Refusals at save time -----------------------------------------------------------------------
@pytest.mark.parametrize("where", ["subject", "html", "text"])
def test_unknown_merge_fields_are_refused_with_the_known_ones(where: str) -> None:
    problem = _refused(**{where: "{{ first_name }} {{ password }} {{ api_key }}"})
    assert [e["loc"] for e in problem["errors"]] == [["body", where]] * 2
    assert "api_key, password" in problem["detail"]
    assert "first_name" in problem["errors"][0]["msg"]  # the known fields are listed


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("html", "<p>{{ first_name </p>"),
        ("text", "{% if first_name %}unclosed"),
        ("subject", "{% endfor %}"),
        ("html", "{{ first_name | no_such_filter }}"),
        ("text", "{% if first_name is no_such_test %}x{% endif %}"),
    ],
    ids=["unclosed-tag", "unclosed-block", "stray-end", "unknown-filter", "unknown-test"],
)
def test_templates_that_do_not_parse_are_refused(
    request: pytest.FixtureRequest, where: str, source: str
) -> None:
    problem = _refused(**{where: source})
    assert problem["errors"][0]["loc"] == ["body", where]


@pytest.mark.parametrize(
    "source",
    [
        "{{ first_name.upper() + 1 }}",  # fine for a sample contact, not for one without fields
        "{{ 1 / 0 }}",
        "{{ attributes.plan.nope() }}",
    ],
)
def test_templates_that_do_not_render_are_refused(source: str) -> None:
    problem = _refused(text=source)
    assert problem["errors"][0]["loc"] == ["body", "text"]


def test_assigned_names_are_not_unknown_fields() -> None:
    check("s", "{% set greeting = 'Hi' %}{{ greeting }} {{ first_name }}", "t")


# The sandbox ----------------------------------------------------------------------------------
SANDBOX_ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ attributes.__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ first_name.format.__globals__ }}",
    "{{ attributes.update({'x': 1}) }}",
    "{{ (attributes.items() | list)[0].__class__ }}",
    "{% set x = attributes.__setitem__('a', 1) %}",
]


@pytest.mark.parametrize("source", SANDBOX_ESCAPES)
def test_sandbox_escapes_are_refused_or_harmless(source: str) -> None:
    """Either refused at save time, or what they render reveals nothing of Python's
    internals (an unsafe attribute renders empty)."""
    try:
        check("s", source, "t")
    except Unprocessable as refused:
        where = refused.errors[0]["loc"]
    else:
        where = None
    if where is not None:
        assert where == ["body", "html"]
        return
    rendered = render("s", source, "t", {"first_name": "Ada", "attributes": {"a": 1}}, FOOTER)
    body = rendered.html[: rendered.html.index('\n<div style="margin-top:32px')]
    for leak in ("class", "module", "function", "uid=", "built-in", "object at 0x"):
        assert leak not in body, body


def test_a_template_cannot_change_the_contact_it_renders() -> None:
    contact = {"first_name": "Ada", "attributes": {"a": 1}}
    for source in ("{{ attributes.update({'a': 2}) }}", "{{ attributes.pop('a') }}"):
        with contextlib.suppress(Unprocessable):
            render("s", source, "t", contact, FOOTER)
    assert contact == {"first_name": "Ada", "attributes": {"a": 1}}


def test_loops_macros_and_includes_are_refused() -> None:
    for source in (
        "{% for c in email %}x{% endfor %}",
        "{% macro m() %}x{% endmacro %}{{ m() }}",
        "{% include 'other' %}",
        "{% extends 'base' %}",
        "{% block b %}x{% endblock %}",
    ):
        problem = _refused(html=source)
        assert "merge fields, filters and if only" in problem["detail"], source


def test_templates_have_no_globals() -> None:
    for name in ("range", "lipsum", "cycler", "joiner", "namespace", "dict"):
        problem = _refused(html=f"{{{{ {name} }}}}")
        assert name in problem["detail"]


def test_big_numbers_and_products_are_refused() -> None:
    assert "number above" in _refused(text="{{ 'x' * 10001 }}")["detail"]
    assert "**" in _refused(text="{{ 2 ** 8 }}")["detail"]
    assert "repetition" in _refused(text="{{ 'x' * 10000 * 10000 }}")["detail"]
    assert "repetition" in _refused(subject="{{ ('ab' * 9999) * 9999 }}")["detail"]


def test_an_output_too_large_is_refused() -> None:
    """Too large for a contact whose attribute is as long as an attribute can be (1000
    characters, 5 times that once escaped)."""
    big = "{{ attributes.bio }}" * 101
    problem = _refused(html=big)
    assert "more than" in problem["detail"]


# Render work a template can ask for, measured in a child process with a time and memory
# limit, so that a runaway template fails its test instead of hanging the suite.
_PROBE = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    from crm_core.campaigns import templates
    from crm_core.errors import Unprocessable
    try:
        templates.check("s", sys.argv[1], "t")
        print(json.dumps({"outcome": "accepted"}))
    except Unprocessable as exc:
        print(json.dumps({"outcome": "refused", "detail": exc.detail}))
    """
)


def _probe(source: str, seconds: float = 3.0) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, source],
            env={"PYTHONPATH": str(ROOT / "shared"), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"outcome": f"still running after {seconds} s"}
    if done.returncode != 0:
        return {"outcome": "crashed", "stderr": done.stderr[-500:]}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_probe_sees_ordinary_outcomes() -> None:
    assert _probe("{{ first_name }}")["outcome"] == "accepted"
    assert _probe("{{ nope }}")["outcome"] == "refused"


WORK_BOMBS = [
    # Each range is under the sandbox's MAX_RANGE; nested, they are 10**10 iterations.
    (
        "nested-ranges",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    ),
    # 10 GB of string before the output size is ever checked (a MemoryError: not a 422).
    ("string-product", "{{ 'x' * 10**10 }}"),
    # ~10**8 words of lorem ipsum, thrown away by `length`: small output, minutes of CPU.
    ("lipsum", "{{ lipsum(10**6) | length }}"),
]


@pytest.mark.parametrize(("name", "source"), WORK_BOMBS, ids=[n for n, _ in WORK_BOMBS])
def test_render_work_is_bounded(name: str, source: str) -> None:
    assert _probe(source)["outcome"] == "refused"


def test_merge_fields_are_the_documented_ones() -> None:
    assert {
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
    } == templates.MERGE_FIELDS
