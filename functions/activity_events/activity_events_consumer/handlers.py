"""activity_events: a contact's activities follow the contact when it is merged or deleted,
and each entry of a support case's conversation joins its contact's timeline.

ContactMerged moves the merged contact's activities to the survivor (to the survivor's own
survivor if it was merged in turn, or deletes them if the survivor is gone); ContactDeleted
deletes the deleted contact's activities. Both can be repeated and interrupted: each
activity leaves the merged contact in the transaction that writes it under the survivor
(with the survivor's counts), so a retry after a crash or a timeout continues where the
last run stopped, and moves nothing twice (crm_core/activities/store.py, `move_all`).
"""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit

from activity_events_consumer.context import consumer, logger, metrics, store
from crm_core.activities.models import ActivityType, validate_fields
from crm_core.errors import Conflict, NotFound
from crm_core.events.cases import CaseReplied
from crm_core.events.contacts import ContactDeleted, ContactMerged
from crm_core.events.envelope import Origin

ORIGIN_NAME = "activity_events"
# A contact merged into one merged in turn...: the chain is followed this far, no further.
MAX_MERGE_HOPS = 5


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


@consumer.on(CaseReplied)
def log_case_message(event: CaseReplied) -> dict[str, str | None]:
    """The entry as a `case_message` activity on the case's contact (followed to its
    survivor when merged); a case without a contact, or whose contact is gone, logs none.
    The consumer's record of the event makes a redelivery log nothing twice."""
    case, entry = event.data.case, event.data.entry
    contact_id = case.contact_id
    fields = {
        "case_id": case.id,
        "entry_id": entry.id,
        "kind": entry.kind,
        "public": entry.public,
        "subject": case.subject,
        "excerpt": entry.excerpt,
    }
    stored = validate_fields(ActivityType.CASE_MESSAGE, fields)
    origin = Origin.system(ORIGIN_NAME, event.metadata.correlation_id)
    occurred_at = datetime.fromisoformat(entry.created_at.replace("Z", "+00:00"))
    for _ in range(MAX_MERGE_HOPS):
        if contact_id is None:
            break
        try:
            logged = store.log(
                event.tenant_id, contact_id, ActivityType.CASE_MESSAGE, stored, occurred_at, origin
            )
        except Conflict as merged:
            contact_id = merged.extra.get("merged_into")
            continue
        except NotFound:
            break
        metrics.add_metric(name="CaseMessagesLogged", unit=MetricUnit.Count, value=1)
        return {"activity_id": str(logged["id"]), "contact_id": contact_id}
    return {"activity_id": None, "contact_id": contact_id}
