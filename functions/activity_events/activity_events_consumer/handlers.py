"""activity_events: a contact's activities follow the contact when it is merged or deleted.

ContactMerged moves the merged contact's activities to the survivor (to the survivor's own
survivor if it was merged in turn, or deletes them if the survivor is gone); ContactDeleted
deletes the deleted contact's activities. Both can be repeated and interrupted: each
activity leaves the merged contact in the transaction that writes it under the survivor
(with the survivor's counts), so a retry after a crash or a timeout continues where the
last run stopped, and moves nothing twice (crm_core/activities/store.py, `move_all`).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from activity_events_consumer.context import consumer, logger, metrics, store
from crm_core.events.contacts import ContactDeleted, ContactMerged


@consumer.on(ContactMerged)
def move_activities(event: ContactMerged) -> dict[str, int]:
    merged_id, survivor_id = event.data.merged_id, event.data.survivor_id
    moved = store.move_all(event.tenant_id, merged_id, survivor_id)
    metrics.add_metric(name="ActivitiesMoved", unit=MetricUnit.Count, value=moved)
    logger.info(
        "activities moved to the survivor",
        extra={"merged_id": merged_id, "survivor_id": survivor_id, "activities": moved},
    )
    return {"moved": moved}


@consumer.on(ContactDeleted)
def delete_activities(event: ContactDeleted) -> dict[str, int]:
    contact_id = event.data.contact_id
    deleted = store.delete_all(event.tenant_id, contact_id)
    metrics.add_metric(name="ActivitiesDeleted", unit=MetricUnit.Count, value=deleted)
    logger.info(
        "activities of the deleted contact deleted",
        extra={"contact_id": contact_id, "activities": deleted},
    )
    return {"deleted": deleted}
