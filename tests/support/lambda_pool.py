"""Concurrent invocations of a function, each in its own process, as Lambda runs them.

A Lambda execution environment handles one request at a time; concurrent requests run in
separate environments that share only the table. Threads of one process cannot stand in
for that: Powertools' resolver keeps the request it is handling in a class attribute
(`BaseRouter.current_event`), so two threads would read each other's requests. So each
worker here is a process with its own handler, and all of them talk to one moto server
(started in the test process, over the same in-memory backend as the in-process mock).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra.local.endpoint import DynamoDbIsolation
from tests.support.api import LambdaContext, Reply

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 8
BARRIER_TIMEOUT_SECONDS = 60

_handler: Any = None


def _start_worker(endpoint: str, function: str) -> None:
    """In each worker process: point botocore at the moto server, import the handler."""
    global _handler
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    sys.path[:0] = [str(ROOT / "functions" / function), str(ROOT / "shared"), str(ROOT)]
    import app  # type: ignore[import-not-found]

    _handler = app.handler


def _invoke(event: dict[str, Any], barrier: Any) -> dict[str, Any]:
    barrier.wait(BARRIER_TIMEOUT_SECONDS)
    result: dict[str, Any] = _handler(event, LambdaContext())
    return result


def deliver(event: dict[str, Any], barrier: Any) -> str:
    """In a worker: one EventBridge delivery of `event` to its warm handler, released by
    `barrier` with the others; the handler's result as JSON."""
    barrier.wait(BARRIER_TIMEOUT_SECONDS)
    return json.dumps(_handler(event, LambdaContext()))


class LambdaPool:
    """WORKERS warm execution environments; `together()` runs events in them at once."""

    def __init__(self, executor: ProcessPoolExecutor, manager: Any) -> None:
        self.executor = executor
        self.manager = manager

    def together(self, events: Sequence[dict[str, Any]]) -> list[Reply]:
        """Each event in its own worker, all released by one barrier; replies in order."""
        assert len(events) <= WORKERS, "one worker per concurrent event"
        barrier = self.manager.Barrier(len(events))
        futures = [self.executor.submit(_invoke, event, barrier) for event in events]
        replies = []
        for future in futures:
            raw = future.result(timeout=BARRIER_TIMEOUT_SECONDS * 2)
            headers = {k.lower(): v for k, v in (raw.get("headers") or {}).items()}
            replies.append(Reply(raw["statusCode"], headers, raw.get("body") or ""))
        return replies


@contextmanager
def lambda_pool(function: str, *, isolate_requests: bool = True) -> Iterator[LambdaPool]:
    """A moto server over the test process's mocked AWS, and warm workers that use it.

    `isolate_requests=False` shows moto's own behaviour under concurrency (see
    infra/local/endpoint.py): with it, two creates of one email can both succeed, or the
    winner's contact vanish.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    isolation = DynamoDbIsolation()
    if isolate_requests:
        isolation.install()
    context = multiprocessing.get_context("spawn")
    try:
        with (
            context.Manager() as manager,
            ProcessPoolExecutor(
                WORKERS,
                mp_context=context,
                initializer=_start_worker,
                initargs=(f"http://{host}:{port}", function),
            ) as executor,
        ):
            pool = LambdaPool(executor, manager)
            # Start every worker now: a barrier of WORKERS needs WORKERS distinct processes,
            # and later batches then find each one idle and warm.
            warm = manager.Barrier(WORKERS)
            for future in [executor.submit(_ready, warm) for _ in range(WORKERS)]:
                future.result(timeout=BARRIER_TIMEOUT_SECONDS * 2)
            yield pool
    finally:
        isolation.uninstall()
        server.stop()


def _ready(barrier: Any) -> bool:
    barrier.wait(BARRIER_TIMEOUT_SECONDS)
    return _handler is not None
