"""The README's signing snippets, run as written, sign exactly as the webhook verifies."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crm_core.leads import signature

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Sending leads (signed webhooks)"
SECRET = "whsec_Zq3-readme_test"
SOURCE_ID = "01HZX3V6W8M5Q2J7K9T4N1R0SA"
# Non-ASCII, and a trailing newline that a shell's $(...) would strip: both must be signed.
BODY = '{"email": "zoë@example.com", "first_name": "Zoë"}\n'.encode()


def section() -> str:
    text = README.read_text()
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    rest = text.split(SECTION, 1)[1]
    return rest.split("\n## ", 1)[0]


def code_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", section(), flags=re.DOTALL)
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"expected one {language} block with {containing!r}: {found}"
    return str(found[0])


def test_the_python_snippet(monkeypatch: pytest.MonkeyPatch) -> None:
    snippet = code_block("python", "hmac.new")
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.7)
    scope: dict[str, Any] = {"secret": SECRET, "body": BODY}
    exec(snippet, scope)  # the README's own code, on test data
    assert scope["headers"]["Crm-Signature"] == signature.header(SECRET, 1_700_000_000, BODY)
    assert scope["headers"]["Content-Type"] == "application/json"


def _needs(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed here, so the README's shell snippet cannot run")


def test_the_openssl_line_signs_as_the_webhook_verifies(tmp_path: Path) -> None:
    _needs("bash", "openssl")
    block = code_block("bash", "openssl dgst")
    (line,) = [ln for ln in block.splitlines() if ln.startswith("v1=")]
    (tmp_path / "lead.json").write_bytes(BODY)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f't=1700000000\n{line}\nprintf %s "$v1"'],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout == signature.sign(SECRET, 1_700_000_000, BODY)


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, dict[str, str], bytes]]]]:
    received: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(202)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_curl_snippet_sends_what_it_signed(
    tmp_path: Path, server: tuple[str, list[tuple[str, dict[str, str], bytes]]]
) -> None:
    _needs("bash", "openssl", "curl", "date", "cut")
    url, received = server
    block = code_block("bash", "openssl dgst")
    assert "http://127.0.0.1:3000" in block
    (tmp_path / "lead.json").write_bytes(BODY)
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.replace("http://127.0.0.1:3000", url)],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "SECRET": SECRET, "SOURCE_ID": SOURCE_ID},
        capture_output=True,
        timeout=30,
        check=True,
    )
    ((path, headers, body),) = received
    assert path == f"/webhooks/leads/{SOURCE_ID}"
    assert body == BODY
    assert headers["content-type"] == "application/json"
    signed = signature.parse(headers["crm-signature"])
    signature.check_time(signed, time.time())
    assert signature.matches(signed, [SECRET], body)
