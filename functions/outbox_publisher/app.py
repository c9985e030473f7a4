"""outbox_publisher: domain events from the table's stream onto the stage's bus
(outbox_publisher_consumer/handlers.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from crm_core.runtime import entry
from outbox_publisher_consumer.context import logger, metrics, tracer
from outbox_publisher_consumer.handlers import publish_records


@entry(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return publish_records(event)
