"""Support cases: SLA business time, cases, conversations, queues and timers."""
