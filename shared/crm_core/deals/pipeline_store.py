"""Pipelines in the single table, each with every version it had.

A tenant's default pipeline exists without a call: until it is changed it is
`default_pipeline()` at version 0, written on its first change. Each change writes the
pipeline, a copy of it under `V#<at>#<version>` (the forecast reads the stages of the
moment it is asked about: re-weighting a stage re-weights the forecast from then on, never
the past), and checks the pipeline's board: a stage that still holds deals cannot go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.deals.pipeline_models import (
    Pipeline,
    PipelineBody,
    Stage,
    default_pipeline,
    stored_stages,
)
from crm_core.deals.versions import later_of, version_at
from crm_core.dynamo import Item
from crm_core.errors import ConcurrentChange, Conflict, NotFound, PreconditionFailed
from crm_core.events.envelope import Origin
from crm_core.ids import new_ulid
from crm_core.pagination import ListQuery
from crm_core.records.deal import DEFAULT_PIPELINE
from crm_core.table import Page, Table, TransactionCancelled, read_modify_write

PIPELINE_ITEM = "pipeline"
PIPELINE_VERSION_ITEM = "pipeline_version"
BOARD_ITEM = "pipeline_board"
# The board's counter of deal changes: a pipeline change checks it did not move meanwhile.
BOARD_CHANGES = "deal_changes"
_API_FIELDS = tuple(Pipeline.model_fields)


def count_attribute(stage_id: str, currency: str) -> str:
    """The board's count of a stage's deals in one currency (closed: in the base at close)."""
    return f"n|{stage_id}|{currency}"


def sum_attribute(stage_id: str, currency: str) -> str:
    return f"a|{stage_id}|{currency}"


def stage_counts(board: Mapping[str, Any] | None) -> dict[str, int]:
    """How many deals each stage holds, from the board item."""
    counts: dict[str, int] = {}
    for name, value in (board or {}).items():
        if name.startswith("n|"):
            stage = name.split("|")[1]
            counts[stage] = counts.get(stage, 0) + int(value)
    return counts


def virtual_default(tenant_id: str) -> Item:
    body = PipelineBody.model_validate(default_pipeline())
    return {
        "type": PIPELINE_ITEM,
        "id": DEFAULT_PIPELINE,
        "tenant_id": tenant_id,
        "name": body.name,
        "default": True,
        "stages": stored_stages(body.stages),
        "version": 0,
    }


def to_pipeline(item: Mapping[str, Any]) -> Pipeline:
    return Pipeline.model_validate({k: item[k] for k in _API_FIELDS if k in item})


def stage_of(pipeline: Mapping[str, Any], stage_id: str) -> dict[str, Any] | None:
    return next((s for s in pipeline["stages"] if s["id"] == stage_id), None)


class PipelineStore:
    def __init__(self, table: Table, clock: Callable[[], str] = now_iso) -> None:
        self.table = table
        self.op = table.op
        self.clock = clock

    def load(self, tenant_id: str, pipeline_id: str) -> Item:
        item = self.table.get(keys.pipeline(tenant_id, pipeline_id))
        if item is None and pipeline_id == DEFAULT_PIPELINE:
            return virtual_default(tenant_id)
        if item is None or item.get("type") != PIPELINE_ITEM:
            raise NotFound("no such pipeline")
        return item

    def get(self, tenant_id: str, pipeline_id: str) -> Pipeline:
        return to_pipeline(self.load(tenant_id, pipeline_id))

    def as_of(self, tenant_id: str, pipeline_id: str, at: str) -> Item | None:
        """The pipeline as it stood at `at`: None if it did not exist yet."""
        partition = keys.pipeline_partition(tenant_id, pipeline_id)
        found = version_at(self.table, partition, keys.VERSION_PREFIX, at)
        if found is None and pipeline_id == DEFAULT_PIPELINE:
            return virtual_default(tenant_id)
        return found

    def page(self, tenant_id: str, limit: int, cursor: str | None) -> Page:
        """The tenant's pipelines, oldest first; the default one first, stored or not."""
        listing = ListQuery("pipelines", keys.pipelines_of_tenant(tenant_id), "GSI1")
        page = self.table.query(listing, limit, cursor, newest_first=False)
        items = list(page.items)
        if cursor is None and not any(i["id"] == DEFAULT_PIPELINE for i in items):
            items.insert(0, virtual_default(tenant_id))
        return Page(items=items, next_cursor=page.next_cursor)

    def board(self, tenant_id: str, pipeline_id: str) -> Item:
        return self.table.get(keys.pipeline_board(tenant_id, pipeline_id)) or {}

    def create(self, tenant_id: str, body: PipelineBody, origin: Origin) -> Pipeline:
        at = self.clock()
        item: dict[str, Any] = {
            "type": PIPELINE_ITEM,
            "id": new_ulid(),
            "tenant_id": tenant_id,
            "name": body.name,
            "default": False,
            "stages": stored_stages(body.stages),
            "created_at": at,
            "updated_at": at,
            "created_by": origin.actor.id,
            "version": 1,
        }
        self.table.transact(self._writes(item, None, {}))
        return to_pipeline(item)

    def update(
        self,
        tenant_id: str,
        pipeline_id: str,
        changes: dict[str, Any],
        expected: int | None,
        origin: Origin,
    ) -> Pipeline:
        def attempt() -> Pipeline:
            old = self._load_for_write(tenant_id, pipeline_id, expected)
            board = self.board(tenant_id, pipeline_id)
            new = {**old, "version": old["version"] + 1, "updated_by": origin.actor.id}
            if "name" in changes:
                new["name"] = changes["name"]
            if "stages" in changes:
                stages = [Stage.model_validate(s) for s in changes["stages"]]
                new["stages"] = stored_stages(stages)
                kinds = {s["id"]: s["kind"] for s in new["stages"]}
                was = {s["id"]: s["kind"] for s in old["stages"]}
                counts = {s: n for s, n in stage_counts(board).items() if n > 0}
                changed = {s: n for s, n in counts.items() if s in kinds and kinds[s] != was.get(s)}
                if changed:
                    named = ", ".join(f"{s} ({n} deals)" for s, n in sorted(changed.items()))
                    raise Conflict(
                        f"stages holding deals cannot change kind (open, won, lost): {named}; "
                        "move their deals first",
                        stages=changed,
                    )
                held = {s: n for s, n in counts.items() if s not in kinds}
                if held:
                    named = ", ".join(f"{s} ({n} deals)" for s, n in sorted(held.items()))
                    raise Conflict(
                        f"stages still holding deals cannot be removed: {named}; "
                        "move their deals first",
                        stages=held,
                    )
            new["updated_at"] = later_of(self.clock(), old.get("updated_at"))
            new.setdefault("created_at", new["updated_at"])
            new.setdefault("created_by", origin.actor.id)
            self._transact(self._writes(new, old, board))
            return to_pipeline(new)

        return read_modify_write(attempt, "pipeline")

    def delete(
        self, tenant_id: str, pipeline_id: str, expected: int | None, origin: Origin
    ) -> None:
        if pipeline_id == DEFAULT_PIPELINE:
            raise Conflict("the default pipeline cannot be deleted")

        def attempt() -> None:
            old = self._load_for_write(tenant_id, pipeline_id, expected)
            board = self.board(tenant_id, pipeline_id)
            total = sum(stage_counts(board).values())
            if total:
                raise Conflict(
                    f"the pipeline still holds {total} deals; move or delete them first",
                    deals=total,
                )
            ops = [
                self.op.delete(
                    keys.pipeline(tenant_id, pipeline_id), "version = :v", v=old["version"]
                ),
                self._board_unchanged(tenant_id, pipeline_id, board),
            ]
            self._transact(ops)

        read_modify_write(attempt, "pipeline")

    def _load_for_write(self, tenant_id: str, pipeline_id: str, expected: int | None) -> Item:
        item = self.load(tenant_id, pipeline_id)
        if expected is not None and item["version"] != expected:
            raise PreconditionFailed(
                f"the pipeline is at version {item['version']}, not {expected}"
            )
        return item

    def _writes(
        self, new: dict[str, Any], old: Item | None, board: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        tenant_id, pipeline_id = new["tenant_id"], new["id"]
        stored = {
            **keys.without_keys(new),
            **keys.pipeline(tenant_id, pipeline_id),
            "GSI1PK": keys.pipelines_of_tenant(tenant_id),
            # The default pipeline sorts first, the others by creation.
            "GSI1SK": "0"
            if pipeline_id == DEFAULT_PIPELINE
            else f"1#{new['created_at']}#{pipeline_id}",
        }
        if old is None or old["version"] == 0:
            condition, values = "attribute_not_exists(PK)", {}
        else:
            condition, values = "version = :v", {"v": old["version"]}
        version = {
            **keys.without_keys(new),
            **keys.pipeline_version(tenant_id, pipeline_id, new["updated_at"], new["version"]),
            "type": PIPELINE_VERSION_ITEM,
        }
        ops = [
            self.op.put(stored, condition, **values),
            self.op.put(version, "attribute_not_exists(PK)"),
        ]
        if old is not None:
            ops.append(self._board_unchanged(tenant_id, pipeline_id, board))
        return ops

    def _board_unchanged(
        self, tenant_id: str, pipeline_id: str, board: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A deal moved meanwhile (into a stage being removed, say): decide again."""
        key = keys.pipeline_board(tenant_id, pipeline_id)
        if BOARD_CHANGES not in board:
            return self.op.check(key, f"attribute_not_exists({BOARD_CHANGES})")
        return self.op.check(key, f"{BOARD_CHANGES} = :c", c=board[BOARD_CHANGES])

    def _transact(self, ops: list[dict[str, Any]]) -> None:
        try:
            self.table.transact(ops)
        except TransactionCancelled:
            raise ConcurrentChange("the pipeline changed meanwhile; reload and retry") from None
