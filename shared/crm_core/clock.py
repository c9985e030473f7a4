"""Timestamps as the API shows them: UTC, ISO 8601, millisecond precision, sortable as text."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    return format_iso(datetime.now(UTC))


def format_iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_iso(text: str) -> datetime:
    """An ISO 8601 time as the API writes it (`Z` or an offset), as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
