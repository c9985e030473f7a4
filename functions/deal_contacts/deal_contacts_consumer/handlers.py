"""deal_contacts: a contact on an open deal becomes an `opportunity`, on a won deal a
`customer` (crm_core/deals/contact_stages.py decides: forward only, never over a person's
later choice).

Each event is handled once (the consumer's idempotency record), and handling it again is
harmless anyway: a contact already at the stage, or past it, is left alone. Events that
arrive out of order cannot move a contact back (a DealCreated after its DealWon finds a
customer). A contact that is gone, or merged into another, is skipped: the survivor keeps
its own stage.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from crm_core.deals.contact_stages import promotes, target_of
from crm_core.errors import Moved, NotFound, PreconditionFailed
from crm_core.events.deals import DealCreated, DealStageChanged, DealUpdated, DealWon
from crm_core.events.envelope import Origin
from crm_core.table import backoff
from deal_contacts_consumer.context import consumer, contacts, logger, metrics

_ATTEMPTS = 8
DealEvent = DealCreated | DealUpdated | DealStageChanged | DealWon


def promote(tenant_id: str, contact_id: str, target: str, event_time: str, origin: Origin) -> bool:
    """Move one contact to `target` if the rules allow it, on the version read."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            item = contacts.load(tenant_id, contact_id)
        except (NotFound, Moved):
            return False
        if not promotes(item, target, event_time):
            return False
        try:
            contacts.update(
                tenant_id,
                contact_id,
                {"lifecycle_stage": target},
                item["version"],
                origin,
                by_person=False,
            )
            return True
        except PreconditionFailed:
            backoff(attempt)  # changed meanwhile: decide again on what it is now
    raise RuntimeError(f"contact {contact_id} kept changing; the event will be retried")


def promote_contacts(event: DealEvent) -> dict[str, int]:
    deal = event.data.deal
    target = target_of(deal.status)
    if target is None:
        return {"promoted": 0}
    origin = Origin.system("deal_contacts", event.metadata.correlation_id)
    promoted = sum(
        promote(event.tenant_id, c.contact_id, target, event.metadata.occurred_at, origin)
        for c in deal.contacts
    )
    if promoted:
        metrics.add_metric(name="ContactsPromoted", unit=MetricUnit.Count, value=promoted)
        logger.info(
            "contacts promoted", extra={"deal_id": deal.id, "stage": target, "count": promoted}
        )
    return {"promoted": promoted}


# One handler for each of these events (stacked decorators would narrow its type).
consumer.on(DealCreated)(promote_contacts)
consumer.on(DealUpdated)(promote_contacts)
consumer.on(DealStageChanged)(promote_contacts)
consumer.on(DealWon)(promote_contacts)
