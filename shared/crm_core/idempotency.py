"""`Idempotency-Key` on POST: the same key and body within 24 h replays the first response.

Built on Powertools idempotency, with records in the single table under the caller's
tenant partition. Imported on the first keyed request only: it pulls in boto3.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from crm_core import keys
from crm_core.errors import BadRequest, Conflict, Unprocessable
from crm_core.table import Table

RECORD_TTL_SECONDS = 24 * 3600
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")


def valid_key(key: str) -> bool:
    """1 to 255 visible ASCII characters, as the OpenAPI document's pattern says."""
    return _KEY_RE.fullmatch(key) is not None


Outcome = dict[str, Any]
_store: Any = None


def tenant_persistence_layer(table: Table) -> Any:
    """A Powertools DynamoDB persistence layer whose records live in the single table under
    a tenant's partition; set `.tenant_id` before each use.

    Powertools configures a layer once (its key path and expiry stick), so each use of
    idempotency (Idempotency-Key here, events in crm_core/events/consumer.py) has its own.
    """
    from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import (
        DynamoDBPersistenceLayer,
    )

    class TenantPersistenceLayer(DynamoDBPersistenceLayer):
        tenant_id = ""

        def _get_key(self, idempotency_key: str) -> dict[str, Any]:
            partition = keys.idempotency_partition(self.tenant_id)
            return {"PK": {"S": partition}, "SK": {"S": idempotency_key}}

    return TenantPersistenceLayer(
        table_name=table.name,
        key_attr="PK",
        sort_key_attr="SK",
        expiry_attr="ttl",
        boto3_client=table.client,
    )


def _tenant_store(table: Table, tenant_id: str) -> Any:
    """One persistence layer per process, pointed at the caller's tenant for each request."""
    global _store
    if _store is None:
        _store = tenant_persistence_layer(table)
    _store.tenant_id = tenant_id
    return _store


def once(
    table: Table,
    tenant_id: str,
    key: str,
    operation: str,
    body: str,
    run: Callable[[], Outcome],
    lambda_context: Any = None,
) -> Outcome:
    """`run()` once per (tenant, operation, key); later calls get its stored outcome."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    if not valid_key(key):
        raise BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters")
    config = IdempotencyConfig(
        event_key_jmespath="[operation, key]",
        payload_validation_jmespath="body_sha256",
        expires_after_seconds=RECORD_TTL_SECONDS,
        raise_on_no_idempotency_key=True,
    )
    if lambda_context is not None:
        # An in-progress record then expires with the invocation, so a timed-out request
        # can be retried with the same key.
        config.register_lambda_context(lambda_context)

    @idempotent_function(
        data_keyword_argument="request",
        persistence_store=_tenant_store(table, tenant_id),
        config=config,
    )
    def _run_once(request: dict[str, str]) -> Outcome:
        return run()

    request = {
        "operation": operation,
        "key": key,
        "body_sha256": hashlib.sha256(body.encode()).hexdigest(),
    }
    try:
        outcome: Outcome = _run_once(request=request)
        return outcome
    except IdempotencyValidationError:
        raise Unprocessable(
            "this Idempotency-Key was used with another request body",
            errors=[{"loc": ["header", "idempotency-key"], "msg": "reused with another body"}],
        ) from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict("a request with this Idempotency-Key is still in progress") from None
