"""Domain events: the envelope, the catalog of event types, the outbox and consumers."""
