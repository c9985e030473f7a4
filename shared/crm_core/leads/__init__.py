"""Lead intake: lead sources, their signed webhook deliveries, and turning leads into contacts."""
