"""SES locally: a mailbox of every email sent, and SES's sending events on EventBridge.

The mailbox
    moto keeps what SES sends in memory (`ses_backends[account][region].sent_messages`),
    for SES v1 (SendEmail, SendRawEmail, SendTemplatedEmail) and v2 (SendEmail with
    `Content.Simple`, `Content.Raw`) alike. The endpoint runs in this process, so the
    mailbox reads them there. A raw message keeps every header and part; it is parsed with
    the standard library's `email` package. For a Simple message moto keeps only the
    subject and one body (the HTML one if there is one), and never the configuration set
    of any send; so while this service runs it also records, from each SendEmail request
    moto answers, the configuration set, the time, the EmailTags, and a Simple message's
    text part and custom headers. The mailbox is `GET /_local/mailbox`: a JSON list, newest
    first, to `Accept: application/json` (or `?format=json`), else an HTML page where each
    email's HTML body is shown in a sandboxed iframe (no scripts, links open in a new tab).

SES events
    When the template declares an `AWS::SES::ConfigurationSetEventDestination` with an
    `EventBridgeDestination` (and `Enabled: true`) and an email is sent with that
    configuration set (the request's `ConfigurationSetName`, a raw message's
    `X-SES-CONFIGURATION-SET` header, or the sending identity's default configuration set),
    its events are put on the destination's `EventBusArn` as SES puts them, those of the
    types its `MatchingEventTypes` name (in CloudFormation's lower case, `send`, or the
    API's upper case, `SEND`): `"source": "aws.ses"`, `"resources": [<the configuration
    set's ARN>]`, `"detail-type"` and `detail` by event type:
    - Send: "Email Sent", `{"eventType": "Send", "mail": {...}, "send": {}}`;
    - Delivery: "Email Delivered", `"delivery": {"timestamp", "processingTimeMillis",
      "recipients", "smtpResponse", "reportingMTA"}`;
    - Bounce: "Email Bounced", `"bounce": {"bounceType": "Permanent", "bounceSubType":
      "General" | "OnAccountSuppressionList", "bouncedRecipients": [{"emailAddress",
      "action": "failed", "status", "diagnosticCode"}], "timestamp", "feedbackId",
      "reportingMTA"}`;
    - Complaint: "Email Complaint Received", `"complaint": {"feedbackId",
      "complaintSubType": null, "complainedRecipients": [{"emailAddress"}], "timestamp",
      "userAgent", "complaintFeedbackType": "abuse", "arrivalDate"}`.
    Every event's `mail` has `timestamp`, `source`, `sourceArn`, `sendingAccountId`,
    `messageId`, `destination`, `headersTruncated`, `headers`, `commonHeaders` and `tags`:
    SES's own (`ses:configuration-set`, `ses:from-domain`, `ses:source-ip`,
    `ses:caller-identity`) and the request's `EmailTags` (or a raw message's
    `X-SES-MESSAGE-TAGS` header), each `{"name": ["value"]}`.
    What happens to each recipient is what SES's mailbox simulator does: to
    `bounce@simulator.amazonses.com` Send + Bounce (Permanent, General); to
    `complaint@simulator.amazonses.com` Send + Delivery + Complaint; to
    `suppressionlist@simulator.amazonses.com` Send + Bounce (Permanent,
    OnAccountSuppressionList); any other address, `success@simulator.amazonses.com`
    included, Send + Delivery (a `+label` after the local part changes nothing). One email to
    several recipients has one Send, one Delivery of those delivered, and a Bounce or
    Complaint of those that bounce or complain. Events are put EVENT_DELAY_S (1 s) after
    the send, never before SendEmail has answered, as SES publishes them seconds later.
    AWS accepts only
    the account's default bus as an SES event destination, so rules for these events belong
    on the default bus.
    Unlike SES, `mail.destination` and `delivery.recipients` keep the addresses as the
    request gave them (with display names); bounced and complained recipients are bare
    addresses, as in SES.

Not emulated: rejects (no virus scan), opens and clicks (no tracking pixel nor link
rewriting), delivery delays, rendering failures and subscriptions; transient bounces;
SNS, Firehose, CloudWatch and Pinpoint event destinations; templates (a templated email is
listed with its template's name and data, not rendered); sending quotas, the sandbox's
verified-recipient rule and the account's suppression list (a suppressed address is
only the simulator's).
"""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr, getaddresses, parseaddr
from typing import Any

