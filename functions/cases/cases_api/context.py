"""What the routes share for the life of the process: settings, the table, the stores, the
resolver, and the Powertools logger, tracer and metrics."""

from __future__ import annotations

import os

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from botocore.config import Config

from cases_api.attachments import AttachmentLinks
from crm_core.campaigns.sender_namespace import NamespaceClaims
from crm_core.cases.case_store import CaseStore
from crm_core.clients import CLIENT_CONFIG, client
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
case_store = CaseStore(table)
queue_store = case_store.queues
policy_store = case_store.policies
# The stage's domain for support mail (`<tenant>.<mailbox>@<domain>`); none: no mailboxes.
mail_domain = os.environ.get("CASE_MAIL_DOMAIN") or None
namespaces = NamespaceClaims(table)
# SigV4 links (S3's older signature is refused in newer regions and for SSE-KMS objects).
attachment_links = AttachmentLinks(
    lambda: client("s3", CLIENT_CONFIG.merge(Config(signature_version="s3v4"))),
    os.environ.get("MAIL_BUCKET") or None,
)
app = APIGatewayHttpResolver(enable_validation=True)
