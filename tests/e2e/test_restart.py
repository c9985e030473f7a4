"""Stopping `crm dev` cleanly keeps the data; starting it again finds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import CloudProcess


def test_data_survives_a_restart_and_sigterm_stops_cleanly(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    cloud = CloudProcess(tmp_path_factory.mktemp("crm-restart"))
    cloud.start()
    try:
        token = cloud.token("demo", "sales")
        status, _, created = cloud.call("POST", "/contacts", token, {"email": "ada@example.com"})
        assert status == 201, created
        # As a read shows it (with its deal totals), to compare with the read after.
        status, _, ada = cloud.call("GET", f"/contacts/{created['id']}", token)
        assert status == 200, ada
        owner_sub = _sub(token)
    finally:
        assert cloud.stop() == 0  # SIGTERM: a clean stop, state saved
    assert not (cloud.state_dir / "local.json").exists()

    cloud.start()
    try:
        token = cloud.token("demo", "sales")
        status, _, again = cloud.call("GET", f"/contacts/{ada['id']}", token)
        assert (status, again) == (200, ada)
        assert _sub(token) == owner_sub  # the same person, so owner ids still hold
    finally:
        assert cloud.stop() == 0
    assert _children_of(cloud) == []


def _sub(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def _children_of(cloud: CloudProcess) -> list[str]:
    """Worker processes left behind by the stopped cloud (none, if it stopped cleanly)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(cloud.state_dir) in cmdline:
            found.append(cmdline)
    return found
