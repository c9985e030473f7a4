"""The one way an event consumer is written: typed, logged, and idempotent.

    consumer = EventConsumer("lead_scoring", table, logger)

    @consumer.on(ContactCreated)
    def score_new_contact(event: ContactCreated) -> None:
        ...

    @consumer.on_outside("SES event", lambda e: e.get("source") == "aws.ses", parse_ses)
    def ses_event(ses: SesEvent) -> None:      # a payload that is not a domain event
        ...

    def handler(event, context):              # the Lambda handler
        return consumer.handle(event, context)

For each EventBridge event delivered, `handle`:
- finds the handler of its source and detail-type and parses `detail` into that event's
  model (an event it cannot parse is refused with `PoisonEvent`, so it is retried and then
  lands in the function's on-failure queue, whence `crm events replay --dlq` re-drives it);
- binds the correlation id, tenant, event id and detail-type to every log line;
- runs the handler at most once per `metadata.event_id` (Powertools idempotency, records
  in the single table under the event's tenant, kept `RECORD_TTL_SECONDS`). A duplicate
  delivery gets the first run's result; a concurrent one, while the first still runs, is
  refused with `EventInProgress` and retried later by Lambda; a handler that raises leaves
  no record, so the retry runs it again.

An outside source (SES's events on the default bus, a Scheduler's payload) is matched by
its own test and parsed by its own parser; its handler runs without an idempotency record
(it guards its own writes) and a payload its parser refuses is logged as poison, as above.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from crm_core.events.envelope import DomainEvent
from crm_core.table import Table

# Longer than every redelivery path: EventBridge retries for 24 h, a DLQ keeps messages 14
# days but is re-driven after a fix, usually within days; an archive replay of older events
# runs the handlers again, so they must also be safe to repeat (docs/operations.md).
RECORD_TTL_SECONDS = 7 * 24 * 3600

E = TypeVar("E", bound=DomainEvent)
P = TypeVar("P")
Handler = Callable[[Any], Any]


@dataclass(frozen=True)
class _Outside:
    name: str
    matches: Callable[[Mapping[str, Any]], bool]
    parse: Callable[[Mapping[str, Any]], Any]
    handler: Handler


def _errors(error: ValidationError) -> str:
    return f"{error.error_count()} error(s): " + "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
    )


class PoisonEvent(ValueError):
    """An event this consumer can never process as it is: not one it subscribes to, or a
    detail that does not match the event's model."""


class EventInProgress(RuntimeError):
    """The same event is being processed by another invocation right now."""


