"""The local cloud, started once per test session as a developer starts it: `crm dev`.

It runs in its own process with its own state folder and free ports, so the tests talk to
it only over HTTP and the `crm` command, exactly as a client or a developer would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.ops.local_http import request

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class CloudProcess:
    state_dir: Path
    aws_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None
    ready_seconds: float = 0.0

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return {**env, "CRM_STATE_DIR": str(self.state_dir)}

    def start(self, *extra: str) -> None:
        (self.state_dir / "local.json").unlink(missing_ok=True)
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infra.cli",
                "dev",
                "--aws-port",
                str(self.aws_port),
                "--api-port",
                str(self.api_port),
                *extra,
            ],
            cwd=ROOT,
            env=self.env,
            # Both to a file: a pipe nobody reads would block crm dev once it filled up.
            stdout=(self.state_dir / "crm-dev.log").open("a"),
            stderr=subprocess.STDOUT,
            text=True,
        )
        while not (self.state_dir / "local.json").exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"crm dev exited: {self.log_tail()}")
            if time.monotonic() - started > READY_TIMEOUT_SECONDS:
                raise RuntimeError(f"crm dev was not ready in time: {self.log_tail()}")
            time.sleep(0.05)
        self.ready_seconds = time.monotonic() - started

    def stop(self, timeout: float = 120) -> int:
        """A clean stop (SIGTERM: it saves the state first, which takes a while for a large
        table); killed if it takes longer than `timeout`, so that no `crm dev` outlives the
        tests. The exit code, or -9 when it had to be killed (0 is a clean stop)."""
        if self.process is None:
            return 0
        process, self.process = self.process, None
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)  # crm dev prints every thread's stack
            time.sleep(1.0)
            process.kill()
            process.wait()
            print(f"crm dev did not stop in {timeout} s:\n{self.log_tail(20000)}")
            return -9

    def log_tail(self, size: int = 3000) -> str:
        path = self.state_dir / "crm-dev.log"
        return path.read_text()[-size:] if path.exists() else ""

    @property
    def running(self) -> dict[str, Any]:
        return dict(json.loads((self.state_dir / "local.json").read_text()))

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def crm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "infra.cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def token(self, tenant: str = "demo", role: str = "admin") -> str:
        result = self.crm("token", "--tenant", tenant, "--role", role)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def call(
        self, method: str, path: str, token: str | None, body: Any = None, **headers: str
    ) -> tuple[int, dict[str, str], Any]:
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        status, got, parsed = request(method, f"{self.api}{path}", body, {**auth, **headers})
        return status, {k.lower(): v for k, v in got.items()}, parsed


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudProcess]:
    process = CloudProcess(tmp_path_factory.mktemp("crm-state"))
    process.start()
    try:
        yield process
    finally:
        if process.process is not None:
            process.stop()
