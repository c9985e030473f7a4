"""Sending a record to a queue or topic named by its ARN, as AWS services do for their
on-failure destinations and dead-letter queues."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def service_of(arn: str) -> str:
    """The service part of an ARN ("sqs", "sns", "lambda", "events"), or "" if it is none."""
    parts = arn.split(":")
    return parts[2] if len(parts) >= 6 and parts[0] == "arn" else ""


def queue_url(sqs: Any, arn: str) -> str:
    """The URL of the queue an ARN names (its last part is the queue's name)."""
    return str(sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"])


def send(
    client: Callable[[str], Any],
    arn: str,
    body: str,
    attributes: Mapping[str, str] | None = None,
    *,
    group_id: str | None = None,
    deduplication_id: str | None = None,
) -> None:
    """Send `body` to the SQS queue or SNS topic `arn`, with string message attributes."""
    kind = service_of(arn)
    typed = {k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items()}
    if kind == "sqs":
        sqs = client("sqs")
        kwargs: dict[str, Any] = {"QueueUrl": queue_url(sqs, arn), "MessageBody": body}
        if typed:
            kwargs["MessageAttributes"] = typed
        if arn.endswith(".fifo"):
            kwargs["MessageGroupId"] = group_id or "default"
            if deduplication_id:
                kwargs["MessageDeduplicationId"] = deduplication_id
        sqs.send_message(**kwargs)
    elif kind == "sns":
        publish: dict[str, Any] = {"TopicArn": arn, "Message": body}
        if typed:
            publish["MessageAttributes"] = typed
        client("sns").publish(**publish)
    else:
        raise ValueError(f"not an SQS queue or SNS topic: {arn}")
