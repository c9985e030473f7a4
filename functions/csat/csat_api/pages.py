"""The satisfaction pages: self-contained HTML (no script, no external resource) under a
strict Content-Security-Policy, or JSON to a client that asks for it (problem+json for
errors, crm_core/problems.py)."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from crm_core import public_pages
from crm_core.records.case import Satisfaction
from csat_api.request import COMMENT_FIELD, SCORE_FIELD

SCORES = {
    1: "Very dissatisfied",
    2: "Dissatisfied",
    3: "Neither satisfied nor dissatisfied",
    4: "Satisfied",
    5: "Very satisfied",
}
MAX_COMMENT_CHARS = 2000
_STYLE = public_pages.BASE_STYLE + (
    "fieldset{border:0;padding:0;margin:0 0 1rem}"
    "legend{font-weight:600;margin-bottom:.4rem}.score{display:block;padding:.2rem 0}"
    "label[for=comment]{display:block;font-weight:600;margin-bottom:.4rem}"
    "textarea{width:100%;box-sizing:border-box;font:inherit;margin-bottom:1rem}"
    ".error{color:#b3261e;font-weight:600}"
    "button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:.3rem;"
    "background:#1f5fbf;color:#fff;cursor:pointer}"
)


def rating_page(
    token: str, subject: str, *, status: int = 200, problem: str | None = None
) -> dict[str, Any]:
    """The form: a score 1..5 and an optional comment, posted to this same link (the token
    stays the request's authority). `problem`: why the last POST was refused."""
    action = html.escape(f"?token={quote(token, safe='.-_')}")
    choices = "".join(
        f'<label class="score" for="score-{n}">'
        f'<input type="radio" id="score-{n}" name="{SCORE_FIELD}" value="{n}" required> '
        f"{n} &ndash; {html.escape(label)}</label>"
        for n, label in SCORES.items()
    )
    said = f'<p class="error" role="alert">{html.escape(problem)}</p>' if problem else ""
    form = (
        f'<form method="post" action="{action}">{said}'
        f"<fieldset><legend>How satisfied are you with how we handled your case?</legend>"
        f"{choices}</fieldset>"
        f'<label for="comment">Anything you would like to add? (optional)</label>'
        f'<textarea id="comment" name="{COMMENT_FIELD}" rows="4" '
        f'maxlength="{MAX_COMMENT_CHARS}"></textarea>'
        '<button type="submit">Send my rating</button></form>'
    )
    return page(
        status,
        "Rate our support",
        f"<h1>How did we do?</h1><p>Your case: {_subject(subject)}</p>{form}",
    )


def rated_page(subject: str, satisfaction: Satisfaction, *, just_now: bool) -> dict[str, Any]:
    """After the POST (`just_now`), or the page of a case rated before."""
    score = f"{satisfaction.score} of 5 ({html.escape(SCORES.get(satisfaction.score, ''))})"
    if just_now:
        title, said = "Thank you", f"We recorded your rating: <strong>{score}</strong>."
    else:
        title = "Already rated"
        said = (
            f"This case was rated before: <strong>{score}</strong>. "
            "A case is rated once; thank you for your answer."
        )
    return page(
        200,
        title,
        f"<h1>{html.escape(title)}</h1><p>Your case: {_subject(subject)}</p><p>{said}</p>",
    )


def _subject(subject: str) -> str:
    return f"<strong>{html.escape(subject)}</strong>"


def page(status: int, title: str, content: str) -> dict[str, Any]:
    return public_pages.page(status, title, content, _STYLE)


json_reply = public_pages.json_reply


def error(
    status: int, title: str, slug: str, detail: str, as_json: bool, **extra: Any
) -> dict[str, Any]:
    return public_pages.error(status, title, slug, detail, as_json, _STYLE, **extra)
