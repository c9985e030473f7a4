"""Unsubscribing a contact from campaign email: the write behind the unsubscribe link
(functions/unsubscribe) and behind a complaint (functions/email_events).

The contact's `email_consent` becomes `unsubscribed` in one transaction with its
`ContactUpdated` (changed `["email_consent"]`), `ContactUnsubscribed`, both in the
contact's partition, and the suppression of each of its addresses as `unsubscribed` (the
contacts store's part of every change to unsubscribed), so that a contact deleted and
created again is not mailed either. It is the guarded write of every contact change
(`ContactStore.write_revision`: the version and the score's sequence as read), read again and
retried when a concurrent change wins, so neither change is lost. A contact already
unsubscribed is left alone (no event): a link used twice, a one-click POST followed by
the page's button, or two complaints change nothing the second time.

The contact is the token's (or the email's) contact, or the one at the end of its chain of
merges however long (`crm_core.contacts.items.resolve`): a link in an email sent before
any number of merges still unsubscribes the person. A deleted one has nothing left to
unsubscribe.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from crm_core import keys
from crm_core.contacts.items import resolve
from crm_core.contacts.store import ContactStore
from crm_core.dynamo import Item
from crm_core.events.contacts import ContactUnsubscribed, ContactUnsubscribedData
from crm_core.events.envelope import Origin
from crm_core.events.outbox import outbox_put
from crm_core.records.contact import EmailConsent
from crm_core.table import Table, read_modify_write

# The contact id of the links in the campaigns API's test sends: nothing to unsubscribe.
TEST_CONTACT_ID = "test"


class Method(StrEnum):
    """How the contact unsubscribed (`ContactUnsubscribed.data.method`)."""

    ONE_CLICK = "one_click"  # RFC 8058: the mailbox provider's button POSTed the link
    PAGE = "page"  # the button of our page
    COMPLAINT = "complaint"  # marked the campaign's email as spam (email_events)


class UnsubscribeOutcome(StrEnum):
    UNSUBSCRIBED = "unsubscribed"  # changed now, with its events
    ALREADY = "already_unsubscribed"  # nothing to change
    GONE = "gone"  # no such contact in the tenant (deleted): nothing to change
    TEST = "test"  # a test send's link


@dataclass(frozen=True)
class Unsubscribed:
    outcome: UnsubscribeOutcome
    contact_id: str | None = None  # the contact changed (the survivor of a merge)
    email: str | None = None
    event_id: str | None = None  # ContactUnsubscribed's, when written

    @property
    def changed(self) -> bool:
        return self.outcome == UnsubscribeOutcome.UNSUBSCRIBED


def find_contact(
    table: Table, tenant_id: str, contact_id: str, *, consistent: bool = True
) -> Item | None:
    """The contact item of `contact_id`, or of the contact at the end of its chain of
    merges; None when there is none (deleted, or never in this tenant). A chain that never
    ends is MergeChainTooLong (a 409)."""
    return resolve(table, tenant_id, contact_id, consistent=consistent)


def is_unsubscribed(contact: Item) -> bool:
    return contact.get("email_consent") == EmailConsent.UNSUBSCRIBED.value


class Unsubscriber:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.contacts = ContactStore(table)

    def unsubscribe(
        self,
        tenant_id: str,
        contact_id: str,
        campaign_id: str | None,
        method: Method,
        origin: Origin,
    ) -> Unsubscribed:
        """Set the contact's email consent to unsubscribed, once; what happened."""
        if contact_id == TEST_CONTACT_ID:
            return Unsubscribed(UnsubscribeOutcome.TEST)
        return read_modify_write(
            lambda: self._attempt(tenant_id, contact_id, campaign_id, method, origin), "contact"
        )

    def _attempt(
        self,
        tenant_id: str,
        contact_id: str,
        campaign_id: str | None,
        method: Method,
        origin: Origin,
    ) -> Unsubscribed:
        old = find_contact(self.table, tenant_id, contact_id)
        if old is None:
            return Unsubscribed(UnsubscribeOutcome.GONE)
        if is_unsubscribed(old):
            return Unsubscribed(UnsubscribeOutcome.ALREADY, old["id"], old.get("email"))
        previous = str(old.get("email_consent") or EmailConsent.UNKNOWN.value)
        written: list[ContactUnsubscribed] = []

        def unsubscribed_event(new: Item) -> list[dict[str, Any]]:
            # Built from the contact as written: the event happens at its updated_at, as
            # its ContactUpdated does.
            event = ContactUnsubscribed.create(
                tenant_id,
                origin,
                ContactUnsubscribedData(
                    contact_id=new["id"],
                    link_contact_id=contact_id if contact_id != new["id"] else None,
                    email=new.get("email"),
                    campaign_id=campaign_id,
                    method=method.value,
                    previous_consent=previous,
                ),
                new["updated_at"],
            )
            written.append(event)
            return [outbox_put(self.table.op, keys.contact(tenant_id, new["id"]), event)]

        new = {**old, "email_consent": EmailConsent.UNSUBSCRIBED.value}
        # ConcurrentChange when the contact changed since it was read: read_modify_write
        # reads it again (and finds it unsubscribed, if that was the change).
        self.contacts.write_revision(tenant_id, old, new, origin, extra_writes=unsubscribed_event)
        return Unsubscribed(
            UnsubscribeOutcome.UNSUBSCRIBED, old["id"], old.get("email"), written[-1].event_id
        )
