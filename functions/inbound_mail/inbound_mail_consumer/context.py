"""What every invocation of inbound_mail shares, made once per cold start."""

from __future__ import annotations

import os

from crm_core.cases import reply_address
from crm_core.cases.case_store import CaseStore
from crm_core.cases.mail_intake import MailIntake
from crm_core.clients import client
from crm_core.contacts.store import ContactStore
from crm_core.runtime import function_runtime
from crm_core.signed_tokens import TokenKey

# The reply addresses' secret: case_mailer's (the same key and label), asked of KMS on the
# first reply address read.
# Where the receipt rule's S3 action stores messages: `<prefix><SES message id>`.
INBOUND_PREFIX = os.environ.get("MAIL_INBOUND_PREFIX", "inbound/")

logger, tracer, metrics, settings, table = function_runtime()
KEY_ID = os.environ["CASE_MAIL_KEY_ID"]
reply_key = TokenKey(lambda: client("kms"), KEY_ID, reply_address.SECRET_LABEL)
intake = MailIntake(
    CaseStore(table),
    ContactStore(table),
    client("s3"),
    os.environ["MAIL_BUCKET"],
    os.environ["CASE_MAIL_DOMAIN"],
    lambda: reply_key.secret,
)
