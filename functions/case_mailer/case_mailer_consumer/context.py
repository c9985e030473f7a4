"""What every invocation of case_mailer shares, made once per cold start."""

from __future__ import annotations

import os

from crm_core.cases import csat_tokens, reply_address
from crm_core.cases.case_mailer import CaseMailer, MailSettings
from crm_core.clients import NO_RETRY_CONFIG, client
from crm_core.events.consumer import EventConsumer
from crm_core.runtime import function_runtime
from crm_core.signed_tokens import TokenKey

# The secrets of reply addresses and satisfaction links: MACs of the stage's HMAC key under
# labels of their own, asked of KMS on the first email (not at cold start).

logger, tracer, metrics, settings, table = function_runtime()
KEY_ID = os.environ["CASE_MAIL_KEY_ID"]
reply_key = TokenKey(lambda: client("kms"), KEY_ID, reply_address.SECRET_LABEL)
csat_key = TokenKey(lambda: client("kms"), KEY_ID, csat_tokens.LABEL)
mailer = CaseMailer(
    table,
    # Never retried by botocore: a retry after a lost answer would mail the customer twice.
    client("sesv2", NO_RETRY_CONFIG),
    lambda: reply_key.secret,
    lambda: csat_key.secret,
    MailSettings(
        mail_domain=os.environ["CASE_MAIL_DOMAIN"],
        csat_base_url=os.environ["CSAT_URL"],
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    ),
)
consumer = EventConsumer("case_mailer", table, logger)
