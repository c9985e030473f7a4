"""`crm webhook send`: post a lead to a lead source's webhook, signed as the source signs it.

crm webhook send --source ID --secret S --file lead.json [--form] [--api-url URL] [--timestamp T]

The file's bytes are sent exactly as they are (`-` reads standard input), as
application/json, or form-encoded with `--form`. The `Crm-Signature` header is made by
crm_core.leads.signature, the same code the webhook verifies with. Without `--api-url` the
lead goes to the running local cloud (`.crm/local.json`); give a deployed stage's API URL
to send it there. The answer's status and body are printed; the exit code is 0 for a 2xx
answer and 1 otherwise (another status, a redirect, or no answer at all). Redirects are
not followed: a signed body belongs to one URL.

The secret can also come from the environment (CRM_LEAD_SECRET), which keeps it out of the
shell's history and the process list. It is never printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from crm_core.leads import signature

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
SECRET_VARIABLE = "CRM_LEAD_SECRET"
TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx comes back as the answer (urllib would otherwise post the body elsewhere)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def webhook_url(api_url: str, source_id: str) -> str:
    # Quoted whole: an id with '/' or '?' in it must not reach another route.
    return f"{api_url.rstrip('/')}/webhooks/leads/{urllib.parse.quote(source_id, safe='')}"


def send(
    api_url: str,
    source_id: str,
    secret: str,
    body: bytes,
    *,
    form: bool = False,
    timestamp: int | None = None,
    timeout: float = TIMEOUT_SECONDS,
) -> Answer:
    """One signed delivery. HTTP error statuses are answers; no answer raises OSError."""
    signed_at = int(time.time()) if timestamp is None else timestamp
    request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own API
        webhook_url(api_url, source_id),
        data=body,
        method="POST",
        headers={
            "Content-Type": FORM if form else JSON,
            "Crm-Signature": signature.header(secret, signed_at, body),
            "Accept": "application/json, application/problem+json",
            "User-Agent": "crm-webhook-send/1",
        },
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return Answer(
                response.status, response.reason, _headers(response.headers), response.read()
            )
    except urllib.error.HTTPError as error:
        with error:
            return Answer(error.code, str(error.reason), _headers(error.headers), error.read())


def _headers(headers: Message) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _read_body(path: str) -> bytes:
    return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()


def _api_url(args: argparse.Namespace) -> str:
    if args.api_url:
        return str(args.api_url)
    from infra.running import Running

    state_dir = Path(args.state_dir) if args.state_dir else Path(args.root) / ".crm"
    return Running.load(state_dir / "local.json").api_url


def cmd_send(args: argparse.Namespace) -> int:
    secret = args.secret or os.environ.get(SECRET_VARIABLE)
    if not secret:
        print(f"crm webhook: give --secret, or set {SECRET_VARIABLE}", file=sys.stderr)
        return 2
    body = _read_body(args.file)
    api_url = _api_url(args)
    try:
        answer = send(api_url, args.source, secret, body, form=args.form, timestamp=args.timestamp)
    except OSError as error:  # refused, unresolved, timed out: no answer at all
        reason = getattr(error, "reason", error)
        print(f"crm webhook: no answer from {api_url}: {reason}", file=sys.stderr)
        return 1
    print(f"{answer.status} {answer.reason}".rstrip())
    if answer.body:
        text = answer.body.decode("utf-8", errors="replace")
        print(text, end="" if text.endswith("\n") else "\n")
    return 0 if answer.ok else 1


def register(commands: Any) -> None:
    """`crm webhook send` under the `crm` command's subparsers."""
    webhook = commands.add_parser("webhook", help="lead webhooks: send a signed delivery")
    actions = webhook.add_subparsers(dest="action", required=True)
    send_cmd = actions.add_parser(
        "send", help="post a lead to a source's webhook, signed with its secret"
    )
    send_cmd.add_argument("--source", required=True, metavar="ID", help="the lead source's id")
    send_cmd.add_argument(
        "--secret",
        metavar="S",
        help=f"the source's signing secret (default: ${SECRET_VARIABLE}); never printed",
    )
    send_cmd.add_argument(
        "--file", required=True, help="the body, sent byte for byte (- for standard input)"
    )
    send_cmd.add_argument("--form", action="store_true", help=f"send as {FORM} (default {JSON})")
    send_cmd.add_argument(
        "--api-url", help="a deployed stage's API URL (default: the running local cloud)"
    )
    send_cmd.add_argument(
        "--timestamp",
        type=int,
        metavar="T",
        help="sign as of these Unix seconds (default: now; older than 300 s is refused)",
    )
    send_cmd.set_defaults(run=cmd_send)
