"""An unsubscribed address stays unmailed: the sender checks the tenant's suppression list at
send time, and an address suppressed because its person unsubscribed is skipped even when
the contact now on it says `subscribed` (a contact whose email was changed to that address).

The scene is the sender's (tests/integration/test_campaign_sender.py): a campaign dispatched
by the real dispatcher, its send queue's messages handed to the real sender.
"""

from __future__ import annotations

from crm_core.campaigns.unsubscribing import Method, Unsubscriber
from tests.integration.test_campaign_dispatch import (  # noqa: F401 - a fixture
    ORIGIN,
    TENANT,
    dispatcher_module,
)
from tests.integration.test_campaign_sender import (  # noqa: F401 - fixtures
    Mail,
    assert_sent_once,
    mail,
    sender_module,
)


def test_the_sender_skips_an_address_suppressed_as_unsubscribed(
    mail: Mail,  # noqa: F811 - the fixture imported above
) -> None:
    ada, bob, cy = mail.contact(), mail.contact(), mail.contact()
    address = mail.contacts.get(TENANT, ada).email
    campaign_id = mail.campaign(mail.segment())
    mail.start(campaign_id)
    # Between the dispatch and the send: Ada unsubscribes through an earlier email's link,
    # her contact is deleted, and Bob's contact (subscribed) takes her address.
    done = Unsubscriber(mail.table).unsubscribe(TENANT, ada, None, Method.ONE_CLICK, ORIGIN)
    assert done.changed
    mail.contacts.delete(TENANT, ada, None, ORIGIN)
    moved = mail.contacts.update(TENANT, bob, {"email": address}, None, ORIGIN)
    assert (moved.email, moved.email_consent) == (address, "subscribed")

    assert mail.deliver_all() == []

    found = mail.recipients(campaign_id)
    assert found[bob]["status"] == "skipped"
    assert found[bob]["skip_reason"] == "suppressed"
    assert found[ada]["skip_reason"] == "missing"
    assert_sent_once(mail, campaign_id, [cy])
    assert all(m["To"] != address for m in mail.emails(campaign_id))
