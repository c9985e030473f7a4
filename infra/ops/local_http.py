"""A small HTTP client for the `crm` command, on the standard library (no extra dependency)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def request(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, parsed JSON body or text); HTTP errors are answers, not exceptions."""
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=60) as response:  # noqa: S310 - local URLs
            status, raw, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, raw, got = error.code, error.read(), dict(error.headers)
    text = raw.decode() if raw else ""
    try:
        return status, got, json.loads(text) if text else None
    except ValueError:
        return status, got, text


def post_json(url: str, body: Any) -> Any:
    status, _, parsed = request("POST", url, body)
    if status >= 400:
        raise RuntimeError(f"{url} answered {status}: {parsed}")
    return parsed
