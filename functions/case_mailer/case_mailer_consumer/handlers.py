"""case_mailer: an agent's public reply is emailed to the case's contact, and a solved case
mails its satisfaction link (crm_core/cases/case_mailer.py).

Each email is claimed in the table before SES is called (never sent twice, whatever the
redeliveries); SES's refusals of the message itself are recorded on it (`mail_status`
`failed` on the conversation entry), SES's refusals for now are retried (Lambda's two
retries, then the on-failure DLQ, whence `crm events replay --dlq` re-drives them).
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from case_mailer_consumer.context import consumer, logger, mailer, metrics
from crm_core.cases.case_mailer import MailResult
from crm_core.events.cases import CaseReplied, CaseSolved


def _counted(result: MailResult, what: str) -> dict[str, str | None]:
    metrics.add_metric(name=f"CaseMail_{result.outcome}", unit=MetricUnit.Count, value=1)
    log = logger.warning if result.outcome == "failed" else logger.info
    log(f"{what}: {result.outcome}", extra={"reason": result.reason})
    return {"outcome": result.outcome, "reason": result.reason, "ses_id": result.ses_message_id}


@consumer.on(CaseReplied)
def mail_reply(event: CaseReplied) -> dict[str, str | None]:
    """A public reply by an agent (notes and inbound emails are not mailed)."""
    entry = event.data.entry
    if entry.kind != "reply" or not entry.public:
        return {"outcome": "skipped", "reason": "not a public reply", "ses_id": None}
    result = mailer.mail_reply(event.tenant_id, event.data.case.id, entry.id)
    return _counted(result, "reply email")


@consumer.on(CaseSolved)
def mail_solved(event: CaseSolved) -> dict[str, str | None]:
    result = mailer.mail_solved(event.tenant_id, event.data.case.id, event.metadata.event_id)
    return _counted(result, "solved email")
