"""Logs are JSON lines with the request's correlation id and caller, and never the token."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.cfn import table_create_kwargs
from tests.support.api import Api, User
from tests.support.checks import assert_problem

ADMIN = User("acme", ("admin",))


@pytest.fixture
def log_lines(contacts_module: Any) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines the function's Powertools logger writes, formatted as in Lambda."""
    logger = contacts_module.logger
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    finally:
        logger.removeHandler(handler)


def test_an_unexpected_error_is_a_logged_500_without_secrets(
    api: Api, table: Any, log_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    table.client.delete_table(TableName=table.name)  # every call now fails unexpectedly
    try:
        event = api.event("GET", "/contacts", ADMIN)
        reply = api.send(event)
    finally:
        table.client.create_table(**table_create_kwargs(table_name=table.name))

    body = assert_problem(reply, 500)
    assert "ResourceNotFound" not in reply.text  # no internals for the client
    assert body["detail"] == "an unexpected error; it has been logged"
    lines = log_lines()
    errors = [line for line in lines if line.get("level") == "ERROR"]
    assert len(errors) == 1, lines
    logged = errors[0]
    assert logged["correlation_id"] == event["requestContext"]["requestId"]
    assert (logged["tenant_id"], logged["user_id"]) == ("acme", ADMIN.sub)
    assert logged["service"] == "contacts"
    assert "ResourceNotFoundException" in logged["exception"]
    token = event["headers"]["authorization"].split()[-1]
    assert token not in json.dumps(lines)
