"""What the routes share for the life of the process: the table, the link key, the
ratings, and the Powertools logger, tracer and metrics."""

from __future__ import annotations

import os

from crm_core.cases import csat_tokens
from crm_core.cases.satisfaction import Ratings
from crm_core.clients import client
from crm_core.runtime import function_runtime
from crm_core.signed_tokens import TokenKey

logger, tracer, metrics, settings, table = function_runtime()
# The unsubscribe links' KMS key under a label of its own: KMS is asked for the secret on
# the first link checked, not at cold start.
token_key = TokenKey(lambda: client("kms"), os.environ["CSAT_KEY_ID"], csat_tokens.LABEL)
ratings = Ratings(table)
