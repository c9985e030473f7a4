"""Building blocks the local cloud's tests share: an endpoint, and a function spec."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra.local.endpoint import LocalEndpoint
from infra.topology import FunctionSpec


@contextmanager
def running_endpoint() -> Iterator[LocalEndpoint]:
    """A local endpoint (moto server in this process) on a free port, stopped afterwards."""
    local = LocalEndpoint(port=0)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def function_spec(logical_id: str, name: str | None = None, **fields: Any) -> FunctionSpec:
    """A FunctionSpec with Lambda-like defaults; `fields` override any of them."""
    defaults: dict[str, Any] = {
        "logical_id": logical_id,
        "name": name or logical_id,
        "code_dir": Path(),
        "handler": "app.handler",
        "runtime": "python3.11",
        "timeout_s": 3,
        "memory_mb": 128,
        "environment": {},
        "layer_dirs": (),
        "events": {},
    }
    return FunctionSpec(**{**defaults, **fields})
