"""What a campaign template may cost, and that a template saved renders for every contact
(crm_core/campaigns/templates.py, docs/decisions.md "Merge fields render in Jinja2's
sandbox"): filters and operators whose output a template sizes are refused when it is saved,
operations are total (one that fails renders as a missing value), and the size of every
value a render computes is bounded before anything is rendered.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crm_core.campaigns import templates
from crm_core.campaigns.templates import Footer, check, render
from crm_core.errors import Unprocessable

FOOTER = Footer("1 Main Street, Springfield 12345", "https://api.example.com/unsubscribe?t=a")
HTML_FOOTER_START = '\n<div style="margin-top:32px'
TEXT_FOOTER_START = "\n\n--\n"
SCRIPT = "<script>alert(1)</script>"
# 40 times the cap on a rendered part (the finding's template asked for 150 000 000).
WIDTH = 20_000_000
# Far below what any of the templates below asked for before they were bounded.
PEAK_BYTES = 8 * 2**20


def _html_body(source: str, contact: dict[str, Any]) -> str:
    rendered = render("s", source, "t", contact, FOOTER).html
    return rendered[: rendered.rindex(HTML_FOOTER_START)]


def _text_body(source: str, contact: dict[str, Any]) -> str:
    rendered = render("s", "h", source, contact, FOOTER).text
    return rendered[: rendered.rindex(TEXT_FOOTER_START)]


def _refused(**parts: str) -> Unprocessable:
    with pytest.raises(Unprocessable) as refused:
        check(**{"subject": "s", "html": "h", "text": "t", **parts})
    where = next(iter(parts))
    assert [e["loc"] for e in refused.value.errors] == [["body", where]], refused.value.errors
    return refused.value


def _peak(action: Callable[[], object]) -> tuple[object, int]:
    """What `action` returned (or the Unprocessable it raised), and the most memory it held."""
    tracemalloc.start()
    try:
        try:
            outcome: object = action()
        except Unprocessable as refused:
            outcome = refused
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return outcome, peak


# Filters: a list of the ones merge templates need; the others are refused, by name ----------
SIZING_FILTERS = [
    ("format", f'{{{{ "%0{WIDTH}d"|format(1) }}}}'),
    ("format", '{{ "%0*d"|format(attributes.n|default(1), 1) }}'),
    ("center", "{{ first_name|center(10000) }}"),
    ("indent", "{{ first_name|indent(10000, true) }}"),
    ("wordwrap", "{{ first_name|wordwrap(1, wrapstring='xxxxxxxxxx') }}"),
    ("join", "{{ email|join(attributes.separator|default('--')) }}"),
    ("batch", "{{ email|batch(3) }}"),
    ("slice", "{{ email|slice(3) }}"),
    ("list", "{{ email|list }}"),
    ("pprint", "{{ email|pprint }}"),
    ("tojson", "{{ email|tojson }}"),
    ("urlize", "{{ email|urlize }}"),
    ("xmlattr", "{{ email|xmlattr }}"),
    ("safe", "{{ first_name|safe }}"),
]


@pytest.mark.parametrize(
    ("name", "source"), SIZING_FILTERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SIZING_FILTERS)]
)
def test_a_filter_not_on_the_list_is_refused_at_save_by_name(name: str, source: str) -> None:
    refused, peak = _peak(lambda: _refused(html=source))
    assert isinstance(refused, Unprocessable)
    message = refused.errors[0]["msg"]
    assert f"'{name}'" in message, message
    assert "truncate" in message  # the fix: the filters that may be used
    assert peak < PEAK_BYTES


def test_the_filters_and_tests_a_template_may_use() -> None:
    assert {
        "abs",
        "capitalize",
        "count",
        "d",
        "default",
        "e",
        "escape",
        "float",
        "int",
        "length",
        "lower",
        "replace",
        "round",
        "striptags",
        "title",
        "trim",
        "truncate",
        "upper",
        "urlencode",
        "wordcount",
    } == templates.FILTERS
    assert {"defined", "undefined", "none", "number", "string", "even", "odd", "in"} <= (
        templates.TESTS
    )


def test_the_allowed_filters_keep_working() -> None:
    contact = {"first_name": "  ada  ", "attributes": {"n": Decimal("-2.5"), "s": "a b&c"}}
    source = (
        "{{ first_name|trim|capitalize }}|{{ first_name|upper|trim }}|{{ attributes.s|title }}|"
        "{{ attributes.s|replace('&', ' and ') }}|{{ attributes.s|urlencode }}|"
        "{{ attributes.n|abs }}|{{ attributes.n|round }}|{{ attributes.n|int }}|"
        "{{ attributes.s|length }}|{{ attributes.s|wordcount }}|{{ attributes.x|d('none') }}|"
        "{{ 'Hello world again'|truncate(12, leeway=0) }}|{{ '<b>x</b>'|striptags }}"
    )
    assert _text_body(source, contact) == (
        "Ada|ADA|A B&c|a b and c|a%20b%26c|2.5|-2|-2|5|3|none|Hello...|x"
    )


# Attack templates: refused when saved, in little memory ----------------------------------------
def _doubling(seed: str, step: str, times: int) -> str:
    return f"{{% set a = {seed} %}}" + f"{{% set a = {step} %}}" * times + "{{ a|length }}"


SAVE_ATTACKS = [
    ("format-width", f'{{{{ "%0{WIDTH}d"|format(1) }}}}'),
    ("percent-width", f"{{{{ '%0{WIDTH}d' % 1 }}}}"),
    ("percent-of-a-merge-value", "{{ '%s and %s' % (first_name, email) }}"),
    ("repeated-string", "{{ 'x' * 10000 }}{{ first_name ~ ('-' * 9000) }}"),
    ("concat-doubling", _doubling("attributes.s", "a ~ a", 14)),
    ("plus-doubling", _doubling("attributes.s", "a + a", 14)),
    (
        "set-block-doubling",
        "{% set a %}{{ attributes.s }}{% endset %}"
        + "{% set a %}{{ a }}{{ a }}{% endset %}" * 14
        + "{{ a|length }}",
    ),
    (
        "with-doubling",
        "{% with a = attributes.s %}"
        + "{% with a = a ~ a %}" * 14
        + "{{ a|length }}"
        + "{% endwith %}" * 15,
    ),
    ("replace-growth", "{{ attributes.s|replace('', '0123456789') }}"),
    ("replace-by-a-merge-value", "{{ attributes.s|replace('a', attributes.t) }}"),
    ("many-merge-fields", "{{ attributes.s }}" * 200),
    ("parentheses", "{{ " + "(" * 10_000 + "first_name" + ")" * 10_000 + " }}"),
    ("nots", "{{ " + "not " * 10_000 + "first_name }}"),
    ("minuses", "{{ " + "-" * 10_000 + "attributes.n }}"),
    ("filter-chain", "{{ first_name" + "|upper" * 10_000 + " }}"),
    ("plus-chain", "{{ " + " + ".join(["first_name"] * 5_000) + " }}"),
    ("nested-ifs", "{% if first_name %}" * 2_000 + "x" + "{% endif %}" * 2_000),
    ("autoescape-off", "{% autoescape false %}{{ first_name }}{% endautoescape %}"),
    ("filtered-set-block", "{% set x | striptags %}{{ first_name }}{% endset %}{{ x }}"),
    ("filter-block", "{% filter center(10000) %}{{ first_name }}{% endfilter %}"),
    ("method-call", "{{ first_name.center(10000) }}"),
    ("slice", "{{ first_name[::-1] }}"),
]


@pytest.mark.parametrize(("name", "source"), SAVE_ATTACKS, ids=[n for n, _ in SAVE_ATTACKS])
def test_an_attack_template_is_a_422_at_save_in_little_memory(name: str, source: str) -> None:
    refused, peak = _peak(lambda: _refused(html=source))
    assert isinstance(refused, Unprocessable), refused
    assert refused.errors[0]["msg"]
    assert peak < PEAK_BYTES, f"{name}: {peak} bytes"


def test_each_refusal_says_what_to_do() -> None:
    attacks = dict(SAVE_ATTACKS)
    assert "too deeply" in _refused(html=attacks["parentheses"]).detail
    assert "repetition" in _refused(text="{{ first_name ~ ('-' * 9000) }}").detail
    assert "formats a string" in _refused(text="{{ '%s!' % first_name }}").detail
    longest = _refused(html="{{ attributes.s }}" * 200).detail
    assert f"more than {templates.MAX_RENDERED_CHARS} characters" in longest
    assert "truncate" in longest
    assert "escaped" in _refused(html=attacks["autoescape-off"]).detail
    assert "filter" in _refused(html=attacks["filtered-set-block"]).detail


# At send: what a contact holds cannot make a render exhaust memory ---------------------------
FORMAT = f"%0{WIDTH}d"
SEND_ATTACKS: list[tuple[str, str, dict[str, Any], str | None]] = [
    # (name, text template, the contact's attributes, what renders: None = refused)
    (
        "format-width-from-a-contact",
        '{{ "%0*d"|format(attributes.n|default(1), 1) }}',
        {"n": WIDTH},
        None,
    ),
    (
        "even-of-a-format",
        "{% if attributes.f is even %}even{% else %}not{% endif %}",
        {"f": FORMAT},
        "not",
    ),
    (
        "divisibleby-a-format",
        "{% if attributes.f is divisibleby 3 %}y{% else %}n{% endif %}",
        {"f": FORMAT},
        "n",
    ),
    ("percent-of-a-format", "[{{ attributes.f % 1 }}]", {"f": FORMAT}, "[]"),
    ("repeat-by-a-contact", "[{{ attributes.s * attributes.n }}]", {"s": "x", "n": WIDTH}, "[]"),
    ("doubling-a-contact", _doubling("attributes.s", "a ~ a", 14), {"s": "x" * 1000}, None),
]


@pytest.mark.parametrize(
    ("name", "source", "attributes", "expected"),
    SEND_ATTACKS,
    ids=[n for n, *_ in SEND_ATTACKS],
)
def test_a_contact_cannot_make_a_render_exhaust_memory(
    name: str, source: str, attributes: dict[str, Any], expected: str | None
) -> None:
    """Templates saved before these rules (refused now, at send too) or accepted by them."""
    outcome, peak = _peak(lambda: _text_body(source, {"attributes": attributes}))
    if expected is None:
        assert isinstance(outcome, Unprocessable), outcome
        assert outcome.errors[0]["loc"] == ["body", "text"]
    else:
        assert outcome == expected
    assert peak < PEAK_BYTES, f"{name}: {peak} bytes"


# Operations are total: one that fails for a contact renders as a missing value ---------------
TOTAL = [
    ("{{ 100 / attributes.n }}", {"n": 0}, ""),
    ("{{ 100 / attributes.n }}", {"n": Decimal(0)}, ""),
    ("{{ (100 / attributes.n)|default('n/a') }}", {"n": Decimal(0)}, "n/a"),
    ("{{ 100 / attributes.n }}", {"n": Decimal(4)}, "25"),
    ("{{ attributes.price * 1.5 }}", {"price": Decimal(10)}, "15.0"),
    ("{{ attributes.s + 1 }}", {"s": "x"}, ""),
    ("{{ attributes.s - 1 }}|{{ attributes.s // 2 }}", {"s": "x"}, "|"),
    ("{{ -attributes.s }}", {"s": "x"}, ""),
    ("{{ attributes.s|round }}{{ attributes.s|abs }}", {"s": "x"}, ""),
    ("{{ attributes.s|int + 1 }}", {"s": "41"}, "42"),
    ("{{ attributes.n * attributes.n * attributes.n }}", {"n": 2**53}, ""),
    ("{{ first_name * 3 }}", {}, ""),
    ("{% if attributes.s > 3 %}big{% else %}small{% endif %}", {"s": "x"}, "small"),
    ("{% if attributes.n > 3 %}big{% else %}small{% endif %}", {"n": Decimal(5)}, "big"),
    ("{% if attributes.n < 2.5 %}y{% else %}n{% endif %}", {"n": Decimal(2)}, "y"),
    ("{% if 'a' in attributes.n %}y{% else %}n{% endif %}", {"n": 5}, "n"),
    ("{% if attributes.n not in 'abc' %}y{% else %}n{% endif %}", {"n": 5}, "y"),
    ("{% if attributes.s is divisibleby 0 %}y{% else %}n{% endif %}", {"s": 4}, "n"),
    ("{{ attributes.s[0] }}|{{ attributes.n[0] }}", {"s": "", "n": 7}, "|"),
    ("{{ attributes.s|truncate(5, true, '') }}", {"s": "abcdefghijklmn"}, "abcde"),
]


@pytest.mark.parametrize(("source", "attributes", "expected"), TOTAL)
def test_a_failing_operation_renders_as_a_missing_value(
    source: str, attributes: dict[str, Any], expected: str
) -> None:
    check("s", "h", source)
    assert _text_body(source, {"first_name": "Ada", "attributes": attributes}) == expected


def test_a_subject_blank_for_a_contact_renders_as_for_a_contact_without_fields() -> None:
    subject = "{{ attributes.headline|default('Our news') }}"
    check(subject, "h", "t")
    for headline in (" \t ", "\n"):
        contact = {"attributes": {"headline": headline}}
        assert render(subject, "h", "t", contact, FOOTER).subject == "Our news"
    assert render(subject, "h", "t", {"attributes": {"headline": "Hi"}}, FOOTER).subject == "Hi"


def test_merge_values_a_contact_cannot_hold_render_as_missing() -> None:
    """Other writers of the table (or older code) may have stored what the API refuses."""
    contact = {
        "first_name": "x" * 5000,
        "title": 7,
        "attributes": {"big": 10**40, "nan": Decimal("NaN"), "list": [1, 2], "none": None},
    }
    body = _text_body(
        "{{ first_name|length }}|{{ title }}|{{ attributes.big }}|{{ attributes.nan }}|"
        "{{ attributes.list }}|{{ attributes.none|default('-') }}",
        contact,
    )
    assert body == "100|||||-"


# A contact named <script> is shown, never run -------------------------------------------------
SHOWN = [
    "{{ first_name }}",
    "{{ first_name|e }}",
    "{{ first_name|e|striptags }}",
    "{{ first_name|striptags }}",
    "{{ first_name|upper|lower|title|capitalize|trim }}",
    "{{ first_name|truncate(100) }}",
    "{{ first_name|replace('x', '<b>') }}",
    "{{ first_name|e|replace('&lt;', '<') }}",
    "{{ first_name|default('') ~ last_name }}",
    "{{ first_name + last_name }}",
    "{{ (first_name|e) + last_name }}",
    "{% set x %}{{ first_name }}{% endset %}{{ x }}{{ x|striptags }}",
    "{% with x = first_name %}{{ x }}{% endwith %}",
    "{{ first_name if first_name else last_name }}",
    "{{ first_name[0] }}{{ first_name|urlencode }}",
]


@pytest.mark.parametrize("source", SHOWN)
def test_a_contact_named_script_is_shown_never_run(source: str) -> None:
    check("s", source, "t")
    body = _html_body(source, {"first_name": SCRIPT, "last_name": SCRIPT})
    assert "<" not in body, body


@pytest.mark.parametrize(
    "source",
    [
        "{{ first_name|safe }}",
        "{% autoescape false %}{{ first_name }}{% endautoescape %}",
        "{% set x | striptags %}{{ first_name }}{% endset %}{{ x }}",
        "{% filter striptags %}{{ first_name }}{% endfilter %}",
    ],
)
def test_what_would_let_a_merge_value_write_html_is_refused(source: str) -> None:
    _refused(html=source)


# Any template that passes check() renders for any contact -------------------------------------
NASTY = ["'", '"', "<", ">", "&", "ß", "ﬃ", "İ", "\U000e0001", "%", "\x00", " ", "\n", "ŉ", "a"]


def _texts(longest: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(st.sampled_from(NASTY) | st.characters(), max_size=min(longest, 40)),
        st.sampled_from(NASTY).map(lambda char: char * longest),
        st.sampled_from(["%05d", "%0*d", "{0}", "1e400", " 42 ", "-0", "0x10", "nan"]),
    )


attribute_values = st.one_of(
    _texts(1000),
    st.booleans(),
    st.none(),
    st.integers(-(2**53), 2**53),
    st.integers(-(2**53), 2**53).map(Decimal),
    st.floats(1e-15, 1e15) | st.floats(-1e15, -1e-15) | st.just(0.0),
    st.decimals(-(10**15), 10**15, allow_nan=False, allow_infinity=False),
)
contacts = st.fixed_dictionaries(
    {},
    optional={
        "first_name": _texts(100),
        "last_name": _texts(100),
        "email": _texts(254),
        "title": _texts(150),
        "country": _texts(2),
        "lifecycle_stage": st.sampled_from(["lead", "customer", "opportunity"]),
        "attributes": st.dictionaries(st.sampled_from("anst"), attribute_values, max_size=4),
    },
)

LEAVES = [
    "first_name",
    "last_name",
    "full_name",
    "email",
    "title",
    "country",
    "company_name",
    "unsubscribe_url",
    "attributes.a",
    "attributes.n",
    "attributes['s']",
    "attributes.t",
    # Guarded, as templates that render for a contact without fields are.
    "attributes.n|default(2)",
    "attributes.a|default('')",
    "v",
    '"x"',
    "'<b>'",
    '""',
    "0",
    "3",
    "2.5",
    "10000",
    "true",
    "none",
    "'%s'",
]
FILTER_CALLS = [
    "upper",
    "lower",
    "title",
    "capitalize",
    "trim",
    "striptags",
    "escape",
    "urlencode",
    "length",
    "wordcount",
    "int",
    "float",
    "round",
    "round(2, 'ceil')",
    "abs",
    "default('d')",
    "default(@, true)",
    "truncate(5)",
    "truncate(3, true, '!')",
    "replace('a', 'bb')",
    "replace('', 'x')",
    "center(30)",
    "format(@)",
    "join(', ')",
    "list",
    "first",
    "reverse",
]
OPERATORS = ["+", "-", "*", "/", "//", "%", "~", "**", "and", "or"]
OPERATORS += ["==", "!=", "<", "<=", ">", ">=", "in", "not in"]
TESTS = ["defined", "none", "number", "string", "even", "odd", "divisibleby 3", "lt 5"]
TESTS += ["divisibleby(attributes.n)", "in 'abc'", "upper", "sameas 3"]


def _expressions(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pairs = st.tuples(children, children)
    return st.one_of(
        st.tuples(children, st.sampled_from(FILTER_CALLS), children).map(
            lambda t: f"({t[0]})|{t[1].replace('@', t[2])}"
        ),
        st.tuples(children, st.sampled_from(OPERATORS), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(children, pairs).map(lambda t: f"({t[0]} if {t[1][0]} else {t[1][1]})"),
        children.map(lambda e: f"(not {e})"),
        children.map(lambda e: f"(-{e})"),
        st.tuples(children, st.sampled_from(TESTS)).map(lambda t: f"({t[0]} is {t[1]})"),
        children.map(lambda e: f"({e})[0]"),
    )


expressions = st.recursive(st.sampled_from(LEAVES), _expressions, max_leaves=10)


def _statements(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(expressions, children, children).map(
            lambda t: f"{{% if {t[0]} %}}{t[1]}{{% else %}}{t[2]}{{% endif %}}"
        ),
        st.tuples(expressions, children).map(
            lambda t: f"{{% with v = {t[0]} %}}{t[1]}{{{{ v }}}}{{% endwith %}}"
        ),
        children.map(lambda body: f"{{% set v %}}{body}{{% endset %}}"),
        st.lists(children, min_size=2, max_size=3).map("".join),
    )


# Text of the template's own has no "<": any "<" in an HTML body would be a merge value's.
statements = st.recursive(
    st.one_of(
        st.sampled_from(["Hi ", " ", "\n", "p. ", "&amp;"]),
        expressions.map(lambda e: f"{{{{ {e} }}}}"),
        expressions.map(lambda e: f"{{% set v = {e} %}}"),
    ),
    _statements,
    max_leaves=6,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(source=statements, people=st.lists(contacts, min_size=1, max_size=3))
def test_a_template_that_passes_check_renders_for_any_contact(
    source: str, people: list[dict[str, Any]]
) -> None:
    subject = f"Hi {source}"
    try:
        check(subject, source, source)
    except Unprocessable:
        event("refused at save")
        return
    event("accepted at save")
    for contact in people:
        rendered = render(subject, source, source, contact, FOOTER)  # never raises
        html = rendered.html[: rendered.html.rindex(HTML_FOOTER_START)]
        text = rendered.text[: rendered.text.rindex(TEXT_FOOTER_START)]
        for part in (rendered.subject, html, text):
            assert len(part) <= templates.MAX_RENDERED_CHARS
        assert rendered.subject.strip()
        assert "<" not in html, html


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(source=statements, contact=contacts)
def test_a_render_is_never_longer_than_the_check_allows(
    source: str, contact: dict[str, Any]
) -> None:
    try:
        check("s", source, source)
    except Unprocessable:
        return
    html = _html_body(source, contact)
    text = _text_body(source, contact)
    assert len(html) <= templates.longest("html", source) <= templates.MAX_RENDERED_CHARS
    assert len(text.rstrip("\n")) <= templates.longest("text", source)


def test_the_bound_is_the_worst_a_contact_can_do() -> None:
    """The longest rendering is reached: a name of 100 quotes, each escaped to 5 characters."""
    assert templates.longest("html", "<p>{{ first_name }}</p>") == 7 + 100 * 5
    assert _html_body("<p>{{ first_name }}</p>", {"first_name": "'" * 100}) == (
        "<p>" + "&#39;" * 100 + "</p>"
    )
    assert templates.longest("text", "{{ first_name|upper }}") == 300
    assert len(_text_body("{{ first_name|upper }}", {"first_name": "ﬃ" * 100})) == 300


TOKENS = ["{{", "}}", "{%", "%}", "{#", "#}", "(", ")", "[", "]", ",", ".", "|", "~", "+"]
TOKENS += ["-", "*", "/", "%", "**", "=", "==", "<", " ", "'", '"', "1", "0", "10000"]
TOKENS += ["if", "else", "endif", "set", "endset", "with", "endwith", "filter", "endfilter"]
TOKENS += ["raw", "endraw", "not", "is", "in", "and", "first_name", "attributes", "x", "e"]
TOKENS += ["upper", "replace", "truncate", "format", "center", "default", "defined", "even"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.lists(st.sampled_from(TOKENS) | st.text(max_size=2), max_size=40).map("".join),
    contact=contacts,
)
def test_any_text_is_accepted_or_a_422_and_what_is_accepted_renders(
    source: str, contact: dict[str, Any]
) -> None:
    refused: Unprocessable | None = None
    try:
        check("s", source, source)
    except Unprocessable as exc:
        refused = exc
    if refused is not None:
        assert refused.errors[0]["loc"][0] == "body"
        return
    rendered = render("s", source, source, contact, FOOTER)
    assert HTML_FOOTER_START in rendered.html