class EventConsumer:
    def __init__(
        self,
        name: str,
        table: Table,
        logger: Any,
        record_ttl_seconds: int = RECORD_TTL_SECONDS,
    ) -> None:
        self.name = name
        self.table = table
        self.logger = logger
        self.record_ttl_seconds = record_ttl_seconds
        self._handlers: dict[tuple[str, str], tuple[type[DomainEvent], Handler]] = {}
        self._outside: list[_Outside] = []
        self._unrecorded: set[tuple[str, str]] = set()
        self._store: Any = None

    # Subscriptions --------------------------------------------------------------------
    def on(
        self, event_type: type[E], *, once: bool = True
    ) -> Callable[[Callable[[E], Any]], Callable[[E], Any]]:
        """`once=False`: no idempotency record, for a handler whose writes are idempotent
        by themselves (the report aggregator's: a change applied is stale the next time),
        saving the record's three calls per event."""

        def register(function: Callable[[E], Any]) -> Callable[[E], Any]:
            name = (event_type.SOURCE, event_type.DETAIL_TYPE)
            if name in self._handlers:
                raise ValueError(f"{self.name}: two handlers for {event_type.DETAIL_TYPE}")
            self._handlers[name] = (event_type, function)
            if not once:
                self._unrecorded.add(name)
            return function

        return register

    def on_outside(
        self,
        name: str,
        matches: Callable[[Mapping[str, Any]], bool],
        parse: Callable[[Mapping[str, Any]], P],
    ) -> Callable[[Callable[[P], Any]], Callable[[P], Any]]:
        """A handler for payloads that are not domain events: those `matches` accepts are
        parsed by `parse` (which raises PoisonEvent or a ValidationError on a bad one)."""

        def register(function: Callable[[P], Any]) -> Callable[[P], Any]:
            self._outside.append(_Outside(name, matches, parse, function))
            return function

        return register

    @property
    def subscriptions(self) -> list[type[DomainEvent]]:
        return [event_type for event_type, _ in self._handlers.values()]

    # Delivery -------------------------------------------------------------------------
    def parse(self, event: Mapping[str, Any]) -> DomainEvent:
        """The typed event of an EventBridge event, or PoisonEvent."""
        source, detail_type = event.get("source"), event.get("detail-type")
        found = self._handlers.get((str(source), str(detail_type)))
        if found is None:
            raise PoisonEvent(f"{self.name} does not consume {source} {detail_type}")
        try:
            return found[0].model_validate(event.get("detail"))
        except ValidationError as error:
            raise PoisonEvent(f"{detail_type} does not match its model: {_errors(error)}") from None

    def handle(self, event: Mapping[str, Any], context: Any = None) -> Any:
        """Process one EventBridge event or outside payload (the Lambda handler's body)."""
        outside = next((o for o in self._outside if o.matches(event)), None)
        if outside is not None:
            return self._handle_outside(outside, event)
        try:
            typed = self.parse(event)
        except PoisonEvent as poison:
            self._log_poison(event, poison)
            raise
        metadata = typed.metadata
        self.logger.set_correlation_id(metadata.correlation_id)
        self.logger.append_keys(
            tenant_id=metadata.tenant_id,
            event_id=metadata.event_id,
            detail_type=typed.DETAIL_TYPE,
            replay_name=event.get("replay-name"),
        )
        run = self._handlers[(typed.SOURCE, typed.DETAIL_TYPE)][1]
        if (typed.SOURCE, typed.DETAIL_TYPE) in self._unrecorded:
            return run(typed)
        return self._once(typed, run, context)

    def _handle_outside(self, outside: _Outside, event: Mapping[str, Any]) -> Any:
        try:
            payload = outside.parse(event)
        except (PoisonEvent, ValidationError) as poison:
            self._log_poison(event, poison)
            raise
        if event.get("id"):
            self.logger.append_keys(eventbridge_id=event.get("id"))
        return outside.handler(payload)

    def _log_poison(self, event: Mapping[str, Any], reason: Exception) -> None:
        self.logger.error(
            "poison event",
            extra={
                "source": event.get("source"),
                "detail_type": event.get("detail-type"),
                "eventbridge_id": event.get("id"),
                # A model's own message would quote the input values: only where and why.
                "reason": _errors(reason) if isinstance(reason, ValidationError) else str(reason),
            },
        )

    def _once(self, typed: DomainEvent, run: Handler, context: Any) -> Any:
        from aws_lambda_powertools.utilities.idempotency import (
            IdempotencyConfig,
            idempotent_function,
        )
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
        )

        config = IdempotencyConfig(
            event_key_jmespath="[event_id, handler]",
            expires_after_seconds=self.record_ttl_seconds,
            raise_on_no_idempotency_key=True,
        )
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            # An in-progress record then expires with the invocation: a timed-out run can
            # be retried instead of blocking its event until the record's TTL.
            config.register_lambda_context(context)

        @idempotent_function(
            data_keyword_argument="delivery",
            persistence_store=self._persistence(typed.tenant_id),
            config=config,
        )
        def once(delivery: dict[str, str]) -> Any:
            result = run(typed)
            self.logger.info("event processed")
            return result

        # The record's key names the consumer and the handler, so every consumer of an
        # event keeps its own record of it.
        delivery = {"event_id": typed.event_id, "handler": f"{self.name}.{run.__name__}"}
        try:
            return once(delivery=delivery)
        except IdempotencyAlreadyInProgressError:
            self.logger.info("event already in progress elsewhere; retry later")
            raise EventInProgress(f"event {typed.event_id} is being processed") from None

    def _persistence(self, tenant_id: str) -> Any:
        """Powertools' DynamoDB persistence layer, with records in the event's tenant."""
        if self._store is None:
            from crm_core.idempotency import tenant_persistence_layer

            self._store = tenant_persistence_layer(self.table)
        self._store.tenant_id = tenant_id
        return self._store
