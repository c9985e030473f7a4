"""Events of the contacts function (source `crm.contacts`): contacts and companies."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from crm_core.events.envelope import EVENT_MODEL, DomainEvent, Origin
from crm_core.fields import Ulid
from crm_core.records.company import Company
from crm_core.records.contact import Contact

SOURCE = "crm.contacts"
PRODUCER = "contacts"


class _ContactsEvent(DomainEvent):
    SOURCE: ClassVar[str] = SOURCE
    PRODUCER: ClassVar[str] = PRODUCER


class ContactData(BaseModel):
    model_config = EVENT_MODEL
    contact: Contact


class ContactChangeData(BaseModel):
    model_config = EVENT_MODEL
    contact: Contact = Field(description="The contact after the change.")
    changed: list[str] = Field(description="The names of the fields the change set.")
    previous: dict[str, Any] = Field(
        description="The value each changed field had before (absent fields as null)."
    )


class ContactMergedData(BaseModel):
    model_config = EVENT_MODEL
    survivor_id: Ulid = Field(description="The contact that remains (the merge's target).")
    merged_id: Ulid = Field(description="The contact merged away; its id now redirects.")
    contact: Contact = Field(description="The survivor after the merge.")


class ContactDeletedData(BaseModel):
    model_config = EVENT_MODEL
    contact_id: Ulid = Field(description="The deleted contact.")
    company_id: Ulid | None = Field(default=None, description="Its company, if it had one.")
    owner_id: str | None = Field(default=None, description="Its owner, if it had one.")


class CompanyData(BaseModel):
    model_config = EVENT_MODEL
    company: Company


class CompanyChangeData(BaseModel):
    model_config = EVENT_MODEL
    company: Company = Field(description="The company after the change.")
    changed: list[str] = Field(description="The names of the fields the change set.")
    previous: dict[str, Any] = Field(
        description="The value each changed field had before (absent fields as null)."
    )


class CompanyDeletedData(BaseModel):
    model_config = EVENT_MODEL
    company_id: Ulid = Field(description="The deleted company.")


class ContactCreated(_ContactsEvent):
    """A contact was created (through the API, or by a lead)."""

    DETAIL_TYPE: ClassVar[str] = "ContactCreated"
    data: ContactData


class ContactUpdated(_ContactsEvent):
    """Fields of a contact changed; `changed` names them and `previous` holds old values."""

    DETAIL_TYPE: ClassVar[str] = "ContactUpdated"
    data: ContactChangeData


class ContactMerged(_ContactsEvent):
    """A contact was merged into another; the survivor keeps both records' data."""

    DETAIL_TYPE: ClassVar[str] = "ContactMerged"
    data: ContactMergedData


class ContactDeleted(_ContactsEvent):
    """A contact was deleted."""

    DETAIL_TYPE: ClassVar[str] = "ContactDeleted"
    data: ContactDeletedData


class CompanyCreated(_ContactsEvent):
    """A company was created."""

    DETAIL_TYPE: ClassVar[str] = "CompanyCreated"
    data: CompanyData


class CompanyUpdated(_ContactsEvent):
    """Fields of a company changed."""

    DETAIL_TYPE: ClassVar[str] = "CompanyUpdated"
    data: CompanyChangeData


class CompanyDeleted(_ContactsEvent):
    """A company (with no contacts left) was deleted."""

    DETAIL_TYPE: ClassVar[str] = "CompanyDeleted"
    data: CompanyDeletedData


def contact_updated(
    tenant_id: str, origin: Origin, before: Contact, after: Contact
) -> ContactUpdated | None:
    """The event of an update, or None when it set every field to its current value."""
    # The score is not a change of the contact's: it moves with time and with scoring.
    changed, previous = _changes(before, after, ignore=("updated_at", "version", "score"))
    if not changed:
        return None
    data = ContactChangeData(contact=after, changed=changed, previous=previous)
    return ContactUpdated.create(tenant_id, origin, data, after.updated_at)


def company_updated(
    tenant_id: str, origin: Origin, before: Company, after: Company
) -> CompanyUpdated | None:
    """The event of an update, or None when it changed nothing but bookkeeping (the contact
    count moves with contacts, which publish their own events)."""
    changed, previous = _changes(before, after, ignore=("updated_at", "version", "contact_count"))
    if not changed:
        return None
    data = CompanyChangeData(company=after, changed=changed, previous=previous)
    return CompanyUpdated.create(tenant_id, origin, data, after.updated_at)


def _changes(
    before: BaseModel, after: BaseModel, ignore: tuple[str, ...]
) -> tuple[list[str], dict[str, Any]]:
    """The fields that differ between two versions of a resource, and their old values."""
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    changed = [name for name in new if name not in ignore and old.get(name) != new[name]]
    return changed, {name: old.get(name) for name in changed}


class ContactUnsubscribedData(BaseModel):
    model_config = EVENT_MODEL
    contact_id: Ulid = Field(description="The contact whose email consent is now unsubscribed.")
    email: str | None = Field(default=None, description="The address it had then.")
    campaign_id: str | None = Field(
        default=None, description="The campaign whose link was used, if any."
    )
    link_contact_id: Ulid | None = Field(
        default=None,
        description=(
            "The contact the link was sent to, when a merge has since moved it into "
            "contact_id (the campaign's recipient is keyed by it)."
        ),
    )
    method: str = Field(
        description=(
            "one_click (RFC 8058 POST), page (the confirmation page's button), or complaint "
            "(the recipient reported the email as spam)."
        )
    )
    previous_consent: str = Field(description="subscribed or unknown.")


class ContactUnsubscribed(_ContactsEvent):
    """A contact unsubscribed from email: through a campaign's link (published by the
    unsubscribe function) or by reporting one as spam (published by email_events). No
    campaign mails them again."""

    PRODUCER: ClassVar[str] = "unsubscribe"
    DETAIL_TYPE: ClassVar[str] = "ContactUnsubscribed"
    data: ContactUnsubscribedData
