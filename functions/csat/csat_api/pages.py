"""The satisfaction pages: self-contained HTML (no script, no external resource) under a
strict Content-Security-Policy, or JSON to a client that asks for it (problem+json for
errors, crm_core/problems.py)."""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote

from crm_core.problems import PROBLEM_JSON, lambda_reply, problem_body
from crm_core.records.case import Satisfaction
from csat_api.request import COMMENT_FIELD, SCORE_FIELD

HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
SCORES = {
    1: "Very dissatisfied",
    2: "Dissatisfied",
    3: "Neither satisfied nor dissatisfied",
    4: "Satisfied",
    5: "Very satisfied",
}
MAX_COMMENT_CHARS = 2000
_STYLE = (
    "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:32rem;"
    "margin:4rem auto;padding:0 1rem;color:#222;line-height:1.5}"
    "h1{font-size:1.4rem}fieldset{border:0;padding:0;margin:0 0 1rem}"
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
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{content}</body></html>"
    )
    return lambda_reply(status, document, "text/html; charset=utf-8", HTML_HEADERS)


def json_reply(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return lambda_reply(status, json.dumps(body), "application/json", {"Cache-Control": "no-store"})


def error(
    status: int, title: str, slug: str, detail: str, as_json: bool, **extra: Any
) -> dict[str, Any]:
    if as_json:
        body = json.dumps(problem_body(status, title, detail, slug, **extra), default=str)
        return lambda_reply(status, body, PROBLEM_JSON, {"Cache-Control": "no-store"})
    return page(status, title, f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p>")
