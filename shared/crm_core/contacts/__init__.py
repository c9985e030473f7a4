"""Contacts: people the tenant sells and markets to."""
