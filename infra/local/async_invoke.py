"""Lambda's asynchronous invocation: retries, event age, and where a failed event ends.

EventBridge rules and schedules invoke their Lambda targets asynchronously. As in AWS:
the event is queued and invoked; a function error or timeout is retried
`MaximumRetryAttempts` times (default 2); an event older than `MaximumEventAgeInSeconds`
is dropped from retry; a failed event then goes to the function's
`EventInvokeConfig.DestinationConfig.OnFailure` (with Lambda's invocation record), or else
to its `DeadLetterQueue` (the event itself, with the error in message attributes); a
success goes to `OnSuccess` if there is one. Nothing is dropped silently: with neither, the
failure is logged as Lambda's own would be.

AWS waits about 1 and then 2 minutes between attempts; locally the delays are seconds
(`retry_delays`), so that a developer sees the whole path in a moment. They must still
outlast what a retry waits for: in AWS the minutes outlast a concurrent run of the same event
(a consumer's EventInProgress) or a write conflict among leads of one person, and under a
burst on a laptop one such run takes seconds, so retries 1 and 2 s apart could all fail
while the run they waited for was still going (the e2e burst left leads unprocessed).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra.local.destinations import send, service_of
from infra.local.invocation import InvokeResult
from infra.topology import FunctionSpec

DEFAULT_RETRY_DELAYS = (3.0, 10.0)
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_EVENT_AGE_S = 6 * 3600


@dataclass(frozen=True)
class AsyncConfig:
    max_retries: int = DEFAULT_MAX_RETRIES
    max_event_age_s: int = DEFAULT_MAX_EVENT_AGE_S
    # {"Type": "SQS" | "SNS" | "EventBridge" | "Lambda", "Destination": arn}
    on_success: Mapping[str, Any] | None = None
    on_failure: Mapping[str, Any] | None = None
    dead_letter_arn: str | None = None

    @classmethod
    def of(cls, spec: FunctionSpec) -> AsyncConfig:
        config = spec.properties.get("EventInvokeConfig") or {}
        destinations = config.get("DestinationConfig") or {}
        dlq = spec.properties.get("DeadLetterQueue") or {}
        return cls(
            max_retries=int(config.get("MaximumRetryAttempts", DEFAULT_MAX_RETRIES)),
            max_event_age_s=int(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_S)),
            on_success=destinations.get("OnSuccess"),
            on_failure=destinations.get("OnFailure"),
            dead_letter_arn=dlq.get("TargetArn"),
        )


class AsyncInvoker:
    """Queues asynchronous invocations and follows each to its end."""

    def __init__(
        self,
        invoke: Callable[[str, Any], InvokeResult],
        functions: Iterable[FunctionSpec],
        client: Callable[[str], Any],
        *,
        retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS,
        log: Callable[[str], None] = print,
    ) -> None:
        self._invoke = invoke
        self._specs = {}
        for spec in functions:
            self._specs[spec.logical_id] = spec
            self._specs[spec.name] = spec
            self._specs[spec.arn] = spec
        self._client = client
        self.retry_delays = retry_delays
        self._log = log
        self._stopped = threading.Event()
        self._pending: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def submit(self, function: str, event: Any) -> str:
        """Accept an event for a function (logical id, name or ARN), as Invoke with
        InvocationType=Event does: at once, with a request id; the work happens later."""
        spec = self._specs.get(function) or self._specs.get(function.split(":$LATEST")[0])
        if spec is None:
            raise KeyError(f"no function {function}")
        request_id = str(uuid.uuid4())
        worker = threading.Thread(
            target=self._run, args=(spec, event, request_id), name=f"async-{spec.name}", daemon=True
        )
        with self._lock:
            self._pending.add(worker)
        worker.start()
        return request_id

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            pending = list(self._pending)
        for worker in pending:
            worker.join(max(0.0, deadline - time.monotonic()))

    def idle(self) -> bool:
        with self._lock:
            return not self._pending

    # The life of one event ----------------------------------------------------------------
    def _run(self, spec: FunctionSpec, event: Any, request_id: str) -> None:
        try:
            self._attempts(spec, event, request_id)
        except Exception as error:
            self._log(f"[async] {spec.name}: delivery failed: {error!r}")
        finally:
            with self._lock:
                self._pending.discard(threading.current_thread())

    def _attempts(self, spec: FunctionSpec, event: Any, request_id: str) -> None:
        config = AsyncConfig.of(spec)
        queued = time.monotonic()
        attempts = 0
        condition = "RetriesExhausted"
        result = InvokeResult()
        while True:
            attempts += 1
            result = self._invoke(spec.logical_id, event)
            if result.ok:
                if config.on_success:
                    record = _record(spec, event, request_id, attempts, "Success", result)
                    self._deliver(config.on_success, record, "Success")
                return
            if attempts > config.max_retries:
                break
            delay = self.retry_delays[min(attempts - 1, len(self.retry_delays) - 1)]
            if time.monotonic() + delay - queued > config.max_event_age_s:
                condition = "EventAgeExceeded"
                break
            if self._stopped.wait(delay):
                self._log(f"[async] {spec.name}: stopping with an event still to retry")
                return
        self._log(
            f"[async] {spec.name}: failed after {attempts} attempt(s) ({condition}): "
            f"{(result.error or {}).get('errorType')}"
        )
        if config.on_failure:
            record = _record(spec, event, request_id, attempts, condition, result)
            self._deliver(config.on_failure, record, "Failure")
        elif config.dead_letter_arn:
            self._dead_letter(config.dead_letter_arn, event, request_id, result)
        else:
            self._log(f"[async] {spec.name}: no DLQ or on-failure destination: event dropped")

    def _deliver(
        self, destination: Mapping[str, Any], record: dict[str, Any], outcome: str
    ) -> None:
        arn = str(destination.get("Destination", ""))
        kind = service_of(arn)
        if kind in ("sqs", "sns"):
            send(self._client, arn, json.dumps(record))
        elif kind == "events":
            self._client("events").put_events(
                Entries=[
                    {
                        "EventBusName": arn,
                        "Source": "lambda",
                        "DetailType": f"Lambda Function Invocation Result - {outcome}",
                        "Detail": json.dumps(record),
                        "Resources": [record["requestContext"]["functionArn"]],
                    }
                ]
            )
        elif kind == "lambda":
            self.submit(arn, record)
        else:
            raise ValueError(f"unsupported destination {destination}")

    def _dead_letter(self, arn: str, event: Any, request_id: str, result: InvokeResult) -> None:
        """The event itself, with the error in message attributes, as Lambda's DLQ gets it."""
        error = result.error or {}
        attributes = {
            "RequestID": request_id,
            "ErrorCode": "200",
            "ErrorMessage": str(error.get("errorMessage", ""))[:1000] or "Unhandled",
        }
        send(self._client, arn, json.dumps(event), attributes)


def _record(
    spec: FunctionSpec,
    event: Any,
    request_id: str,
    attempts: int,
    condition: str,
    result: InvokeResult,
) -> dict[str, Any]:
    """Lambda's invocation record, as destinations receive it."""
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if not result.ok:
        response["functionError"] = "Unhandled"
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{spec.arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": response,
        "responsePayload": result.payload if result.ok else result.error,
    }