from infra.local.context import CloudContext
from infra.local.pages import wants_json
from infra.topology import ACCOUNT_ID, REGION

POLL_S = 0.25
# SES publishes its events seconds after it accepts a message, never before SendEmail has
# answered; the local ones wait this long, so a sender records its send before they come.
EVENT_DELAY_S = 1.0
MAILBOX_PATH = "/_local/mailbox"
# SES's detail-types on EventBridge, by event type.
PUT_EVENTS_LIMIT = 10  # entries per PutEvents call
DETAIL_TYPES = {
    "Send": "Email Sent",
    "Delivery": "Email Delivered",
    "Bounce": "Email Bounced",
    "Complaint": "Email Complaint Received",
}
_LINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")


# What the requests said, beyond what moto keeps ------------------------------------------
@dataclass
class SentRequest:
    message_id: str
    sent_at: datetime
    configuration_set: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # A Simple message as sent: subject, text, html, headers [(name, value)], from, to, cc, bcc
    simple: dict[str, Any] | None = None


class _RequestLog:
    """Wraps moto's SES SendEmail handlers while at least one MailService runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._originals: list[tuple[type, str, Any]] = []
        self._sent: dict[str, SentRequest] = {}

    def get(self, message_id: str) -> SentRequest | None:
        with self._lock:
            return self._sent.get(message_id)

    def remember(self, request: SentRequest) -> None:
        with self._lock:
            self._sent[request.message_id] = request

    def install(self) -> None:
        from moto.ses.responses import EmailResponse
        from moto.sesv2.responses import SESV2Response

        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            wrappers = (
                (SESV2Response, "send_email", _v2_send),
                (EmailResponse, "send_email", _v1_send),
                (EmailResponse, "send_raw_email", _v1_send_raw),
            )
            for cls, name, wrapper in wrappers:
                original = getattr(cls, name)
                self._originals.append((cls, name, original))
                setattr(cls, name, wrapper(original))

    def uninstall(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            for cls, name, original in reversed(self._originals):
                setattr(cls, name, original)
            self._originals.clear()


_requests = _RequestLog()


def _message_id(result: Any) -> str | None:
    if isinstance(result, str | bytes):
        return str(json.loads(result).get("MessageId"))
    payload = getattr(result, "result", None)
    return str(payload["MessageId"]) if isinstance(payload, dict) else None


def _v2_send(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def send_email(handler: Any) -> Any:
        result = original(handler)
        try:
            params = json.loads(handler.body)
            message_id = _message_id(result)
            if message_id:
                _requests.remember(_v2_request(message_id, params))
        except Exception:  # noqa: S110 - the send itself succeeded; only the extras are lost
            pass
        return result

    return send_email


def _v2_request(message_id: str, params: Mapping[str, Any]) -> SentRequest:
    request = SentRequest(
        message_id=message_id,
        sent_at=datetime.now(UTC),
        configuration_set=params.get("ConfigurationSetName"),
        tags={t["Name"]: t["Value"] for t in params.get("EmailTags") or []},
    )
    simple = (params.get("Content") or {}).get("Simple")
    if simple:
        destination = params.get("Destination") or {}
        body = simple.get("Body") or {}
        request.simple = {
            "subject": (simple.get("Subject") or {}).get("Data", ""),
            "text": (body.get("Text") or {}).get("Data"),
            "html": (body.get("Html") or {}).get("Data"),
            "headers": [(h["Name"], h["Value"]) for h in simple.get("Headers") or []],
            "from": params.get("FromEmailAddress", ""),
            "to": list(destination.get("ToAddresses") or []),
            "cc": list(destination.get("CcAddresses") or []),
            "bcc": list(destination.get("BccAddresses") or []),
            "reply_to": list(params.get("ReplyToAddresses") or []),
        }
    return request


def _v1_send(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def send_email(handler: Any) -> Any:
        result = original(handler)
        try:
            message_id = _message_id(result)
            if message_id:
                destination = handler._get_param("Destination", {}) or {}
                request = SentRequest(
                    message_id=message_id,
                    sent_at=datetime.now(UTC),
                    configuration_set=handler._get_param("ConfigurationSetName"),
                )
                request.simple = {
                    "subject": handler._get_param("Message.Subject.Data") or "",
                    "text": handler._get_param("Message.Body.Text.Data"),
                    "html": handler._get_param("Message.Body.Html.Data"),
                    "headers": [],
                    "from": handler._get_param("Source") or "",
                    "to": list(destination.get("ToAddresses") or []),
                    "cc": list(destination.get("CcAddresses") or []),
                    "bcc": list(destination.get("BccAddresses") or []),
                    "reply_to": [],
                }
                _requests.remember(request)
        except Exception:  # noqa: S110 - the send itself succeeded; only the extras are lost
            pass
        return result

    return send_email


def _v1_send_raw(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def send_raw_email(handler: Any) -> Any:
        result = original(handler)
        try:
            message_id = _message_id(result)
            if message_id:
                _requests.remember(
                    SentRequest(
                        message_id=message_id,
                        sent_at=datetime.now(UTC),
                        configuration_set=handler._get_param("ConfigurationSetName"),
                    )
                )
        except Exception:  # noqa: S110 - the send itself succeeded; only the extras are lost
            pass
        return result

    return send_raw_email


# Emails ----------------------------------------------------------------------------------
@dataclass
class Email:
    id: str
    sender: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    headers: list[tuple[str, str]]
    html: str | None
    text: str | None
    sent_at: datetime
    source: str  # the envelope sender SES saw
    destinations: list[str]  # every recipient, Bcc included
    configuration_set: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    attachments: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in self.headers:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return {
            "id": self.id,
            "from": self.sender,
            "to": self.to,
            "cc": self.cc,
            "bcc": self.bcc,
            "subject": self.subject,
            "headers": headers,
            "html": self.html,
            "text": self.text,
            "attachments": self.attachments,
            "configuration_set": self.configuration_set,
            "sent_at": _iso_ms(self.sent_at),
        }


def _iso_ms(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _addresses(values: list[str]) -> list[str]:
    return [formataddr(pair) for pair in getaddresses(values) if pair[1]]


def parse_raw(message_id: str, raw: str, source: str | None, destinations: list[str]) -> Email:
    """A raw MIME message as the mailbox shows it."""
    message = email.message_from_string(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    headers = [(name, str(value)) for name, value in message.items()]
    html_part: str | None = None
    text_part: str | None = None
    attachments: list[str] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        if part.get_content_disposition() == "attachment":
            attachments.append(part.get_filename() or part.get_content_type())
            continue
        kind = part.get_content_type()
        if kind == "text/html" and html_part is None:
            html_part = str(part.get_content())
        elif kind == "text/plain" and text_part is None:
            text_part = str(part.get_content())
    sender = str(message.get("From", "")) or (source or "")
    return Email(
        id=message_id,
        sender=sender,
        to=_addresses([str(v) for v in message.get_all("To", [])]),
        cc=_addresses([str(v) for v in message.get_all("Cc", [])]),
        bcc=_addresses([str(v) for v in message.get_all("Bcc", [])]),
        subject=str(message.get("Subject", "")),
        headers=headers,
        html=html_part,
        text=text_part,
        sent_at=datetime.now(UTC),
        source=source or parseaddr(sender)[1],
        destinations=list(dict.fromkeys(destinations)),
        attachments=attachments,
    )


def _from_simple(message_id: str, simple: Mapping[str, Any]) -> Email:
    headers = [("From", simple["from"])]
    if simple["to"]:
        headers.append(("To", ", ".join(simple["to"])))
    if simple["cc"]:
        headers.append(("Cc", ", ".join(simple["cc"])))
    if simple.get("reply_to"):
        headers.append(("Reply-To", ", ".join(simple["reply_to"])))
    headers += [("Subject", simple["subject"]), ("MIME-Version", "1.0")]
    headers += [(str(n), str(v)) for n, v in simple.get("headers") or []]
    return Email(
        id=message_id,
        sender=simple["from"],
        to=simple["to"],
        cc=simple["cc"],
        bcc=simple["bcc"],
        subject=simple["subject"],
        headers=headers,
        html=simple.get("html"),
        text=simple.get("text"),
        sent_at=datetime.now(UTC),
        source=parseaddr(simple["from"])[1],
        destinations=[*simple["to"], *simple["cc"], *simple["bcc"]],
    )


def _from_moto(message: Any) -> list[Email]:
    """The emails one of moto's sent messages stands for, from what moto kept."""
    kind = type(message).__name__
    if kind == "RawMessage":
        return [parse_raw(message.id, message.raw_data, message.source, list(message.destinations))]
    if kind == "Message":
        destinations = message.destinations or {}
        body = str(message.body or "")
        looks_html = bool(re.search(r"<[a-zA-Z][^>]*>", body))
        simple = {
            "subject": str(message.subject or ""),
            "text": None if looks_html else body,
            "html": body if looks_html else None,
            "headers": [],
            "from": str(message.source),
            "to": list(destinations.get("ToAddresses") or []),
            "cc": list(destinations.get("CcAddresses") or []),
            "bcc": list(destinations.get("BccAddresses") or []),
        }
        return [_from_simple(message.id, simple)]
    if kind in ("TemplateMessage", "BulkTemplateMessage"):
        ids = list(getattr(message, "ids", None) or [message.id])
        simple = {
            "subject": f"(template {message.template})",
            "text": str(message.template_data),
            "html": None,
            "headers": [],
            "from": str(message.source),
            "to": [],
            "cc": [],
            "bcc": [],
        }
        return [_from_simple(message_id, simple) for message_id in ids]
    return []


