"""A contact's score as its item keeps it: the `scoring` map, and the index keys it gives.

The score now is fit (points that do not decay) plus engagement (behaviour points stored at
the reference time, `decay.EPOCH`, and decayed on reading). Contacts are ranked in GSI2 by
stage and rank, a rank being the half-life the engagement is kept in and the fit: within
one rank every contact decays by the same factor, so the stored engagement orders them by
score at every moment, and a stage's list merges its few ranks (`ranking.py`).

Light on purpose: the contacts function imports it to show a contact's score.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from crm_core.scores import decay
from crm_core.scores.decay import Engagement

ATTRIBUTE = "scoring"
# Days of per-day cap counts kept per rule: an activity logged later for an older day
# counts as a day of its own.
CAP_DAYS_KEPT = 7
# A rebuild counts every activity it reads; the events of those written in its last minute
# may still be on their way, so it keeps their ids (at most MAX_REBUILT_IDS, the newest: a
# contact item must stay far below DynamoDB's 400 KB).
REBUILD_WINDOW_SECONDS = 60
MAX_REBUILT_IDS = 1000


@dataclass(frozen=True)
class ScoreState:
    """What a contact's score is made of. `half_life_days` is that of the model version
    that produced the engagement (0 while there is none)."""

    fit: int = 0
    engagement: Engagement = decay.NONE
    half_life_days: float = 0.0
    model_version: int = -1  # never scored
    seq: int = 0
    # Each behaviour rule's share of the engagement (at the reference time), and each fit
    # rule that holds with its points: the breakdown of a score.
    behaviour: Mapping[str, Engagement] = field(default_factory=dict)
    fit_rules: Mapping[str, int] = field(default_factory=dict)
    # rule id -> {"total": points earned, "days": {"YYYY-MM-DD": points}} for capped rules
    caps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The last rebuild from history: activities before `rebuilt_before` (epoch seconds) or
    # among `rebuilt_ids` are in it already, so their events must not count again.
    rebuilt_before: float = 0.0
    rebuilt_ids: tuple[str, ...] = ()
    updated_at: str | None = None

    # Reading ---------------------------------------------------------------------------
    @classmethod
    def of(cls, item: Mapping[str, Any]) -> ScoreState:
        raw = item.get(ATTRIBUTE)
        if not raw:
            return cls()
        return cls(
            fit=int(raw.get("fit", 0)),
            engagement=_engagement(raw.get("engagement")),
            half_life_days=float(raw.get("half_life_days", 0)),
            model_version=int(raw.get("model_version", -1)),
            seq=int(raw.get("seq", 0)),
            behaviour={k: _engagement(v) for k, v in (raw.get("behaviour") or {}).items()},
            fit_rules={k: int(v) for k, v in (raw.get("fit_rules") or {}).items()},
            caps={k: dict(v) for k, v in (raw.get("caps") or {}).items()},
            rebuilt_before=float(raw.get("rebuilt_before", 0)),
            rebuilt_ids=tuple(raw.get("rebuilt_ids") or ()),
            updated_at=raw.get("updated_at"),
        )

    @property
    def scored(self) -> bool:
        return self.model_version >= 0

    def engagement_at(self, now: float) -> float:
        if self.engagement.is_zero:
            return 0.0
        return decay.value_at(self.engagement, now, self.half_life_days)

    def total_at(self, now: float) -> float:
        return self.fit + self.engagement_at(now)

    def rule_points_at(self, now: float) -> dict[str, float]:
        """Each rule's points in the score now (behaviour rules decayed)."""
        points: dict[str, float] = {k: float(v) for k, v in self.fit_rules.items()}
        for rule_id, share in self.behaviour.items():
            if not share.is_zero:
                points[rule_id] = decay.value_at(share, now, self.half_life_days)
        return points

    @property
    def rank(self) -> str:
        """`<half-life>:<fit>`: the GSI2 partition of the contact within its stage."""
        return rank_of(self.half_life_days if not self.engagement.is_zero else 0, self.fit)

    def counted_already(self, activity_id: str, activity_epoch: float) -> bool:
        """Whether a rebuild from history already counted this activity."""
        return activity_epoch < self.rebuilt_before or activity_id in self.rebuilt_ids

    # Writing ---------------------------------------------------------------------------
    def next(self, **changes: Any) -> ScoreState:
        return replace(self, seq=self.seq + 1, **changes)

    def attribute(self) -> dict[str, Any]:
        """The `scoring` map to store."""
        return {
            "fit": self.fit,
            "engagement": _stored_engagement(self.engagement),
            "half_life_days": float(self.half_life_days),
            "model_version": self.model_version,
            "seq": self.seq,
            "behaviour": {k: _stored_engagement(v) for k, v in self.behaviour.items()},
            "fit_rules": dict(self.fit_rules),
            "caps": {k: dict(v) for k, v in self.caps.items()},
            "rebuilt_before": float(self.rebuilt_before),
            "rebuilt_ids": list(self.rebuilt_ids),
            "updated_at": self.updated_at,
        }


def ranks_in(registry: Mapping[str, Any]) -> set[str]:
    """The ranks named in the tenant's registry item (`keys.scoring_ranks`): one attribute
    per rank, its name the rank; "0:0", where every new contact starts, is always there."""
    return {k for k in registry if ":" in k} | {rank_of(0, 0)}


def rank_of(half_life_days: float, fit: int) -> str:
    # repr: the half-life exactly as the decay uses it.
    return f"{float(half_life_days)!r}:{int(fit)}"


def parse_rank(rank: str) -> tuple[float, int]:
    half_life, fit = rank.split(":")
    return float(half_life), int(fit)


def score_now(item: Mapping[str, Any], now: float | None = None) -> float:
    """The contact's score at `now` (default: this moment), rounded for people."""
    state = ScoreState.of(item)
    return round(state.total_at(time.time() if now is None else now), 2)


def sort_key(item: Mapping[str, Any]) -> str:
    """The contact's GSI2 sort key: its stored engagement, then its id."""
    return f"{decay.sort_key(ScoreState.of(item).engagement)}#{item['id']}"


def rank(item: Mapping[str, Any]) -> str:
    return ScoreState.of(item).rank


def _engagement(raw: Any) -> Engagement:
    if not raw:
        return decay.NONE
    return Engagement(int(raw["sign"]), float(raw["log2"]))


def _stored_engagement(engagement: Engagement) -> dict[str, Any]:
    return {"sign": engagement.sign, "log2": float(engagement.log2)}
