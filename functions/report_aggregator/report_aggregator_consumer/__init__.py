"""report_aggregator's parts: what a cold start makes (context.py) and the handlers
(handlers.py)."""
