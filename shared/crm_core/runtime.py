"""What every function that uses the table creates once per process, at cold start."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer

from crm_core.dynamo import dynamodb_client
from crm_core.settings import FunctionSettings
from crm_core.table import Table


class Runtime(NamedTuple):
    logger: Logger
    tracer: Tracer
    metrics: Metrics
    settings: FunctionSettings
    table: Table


def function_runtime() -> Runtime:
    """Powertools' logger, tracer and metrics, the function's settings, and the table.

    logger, tracer, metrics, settings, table = function_runtime()
    """
    # A request or event that counts nothing (a read, a duplicate delivery) publishes no
    # metric, and Powertools would warn about it every time.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    settings = FunctionSettings.from_env()
    return Runtime(
        logger=Logger(),
        # Only botocore is patched: patching every library X-Ray knows costs cold start.
        tracer=Tracer(patch_modules=["botocore"]),
        metrics=Metrics(),
        settings=settings,
        table=Table(dynamodb_client(), settings.table_name),
    )


H = TypeVar("H", bound=Callable[..., Any])


def entry(
    logger: Logger, tracer: Tracer, metrics: Metrics, *, correlation_id_path: str | None = None
) -> Callable[[H], H]:
    """Every Lambda handler's Powertools, in one decorator: each invocation's logs keyed
    afresh (and by `correlation_id_path` of the event, if given), a trace without the
    response (it holds personal data), and the invocation's metrics flushed.

        @entry(logger, tracer, metrics)
        def handler(event, context): ...
    """

    def decorate(handler: H) -> H:
        measured = metrics.log_metrics(handler)
        traced = tracer.capture_lambda_handler(measured, capture_response=False)
        keyed = logger.inject_lambda_context(
            traced, correlation_id_path=correlation_id_path, clear_state=True
        )
        return cast(H, keyed)

    return decorate
