"""A real LocalCloud on a fixture template, and ways to watch what its functions receive."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from infra.local import dev, eventbridge, sqs_sources
from infra.local.dev import LocalCloud, LocalConfig

TEMPLATES = Path(__file__).resolve().parents[1] / "fixtures" / "templates"
FAST_RETRIES = (0.2, 0.4)
DEADLINE_S = 20.0


class Log:
    """The cloud's log lines, kept for assertions and failure messages."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines[-50:])


@contextmanager
def local_cloud(template: str, state_dir: Path) -> Iterator[tuple[LocalCloud, Log]]:
    """The cloud of one fixture template, with exactly this package's delivery services."""
    log = Log()
    config = LocalConfig(
        template_override=TEMPLATES / template,
        state_dir_override=state_dir,
        aws_port=0,
        api_port=0,
        log=log,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dev, "service_builders", lambda: [eventbridge.build, sqs_sources.build])
        cloud = LocalCloud(config)
        try:
            cloud.start()
            assert cloud.async_invoker is not None
            cloud.async_invoker.retry_delays = FAST_RETRIES
            yield cloud, log
        finally:
            cloud.stop()


def wait_until(
    check: Callable[[], Any], what: str, timeout: float = DEADLINE_S, log: Log | None = None
) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{log.text() if log else ''}")
        time.sleep(0.05)


class QueueReader:
    """Everything that arrives on one queue, kept (each message received and deleted once)."""

    def __init__(self, sqs: Any, queue_name: str) -> None:
        self.sqs = sqs
        self.url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        self.messages: list[dict[str, Any]] = []

    def drain(self) -> list[dict[str, Any]]:
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                return self.messages
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)
                ],
            )
            self.messages += got

    def bodies(self) -> list[Any]:
        return [json.loads(m["Body"]) for m in self.drain()]

    def wait_for(
        self,
        check: Callable[[list[Any]], Any],
        what: str,
        log: Log | None = None,
        timeout: float = DEADLINE_S,
    ) -> Any:
        return wait_until(lambda: check(self.bodies()), what, timeout, log)


def queue_depth(sqs: Any, queue_name: str) -> int:
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )
