"""A consumer in its own process, as concurrent Lambda environments run it (see lambda_pool.py)."""

from __future__ import annotations

import os
import time
from typing import Any

EFFECT_KEY = {"PK": {"S": "T#acme#EFFECTS"}, "SK": {"S": "COUNT"}}


def build_consumer(table: Any, hold_s: float = 0.0, logger: Any = None) -> Any:
    """A consumer of ContactCreated whose effect is visible: it counts in the table."""
    from aws_lambda_powertools import Logger

    from crm_core.events.consumer import EventConsumer
    from crm_core.events.contacts import ContactCreated

    consumer = EventConsumer("counter", table, logger or Logger(service="counter"))

    @consumer.on(ContactCreated)
    def count(event: ContactCreated) -> dict[str, str]:
        table.client.update_item(
            TableName=table.name,
            Key=EFFECT_KEY,
            UpdateExpression="ADD effects :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        time.sleep(hold_s)
        return {"counted": event.event_id}

    return consumer


def deliver_concurrently(
    endpoint: str, table_name: str, event: dict[str, Any], barrier: Any, hold_s: float
) -> str:
    """Deliver `event` once, released with the others by `barrier`; how it ended."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    from crm_core.dynamo import dynamodb_client
    from crm_core.events.consumer import EventInProgress
    from crm_core.table import Table
    from tests.support.api import LambdaContext

    consumer = build_consumer(Table(dynamodb_client(), table_name), hold_s)
    barrier.wait(60)
    try:
        result = consumer.handle(event, LambdaContext())
    except EventInProgress:
        return "in progress"
    return f"done {result['counted']}"
