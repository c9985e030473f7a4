"""`crm webhook send` signs and posts the file's bytes exactly, and says how it went."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from crm_core.leads import signature
from infra import cli
from infra.running import Running

SECRET = "whsec_test-secret-for-the-cli"
SOURCE = "01HZX3V6W8M5Q2J7K9T4N1R0SA"
# Trailing newline and blank line kept on purpose: the signature covers every byte.
LEAD = b'{"email": "ada@example.com", "first_name": "Ada"}\n\n'


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Webhook:
    """A stand-in for the API: records each request and answers `status` with `answer`."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 202
    answer: bytes = b'{"lead_id": "01HZX3V6W8M5Q2J7K9T4N1R0SB"}'
    location: str | None = None


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    state = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.requests.append(
                Received(
                    "POST",
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
            )
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", str(len(state.answer)))
            self.end_headers()
            self.wfile.write(state.answer)

        do_GET = do_POST  # noqa: N815 - a followed redirect would arrive as a GET

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def run(*argv: str, stdin: bytes | None = None, monkeypatch: pytest.MonkeyPatch) -> int:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    return cli.main(list(argv))


def verify(received: Received) -> signature.SignedHeader:
    signed = signature.parse(received.headers["crm-signature"])
    assert signature.matches(signed, [SECRET], received.body)
    assert not signature.matches(signed, ["whsec_another"], received.body)
    return signed


def test_a_json_lead_is_signed_and_posted_byte_for_byte(
    webhook: Webhook,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lead = tmp_path / "lead.json"
    lead.write_bytes(LEAD)
    code = run(
        "webhook", "send", "--source", SOURCE, "--secret", SECRET, "--file", str(lead),
        "--api-url", webhook.url + "/", "--timestamp", "1700000000",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0
    (received,) = webhook.requests
    assert received.path == f"/webhooks/leads/{SOURCE}"
    assert received.body == LEAD
    assert received.headers["content-type"] == "application/json"
    assert received.headers["content-length"] == str(len(LEAD))
    assert received.headers["crm-signature"] == (
        f"t=1700000000,v1={signature.sign(SECRET, 1700000000, LEAD)}"
    )
    assert verify(received).timestamp == 1700000000
    out, err = capsys.readouterr()
    assert out.splitlines() == ["202 Accepted", '{"lead_id": "01HZX3V6W8M5Q2J7K9T4N1R0SB"}']
    assert SECRET not in out + err


def test_form_encoded_from_stdin_signed_now(
    webhook: Webhook, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    form = b"email=grace%40example.com&first_name=Grace&tags=a&tags=b"
    monkeypatch.setattr("infra.ops.webhook_cli.time.time", lambda: 1_800_000_123.9)
    code = run(
        "webhook", "send", "--source", SOURCE, "--secret", SECRET, "--file", "-", "--form",
        "--api-url", webhook.url,
        stdin=form, monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0
    (received,) = webhook.requests
    assert received.body == form
    assert received.headers["content-type"] == "application/x-www-form-urlencoded"
    assert verify(received).timestamp == 1_800_000_123  # whole seconds, as the header wants
    assert capsys.readouterr().out.startswith("202 ")


def test_the_secret_can_come_from_the_environment(
    webhook: Webhook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead = tmp_path / "lead.json"
    lead.write_bytes(LEAD)
    monkeypatch.setenv("CRM_LEAD_SECRET", SECRET)
    code = run(
        "webhook", "send", "--source", SOURCE, "--file", str(lead), "--api-url", webhook.url,
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0
    verify(webhook.requests[0])
    monkeypatch.delenv("CRM_LEAD_SECRET")
    code = run(
        "webhook", "send", "--source", SOURCE, "--file", str(lead), "--api-url", webhook.url,
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 2
    assert len(webhook.requests) == 1  # nothing sent without a secret


def test_the_running_local_cloud_is_the_default_target(
    webhook: Webhook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Running(
        endpoint_url="http://127.0.0.1:1",
        api_url=webhook.url,
        user_pool_id="pool",
        client_id="client",
        tables=[],
        functions={},
    ).save(tmp_path / "local.json")
    lead = tmp_path / "lead.json"
    lead.write_bytes(LEAD)
    code = run(
        "--state-dir", str(tmp_path),
        "webhook", "send", "--source", SOURCE, "--secret", SECRET, "--file", str(lead),
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0
    assert webhook.requests[0].path == f"/webhooks/leads/{SOURCE}"


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (401, b'{"type": "about:blank", "title": "Unauthorized", "status": 401}'),
        (413, b'{"title": "Payload Too Large", "status": 413}'),
        (500, b"oops"),
    ],
)
def test_an_error_answer_is_printed_and_exits_1(
    webhook: Webhook,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    answer: bytes,
) -> None:
    webhook.status, webhook.answer = status, answer
    lead = tmp_path / "lead.json"
    lead.write_bytes(LEAD)
    code = run(
        "webhook", "send", "--source", SOURCE, "--secret", SECRET, "--file", str(lead),
        "--api-url", webhook.url,
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 1
    out, err = capsys.readouterr()
    first, body = out.split("\n", 1)
    assert first.startswith(f"{status} ")
    assert body.rstrip("\n") == answer.decode()
    assert SECRET not in out + err


def test_a_redirect_is_not_followed(
    webhook: Webhook,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    webhook.status, webhook.answer = 302, b""  # urllib would follow it, as a GET
    webhook.location = webhook.url + "/elsewhere"
    lead = tmp_path / "lead.json"
    lead.write_bytes(LEAD)
    code = run(
        "webhook", "send", "--source", SOURCE, "--secret", SECRET, "--file", str(lead),
        "--api-url", webhook.url,
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 1
    assert [r.path for r in webhook.requests] == [f"/webhooks/leads/{SOURCE}"]
    assert capsys.readouterr().out.startswith("302 ")


def test_no_answer_exits_1_without_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lead = tmp_path / "lead.json"
    lead.write_bytes(LEAD)
    code = run(
        "webhook", "send", "--source", SOURCE, "--secret", SECRET, "--file", str(lead),
        "--api-url", f"http://127.0.0.1:{port}",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "no answer from" in err
    assert SECRET not in err


def test_a_source_id_cannot_reach_another_route(
    webhook: Webhook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lead = tmp_path / "lead.json"
    lead.write_bytes(LEAD)
    run(
        "webhook", "send", "--source", "../../contacts?x=1", "--secret", SECRET,
        "--file", str(lead), "--api-url", webhook.url,
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert webhook.requests[0].path == "/webhooks/leads/..%2F..%2Fcontacts%3Fx%3D1"
    assert json.loads(LEAD) == json.loads(webhook.requests[0].body)
