"""What deliveries share for the life of the process: the table, the intake (its secrets
box asks KMS on first use), and the Powertools logger, tracer and metrics."""

from __future__ import annotations

import os

from crm_core.clients import client
from crm_core.leads.intake import LeadIntake
from crm_core.leads.secret_box import SecretBox
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
intake = LeadIntake(table, SecretBox(lambda: client("kms"), os.environ["LEAD_SECRETS_KEY_ID"]))
