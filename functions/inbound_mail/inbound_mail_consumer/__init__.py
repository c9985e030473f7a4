"""inbound_mail's parts: what a cold start makes (context.py) and the handler (handlers.py)."""
