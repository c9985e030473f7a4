"""When a campaign's complaints are too many: the policy that pauses a send to protect the
sender's reputation, and the reason it gives. Pure arithmetic on the campaign's counters."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from crm_core.campaigns.campaign_models import COMPLAINT_RATE_LIMIT, COMPLAINT_RATE_MIN_DELIVERIES
from crm_core.campaigns.campaign_store import counts


def complaint_rate_exceeded(item: Mapping[str, Any]) -> bool:
    """More than COMPLAINT_RATE_LIMIT of the deliveries complained, once there are
    COMPLAINT_RATE_MIN_DELIVERIES of them (exact: 3 of 1,000 does not pause)."""
    c = counts(item)
    delivered, complained = c["delivered"], c["complained"]
    if delivered < COMPLAINT_RATE_MIN_DELIVERIES:
        return False
    return Fraction(complained, delivered) > Fraction(str(COMPLAINT_RATE_LIMIT))


def _percent(rate: float) -> str:
    return f"{rate * 100:.3f}".rstrip("0").rstrip(".")


def pause_reason(item: Mapping[str, Any]) -> str:
    c = counts(item)
    delivered, complained = c["delivered"], c["complained"]
    return (
        f"complaint rate {_percent(complained / delivered)}% ({complained:,} of "
        f"{delivered:,} delivered) is above {_percent(COMPLAINT_RATE_LIMIT)}%: paused to "
        "protect the sender's reputation"
    )
