"""What every invocation of deal_contacts shares, made once per cold start."""

from __future__ import annotations

from crm_core.contacts.store import ContactStore
from crm_core.events.consumer import EventConsumer
from crm_core.runtime import function_runtime

logger, tracer, metrics, settings, table = function_runtime()
contacts = ContactStore(table)
consumer = EventConsumer("deal_contacts", table, logger)
