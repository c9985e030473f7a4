"""One campaign email as SES sends it: a MIME message with every header we need.

SESv2 `SendEmail` with `Content.Raw` carries the message as built here, so the headers
reach the inbox exactly (a `Content.Simple` message cannot carry `List-Unsubscribe`):
- `List-Unsubscribe: <https://.../unsubscribe?token=...>` and
  `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058): mail providers show an
  unsubscribe button that POSTs to the link, with no page in between;
- the text and HTML parts as `multipart/alternative`;
- `X-CRM-Campaign` and `X-CRM-Tenant` for support staff reading a forwarded message.
The email's tags (tenant, campaign, contact) travel in the request's `EmailTags`, which SES
copies into every event about the message (`mail.tags`): that is how email_events finds
the recipient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from crm_core.campaigns.templates import Rendered
from crm_core.fields import one_line

# SES tag values: letters, digits, '_', '-', '.', '@' only, up to 256 characters.
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]")


@dataclass(frozen=True)
class Envelope:
    from_address: str
    to_address: str
    from_name: str | None = None
    reply_to: str | None = None


def tag_value(value: str) -> str:
    return _TAG_UNSAFE.sub("_", value)[:256]


def build(
    envelope: Envelope,
    rendered: Rendered,
    unsubscribe_url: str,
    tenant_id: str,
    campaign_id: str | None,
) -> bytes:
    message = EmailMessage()
    message["Subject"] = rendered.subject
    # A display name is one line since it is checked at save (fields.OneLine); one stored
    # before that may hold a line break, which would fail every message of the campaign.
    name = one_line(envelope.from_name or "")
    message["From"] = (
        Address(display_name=name, addr_spec=envelope.from_address)
        if name
        else envelope.from_address
    )
    message["To"] = envelope.to_address
    if envelope.reply_to:
        message["Reply-To"] = envelope.reply_to
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=envelope.from_address.rpartition("@")[2])
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["X-CRM-Tenant"] = tenant_id
    if campaign_id:
        message["X-CRM-Campaign"] = campaign_id
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message.as_bytes()


def send_request(
    raw: bytes,
    envelope: Envelope,
    configuration_set: str,
    tags: dict[str, str],
) -> dict[str, Any]:
    """The SESv2 SendEmail parameters of one raw message."""
    return {
        "FromEmailAddress": envelope.from_address,
        "Destination": {"ToAddresses": [envelope.to_address]},
        "Content": {"Raw": {"Data": raw}},
        "ConfigurationSetName": configuration_set,
        "EmailTags": [{"Name": name, "Value": tag_value(value)} for name, value in tags.items()],
    }


def campaign_tags(tenant_id: str, campaign_id: str, contact_id: str) -> dict[str, str]:
    return {"tenant_id": tenant_id, "campaign_id": campaign_id, "contact_id": contact_id}
