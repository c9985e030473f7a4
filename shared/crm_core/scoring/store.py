"""A tenant's scoring model in the single table: the current version and every past one.

`PUT` writes the new version (kept unchanged, `attribute_not_exists`), moves the current
pointer on the version it read, and puts ScoringModelChanged in the outbox, in one
transaction. Before any PUT a tenant scores with DEFAULT_MODEL, version 0.
"""

from __future__ import annotations

from typing import Any

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.dynamo import Item
from crm_core.errors import ConcurrentChange, NotFound, PreconditionFailed
from crm_core.events.envelope import Origin
from crm_core.events.outbox import outbox_put
from crm_core.events.scoring import ScoringModelChanged, ScoringModelChangedData
from crm_core.scoring.models import DEFAULT_MODEL, ScoringModel, ScoringModelInput
from crm_core.table import Table, TransactionCancelled, read_modify_write

MODEL_ITEM = "scoring_model"
MODEL_VERSION_ITEM = "scoring_model_version"
_BODY = tuple(ScoringModelInput.model_fields)


def default_model() -> ScoringModel:
    return ScoringModel.model_validate({**DEFAULT_MODEL, "version": 0, "is_default": True})


def to_model(item: Item) -> ScoringModel:
    values = {k: item[k] for k in (*_BODY, "version", "updated_at", "updated_by") if k in item}
    return ScoringModel.model_validate({**values, "is_default": False})


class ModelStore:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.op = table.op

    def current(self, tenant_id: str) -> ScoringModel:
        item = self.table.get(keys.scoring_model(tenant_id))
        return default_model() if item is None else to_model(item)

    def version(self, tenant_id: str, version: int) -> ScoringModel:
        if version == 0:
            return default_model()
        item = self.table.get(keys.scoring_model_version(tenant_id, version), consistent=False)
        if item is None:
            raise NotFound(f"the model has no version {version}")
        return to_model(item)

    def replace(
        self, tenant_id: str, body: ScoringModelInput, expected: int | None, origin: Origin
    ) -> ScoringModel:
        """The model's next version; `expected` is If-Match's version (0: the default)."""
        rules: dict[str, Any] = body.model_dump(mode="json")

        def attempt() -> ScoringModel:
            current = self.table.get(keys.scoring_model(tenant_id))
            previous = current["version"] if current else 0
            if expected is not None and expected != previous:
                raise PreconditionFailed(f"the model is at version {previous}, not {expected}")
            now = now_iso()
            version = previous + 1
            stored = {
                **rules,
                "tenant_id": tenant_id,
                "version": version,
                "updated_at": now,
                "updated_by": origin.actor.id,
            }
            event = ScoringModelChanged.create(
                tenant_id,
                origin,
                ScoringModelChangedData(
                    version=version,
                    previous_version=previous,
                    half_life_days=body.half_life_days,
                    mql_threshold=body.thresholds.mql,
                    sql_threshold=body.thresholds.sql,
                    behaviour_rules=len(body.behaviour),
                    fit_rules=len(body.fit),
                ),
                now,
            )
            pointer = keys.scoring_model(tenant_id)
            ops = [
                self.op.put(
                    {
                        **keys.scoring_model_version(tenant_id, version),
                        **stored,
                        "type": MODEL_VERSION_ITEM,
                    },
                    "attribute_not_exists(PK)",
                ),
                self.op.put(
                    {**pointer, **stored, "type": MODEL_ITEM},
                    "version = :v" if current else "attribute_not_exists(PK)",
                    **({"v": previous} if current else {}),
                ),
                outbox_put(self.op, pointer, event),
            ]
            try:
                self.table.transact(ops)
            except TransactionCancelled:
                raise ConcurrentChange("the model was changed meanwhile") from None
            return to_model(stored)

        return read_modify_write(attempt, "scoring model")
