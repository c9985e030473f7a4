"""Segments and email campaigns (issue 8)."""