def _moto_messages() -> Iterator[Any]:
    from moto.ses.models import ses_backends

    for regions in list(ses_backends.values()):
        for backend in list(regions.values()):
            yield from list(backend.sent_messages)


# SES events ------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventDestination:
    configuration_set: str
    name: str
    bus_arn: str
    event_types: frozenset[str]  # lower case: "send", "delivery"...


def event_destinations(ctx: CloudContext) -> list[EventDestination]:
    """The template's configuration set event destinations that go to EventBridge."""
    found = []
    for logical_id, resource in (ctx.template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::SES::ConfigurationSetEventDestination":
            continue
        condition = resource.get("Condition")
        if condition and not ctx.resolver.condition(condition):
            continue
        props = ctx.resolver.resolve(resource.get("Properties") or {})
        destination = props.get("EventDestination") or {}
        bus = (destination.get("EventBridgeDestination") or {}).get("EventBusArn")
        enabled = destination.get("Enabled", False)
        if not bus or not (enabled is True or str(enabled).lower() == "true"):
            continue
        found.append(
            EventDestination(
                configuration_set=str(props["ConfigurationSetName"]),
                name=str(destination.get("Name") or logical_id),
                bus_arn=str(bus),
                event_types=frozenset(
                    str(t).lower() for t in destination.get("MatchingEventTypes") or []
                ),
            )
        )
    return found


def default_configuration_sets(ctx: CloudContext) -> dict[str, str]:
    """Identity (address or domain) -> its default configuration set, from the template."""
    defaults = {}
    for resource in (ctx.template.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::SES::EmailIdentity":
            continue
        props = ctx.resolver.resolve(resource.get("Properties") or {})
        name = (props.get("ConfigurationSetAttributes") or {}).get("ConfigurationSetName")
        if name:
            defaults[str(props["EmailIdentity"]).lower()] = str(name)
    return defaults


# The mailbox simulator: the local part (before any `+label`) of an address of this domain
# says what happens to the message; any other address is delivered.
SIMULATOR_DOMAIN = "simulator.amazonses.com"
SUPPRESSED_DIAGNOSTIC = (
    "Amazon SES did not send the message to this address because it is on the suppression "
    "list for your account. For more information about removing addresses from the "
    "suppression list, see the Amazon SES Developer Guide at "
    "https://docs.aws.amazon.com/ses/latest/DeveloperGuide/sending-email-suppression-list.html"
)


def simulated(destination: str) -> str:
    """What SES's mailbox simulator does with a message to `destination`: "delivery",
    "bounce" (a hard bounce), "complaint" (delivered, then marked as spam) or "suppressed"
    (on the account's suppression list: never sent)."""
    address = (parseaddr(destination)[1] or destination).strip().lower()
    user, _, domain = address.rpartition("@")
    if domain != SIMULATOR_DOMAIN:
        return "delivery"
    return {"bounce": "bounce", "complaint": "complaint", "suppressionlist": "suppressed"}.get(
        user.split("+", 1)[0], "delivery"
    )


def ses_events(mail: Email, configuration_set: str) -> list[tuple[str, dict[str, Any]]]:
    """Every SES event of one email, in order, as (event type, `detail`): Send; Delivery of
    the recipients it reached; a Bounce of those the simulator bounces (General), another of
    those it suppresses (OnAccountSuppressionList); a Complaint of those who complain."""
    fates: dict[str, list[str]] = {}
    for destination in mail.destinations:
        fates.setdefault(simulated(destination), []).append(destination)
    delivered = [d for d in mail.destinations if simulated(d) in ("delivery", "complaint")]
    events = [("Send", ses_event("Send", mail, configuration_set))]
    if delivered:
        events.append(("Delivery", ses_event("Delivery", mail, configuration_set, delivered)))
    for fate, subtype in (("bounce", "General"), ("suppressed", "OnAccountSuppressionList")):
        if fates.get(fate):
            detail = ses_event("Bounce", mail, configuration_set, fates[fate], subtype=subtype)
            events.append(("Bounce", detail))
    if fates.get("complaint"):
        detail = ses_event("Complaint", mail, configuration_set, fates["complaint"])
        events.append(("Complaint", detail))
    return events


def ses_event(
    kind: str,
    mail: Email,
    configuration_set: str,
    recipients: list[str] | None = None,
    *,
    subtype: str | None = None,
) -> dict[str, Any]:
    """The `detail` of SES's "Email Sent", "Email Delivered", "Email Bounced" or "Email
    Complaint Received" event for `recipients` (default: every destination); `subtype`: a
    bounce's bounceSubType."""
    domain = mail.source.rsplit("@", 1)[-1]
    common: dict[str, Any] = {
        "from": [mail.sender],
        "to": mail.to,
        "messageId": mail.id,
        "subject": mail.subject,
    }
    if mail.cc:
        common["cc"] = mail.cc
    date = next((v for n, v in mail.headers if n.lower() == "date"), None)
    if date:
        common["date"] = date
    tags = {
        "ses:configuration-set": [configuration_set],
        "ses:source-ip": ["127.0.0.1"],
        "ses:from-domain": [domain],
        "ses:caller-identity": ["local"],
        **{name: [value] for name, value in mail.tags.items()},
    }
    detail: dict[str, Any] = {
        "eventType": kind,
        "mail": {
            "timestamp": _iso_ms(mail.sent_at),
            "source": mail.source,
            "sourceArn": f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:identity/{domain}",
            "sendingAccountId": ACCOUNT_ID,
            "messageId": mail.id,
            "destination": mail.destinations,
            "headersTruncated": False,
            "headers": [{"name": n, "value": v} for n, v in mail.headers],
            "commonHeaders": common,
            "tags": tags,
        },
    }
    now = datetime.now(UTC)
    recipients = list(mail.destinations if recipients is None else recipients)
    feedback_id = f"{mail.id}-{uuid.uuid4().hex[:12]}-000000"
    if kind == "Send":
        detail["send"] = {}
    elif kind == "Delivery":
        detail["delivery"] = {
            "timestamp": _iso_ms(now),
            "processingTimeMillis": max(0, int((now - mail.sent_at).total_seconds() * 1000)),
            "recipients": recipients,
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "local.amazonses.com",
        }
    elif kind == "Bounce":
        suppressed = subtype == "OnAccountSuppressionList"
        detail["bounce"] = {
            "bounceType": "Permanent",
            "bounceSubType": subtype or "General",
            "bouncedRecipients": [
                {
                    "emailAddress": _bare(r),
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": SUPPRESSED_DIAGNOSTIC
                    if suppressed
                    else "smtp; 550 5.1.1 user unknown",
                }
                for r in recipients
            ],
            "timestamp": _iso_ms(now),
            "feedbackId": feedback_id,
            "reportingMTA": "dns; amazonses.com" if suppressed else "dsn; local.amazonses.com",
        }
    elif kind == "Complaint":
        detail["complaint"] = {
            "feedbackId": feedback_id,
            "complaintSubType": None,
            "complainedRecipients": [{"emailAddress": _bare(r)} for r in recipients],
            "timestamp": _iso_ms(now),
            "userAgent": "Amazon SES Mailbox Simulator",
            "complaintFeedbackType": "abuse",
            "arrivalDate": _iso_ms(now),
        }
    else:
        raise ValueError(f"SES event {kind!r} is not emulated")
    return detail


def _bare(address: str) -> str:
    """`Ana <ana@example.org>` -> `ana@example.org`."""
    return parseaddr(address)[1] or address


def message_tags(headers: list[tuple[str, str]]) -> dict[str, str]:
    """The tags of a raw message's `X-SES-MESSAGE-TAGS: name=value, name2=value2` header."""
    tags: dict[str, str] = {}
    for name, value in headers:
        if name.lower() != "x-ses-message-tags":
            continue
        for pair in value.split(","):
            key, sep, tag_value = pair.partition("=")
            if sep and key.strip():
                tags[key.strip()] = tag_value.strip()
    return tags


# The service -----------------------------------------------------------------------------
class MailService:
    """Collects sent emails into the mailbox and puts their SES events on EventBridge."""

    def __init__(
        self,
        ctx: CloudContext,
        destinations: list[EventDestination],
        default_sets: Mapping[str, str] | None = None,
        *,
        poll_s: float = POLL_S,
        event_delay_s: float = EVENT_DELAY_S,
    ) -> None:
        self._ctx = ctx
        self._event_delay_s = event_delay_s
        self._due: list[Email] = []  # sent, their events not yet put
        self.destinations = destinations
        self._default_sets = dict(default_sets or {})
        self._poll_s = poll_s
        self._emails: list[Email] = []
        self._known: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._events = ctx.client("events") if destinations else None
        ctx.pages[MAILBOX_PATH] = self.page

    def start(self) -> None:
        _requests.install()
        # Emails already in moto (sent before this service ran) are shown, but their SES
        # events are not sent now: they would arrive late, or twice.
        self._collect(emit=False)
        self._thread = threading.Thread(target=self._run, name="mail", daemon=True)
        self._thread.start()
        names = ", ".join(f"{d.configuration_set} → {d.bus_arn}" for d in self.destinations)
        self._ctx.log(
            f"[mail] mailbox at {MAILBOX_PATH}; SES events: {names or 'none (no destination)'}"
        )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        _requests.uninstall()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self._collect(emit=True)
                self._emit_ready()
            except Exception as error:
                self._ctx.log(f"[mail] reading SES failed: {error!r}")

    def emails(self) -> list[Email]:
        """Every email sent, newest first. Their SES events are left to the service's
        thread: a page must not wait for a backlog of events to be put."""
        self._collect(emit=True)
        with self._lock:
            order = sorted(enumerate(self._emails), key=lambda p: (p[1].sent_at, p[0]))
            return [mail for _, mail in reversed(order)]

    def _collect(self, emit: bool) -> None:
        with self._lock:
            fresh: list[Email] = []
            for message in _moto_messages():
                ids = list(getattr(message, "ids", None) or [message.id])
                if all(message_id in self._known for message_id in ids):
                    continue  # parsed before
                for mail in _from_moto(message):
                    if mail.id in self._known:
                        continue
                    self._known.add(mail.id)
                    request = _requests.get(mail.id)
                    if request is not None:
                        if request.simple is not None:
                            mail = _from_simple(mail.id, request.simple)
                        mail.sent_at = request.sent_at
                        mail.tags = dict(request.tags)
                    if not mail.tags:
                        mail.tags = message_tags(mail.headers)
                    mail.configuration_set = self._configuration_set(mail, request)
                    self._emails.append(mail)
                    fresh.append(mail)
            if emit:
                self._due.extend(fresh)

    def _emit_ready(self) -> None:
        """Put the SES events of the emails sent `event_delay_s` ago or earlier, ten entries
        per PutEvents (its limit), outside the lock (the mailbox page takes it)."""
        with self._lock:
            cutoff = datetime.now(UTC).timestamp() - self._event_delay_s
            ready = [m for m in self._due if m.sent_at.timestamp() <= cutoff]
            self._due = [m for m in self._due if m.sent_at.timestamp() > cutoff]
        self._put([entry for mail in ready for entry in self._entries(mail)])

    def _configuration_set(self, mail: Email, request: SentRequest | None) -> str | None:
        if request is not None and request.configuration_set:
            return request.configuration_set
        header = next((v for n, v in mail.headers if n.lower() == "x-ses-configuration-set"), None)
        if header:
            return header.strip()
        address = mail.source.lower()
        return self._default_sets.get(address) or self._default_sets.get(address.rsplit("@", 1)[-1])

    def _emit(self, mail: Email) -> None:
        self._put(self._entries(mail))

    def _entries(self, mail: Email) -> list[dict[str, Any]]:
        """The PutEvents entries of one email's SES events, for its configuration set's
        EventBridge destinations and the event types each names."""
        if mail.configuration_set is None or self._events is None:
            return []
        wanted = [d for d in self.destinations if d.configuration_set == mail.configuration_set]
        resource = f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:configuration-set/{mail.configuration_set}"
        events = ses_events(mail, mail.configuration_set) if wanted else []
        return [
            {
                "EventBusName": destination.bus_arn,
                "Source": "aws.ses",
                "DetailType": DETAIL_TYPES[kind],
                "Detail": json.dumps(detail),
                "Resources": [resource],
            }
            for destination in wanted
            for kind, detail in events
            if kind.lower() in destination.event_types
        ]

    def _put(self, entries: list[dict[str, Any]]) -> None:
        if self._events is None:
            return
        for start in range(0, len(entries), PUT_EVENTS_LIMIT):
            batch = entries[start : start + PUT_EVENTS_LIMIT]
            try:
                answer = self._events.put_events(Entries=batch)
                failed = [
                    f"{entry['DetailType']}: {result.get('ErrorMessage')}"
                    for entry, result in zip(batch, answer.get("Entries", []), strict=False)
                    if result.get("ErrorCode")
                ]
                if failed:
                    raise RuntimeError("; ".join(failed))
            except Exception as error:
                self._ctx.log(f"[mail] could not put {len(batch)} SES events: {error}")

    # The page ---------------------------------------------------------------------------
    def page(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        emails = self.emails()
        if wants_json(request):
            body = json.dumps([mail.as_json() for mail in emails]).encode()
            return 200, {"Content-Type": "application/json"}, body
        return 200, {"Content-Type": "text/html; charset=utf-8"}, render(emails).encode()


# HTML ------------------------------------------------------------------------------------
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Mailbox (local)</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }}
article {{ border: 1px solid #ccc; border-radius: 6px; padding: 1rem; margin: 1rem 0; }}
h2 {{ margin: 0 0 .5rem; font-size: 1.15rem; }}
table {{ border-collapse: collapse; font-size: .9rem; }}
th {{ text-align: left; padding-right: 1rem; vertical-align: top; color: #555; }}
td {{ word-break: break-all; }}
iframe {{ width: 100%; height: 24rem; border: 1px solid #ddd; margin-top: .5rem; }}
pre {{ white-space: pre-wrap; background: #f6f6f6; padding: .5rem; }}
</style>
</head>
<body>
<h1>Mailbox <small>({count} sent through SES, newest first)</small></h1>
{emails}
</body>
</html>
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _header_value(name: str, value: str) -> str:
    """A header, escaped; the links of List-Unsubscribe (and the like) clickable."""
    if not name.lower().startswith("list-"):
        return _e(value)
    parts, last = [], 0
    for match in _LINK.finditer(value):
        url = match.group(1)
        parts.append(_e(value[last : match.start()]))
        parts.append(f'&lt;<a href="{_e(url)}" target="_blank" rel="noopener">{_e(url)}</a>&gt;')
        last = match.end()
    parts.append(_e(value[last:]))
    return "".join(parts)


def _render_one(mail: Email) -> str:
    rows = [
        ("From", _e(mail.sender)),
        ("To", _e(", ".join(mail.to))),
    ]
    if mail.cc:
        rows.append(("Cc", _e(", ".join(mail.cc))))
    if mail.bcc:
        rows.append(("Bcc", _e(", ".join(mail.bcc))))
    rows.append(("Sent", _e(_iso_ms(mail.sent_at))))
    if mail.configuration_set:
        rows.append(("Configuration set", _e(mail.configuration_set)))
    rows.append(("Message id", _e(mail.id)))
    meta = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    headers = "".join(
        f"<tr><th>{_e(name)}</th><td>{_header_value(name, value)}</td></tr>"
        for name, value in mail.headers
    )
    parts = [
        f"<article><h2>{_e(mail.subject or '(no subject)')}</h2>",
        f"<table>{meta}</table>",
        f"<details><summary>Headers ({len(mail.headers)})</summary><table>{headers}</table>"
        "</details>",
    ]
    if mail.html is not None:
        # No scripts, no same-origin access; links open in a new tab (the base target).
        document = '<base target="_blank">' + mail.html
        parts.append(
            '<iframe sandbox="allow-popups allow-popups-to-escape-sandbox" '
            f'referrerpolicy="no-referrer" title="{_e(mail.subject)}" '
            f'srcdoc="{_e(document)}"></iframe>'
        )
    if mail.text is not None:
        opened = "" if mail.html is not None else " open"
        parts.append(
            f"<details{opened}><summary>Text</summary><pre>{_e(mail.text)}</pre></details>"
        )
    if mail.attachments:
        parts.append(f"<p>Attachments: {_e(', '.join(mail.attachments))}</p>")
    parts.append("</article>")
    return "\n".join(parts)


def render(emails: list[Email]) -> str:
    body = "\n".join(_render_one(mail) for mail in emails) or "<p>No email sent yet.</p>"
    return _PAGE.format(count=len(emails), emails=body)


def build(ctx: CloudContext) -> MailService:
    """Always a service: the mailbox page is there even before the first email."""
    return MailService(ctx, event_destinations(ctx), default_configuration_sets(ctx))
