"""What the routes share for the life of the process: the table, the link key, the
unsubscriber, and the Powertools logger, tracer and metrics."""

from __future__ import annotations

import os

from crm_core.campaigns.unsubscribe_tokens import TokenKey
from crm_core.campaigns.unsubscribing import Unsubscriber
from crm_core.clients import client
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
# KMS is asked for the links' secret on the first link checked, not at cold start.
token_key = TokenKey(lambda: client("kms"), os.environ["UNSUBSCRIBE_KEY_ID"])
unsubscriber = Unsubscriber(table)
