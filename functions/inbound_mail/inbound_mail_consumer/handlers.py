"""inbound_mail: each message SES received becomes a case, or an entry of the case it
answers (crm_core/cases/mail_intake.py).

SES invokes the function asynchronously (the receipt rule's Lambda action, `Event`), after
its S3 action stored the message at `<MAIL_INBOUND_PREFIX><messageId>`. An error is
retried by Lambda twice, then the invocation waits in the on-failure DLQ (re-drive with
`crm events replay --dlq crm-<stage>-inbound-mail-dlq`): a message recorded before is
found by its Message-ID and not recorded twice. Refused, rejected and ignored messages are
logged with their reason and the object key, and stay in the bucket.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from crm_core.cases.mail_intake import IntakeResult
from crm_core.events.consumer import PoisonEvent
from inbound_mail_consumer.context import INBOUND_PREFIX, intake, logger, metrics


def receive_all(event: dict[str, Any]) -> list[dict[str, str | None]]:
    records = event.get("Records")
    if not isinstance(records, list) or not records:
        raise PoisonEvent("not an SES receipt: no Records")
    return [_receive(record) for record in records]


def _receive(record: Any) -> dict[str, str | None]:
    ses = record.get("ses") if isinstance(record, dict) else None
    mail = ses.get("mail") if isinstance(ses, dict) else None
    receipt = ses.get("receipt") if isinstance(ses, dict) else None
    message_id = mail.get("messageId") if isinstance(mail, dict) else None
    if not isinstance(message_id, str) or not message_id or not isinstance(receipt, dict):
        raise PoisonEvent("not an SES receipt: no mail.messageId or receipt")
    object_key = f"{INBOUND_PREFIX}{message_id}"
    logger.append_keys(ses_message_id=message_id)
    result: IntakeResult = intake.receive(object_key, receipt, logger.get_correlation_id())
    metrics.add_metric(name=f"InboundMail_{result.outcome}", unit=MetricUnit.Count, value=1)
    log = logger.warning if result.outcome in ("refused", "rejected") else logger.info
    log(
        f"inbound email {result.outcome}",
        extra={
            "reason": result.reason,
            "object_key": object_key,
            "tenant_id": result.tenant_id,
            "case_id": result.case_id,
        },
    )
    return {
        "outcome": result.outcome,
        "reason": result.reason,
        "case_id": result.case_id,
        "entry_id": result.entry_id,
    }
