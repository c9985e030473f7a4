"""inbound_mail: email to case. SES's receipt rule stores each message raw in the mail
bucket and invokes this function with the receipt (inbound_mail_consumer/handlers.py)."""

from __future__ import annotations

import gc

# Cold start: collect once after init, not during botocore's imports (docs/decisions.md, 3).
gc.disable()

from typing import Any  # noqa: E402

from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402

from crm_core.runtime import entry  # noqa: E402
from inbound_mail_consumer.context import logger, metrics, tracer  # noqa: E402
from inbound_mail_consumer.handlers import receive_all  # noqa: E402

gc.enable()
gc.freeze()


@entry(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return receive_all(event)
