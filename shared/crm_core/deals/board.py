"""A pipeline's board: per stage, the count of its deals, their sum per currency and in the
base currency, and the first deals by close date. The totals come from the board item the
deal store keeps (one read), the deals from one Query per stage: the same calls with ten
deals as with ten thousand. Different currencies are never added unconverted."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from crm_core import keys
from crm_core.currencies import exact, format_amount
from crm_core.deals.currency_settings import CurrencyStore, Rates
from crm_core.deals.deal_store import to_deal
from crm_core.deals.pipeline_store import PipelineStore
from crm_core.fields import OUTPUT_MODEL
from crm_core.pagination import ListQuery
from crm_core.records.deal import Deal
from crm_core.table import Table

MAX_DEALS_PER_STAGE = 50
_PARALLEL_READS = 8


class BoardStage(BaseModel):
    model_config = OUTPUT_MODEL
    stage_id: str
    name: str
    kind: str
    probability: int
    forecast_category: str
    count: int
    sums: dict[str, str] = Field(description="The sum of the stage's deals per currency.")
    amount: str = Field(
        description="Their sum in the base currency: open deals at today's rates, closed "
        "ones at the rate of their closing."
    )
    weighted_amount: str
    deals: list[Deal] = Field(description="The first deals, by close date.")
    next_cursor: str | None = Field(description="For `GET /deals?stage_id=` after these.")


class Board(BaseModel):
    model_config = OUTPUT_MODEL
    pipeline_id: str
    currency: str = Field(description="The base currency.")
    stages: list[BoardStage]
    unconverted: dict[str, str] = Field(
        description="Per currency without a rate, the sum left out of the stages' amounts."
    )


def _stage_totals(
    board: Mapping[str, Any],
    stage: Mapping[str, Any],
    rates: Rates,
    unconverted: dict[str, Decimal],
) -> tuple[int, dict[str, Decimal], Decimal]:
    stage_id, count, sums, in_base = stage["id"], 0, {}, Decimal(0)
    closed = stage["kind"] != "open"
    for name, value in board.items():
        parts = name.split("|")
        if len(parts) != 3 or parts[1] != stage_id:
            continue
        kind, currency = parts[0], parts[2]
        if kind == "n":
            count += int(value)
        elif kind == "a" and Decimal(value):
            sums[currency] = Decimal(value)
        if (kind == "b" and closed) or (kind == "a" and not closed):
            rate = rates.rate(currency)
            if rate is None:
                unconverted[currency] = unconverted.get(currency, Decimal(0)) + Decimal(value)
            else:
                in_base += Decimal(value) * rate
    return count, sums, in_base


class BoardReader:
    def __init__(self, table: Table, pipelines: PipelineStore, currencies: CurrencyStore) -> None:
        self.table = table
        self.pipelines = pipelines
        self.currencies = currencies

    def board(self, tenant_id: str, pipeline_id: str, limit: int) -> Board:
        pipeline = self.pipelines.load(tenant_id, pipeline_id)
        totals = self.table.get(keys.pipeline_board(tenant_id, pipeline_id), exact=True) or {}
        rates = self.currencies.current(tenant_id)
        stages = pipeline["stages"]
        listing = ListQuery(
            "deals-of-stage", keys.deals_of_pipeline(tenant_id, pipeline_id), "GSI1"
        )

        def first(stage: Mapping[str, Any]) -> tuple[list[Deal], str | None]:
            if limit == 0:
                return [], None
            page = self.table.query(
                listing, limit, None, newest_first=False, sort_prefix=f"{stage['id']}#"
            )
            return [to_deal(i) for i in page.items], page.next_cursor

        with ThreadPoolExecutor(max_workers=_PARALLEL_READS) as pool:
            firsts = list(pool.map(first, stages))
        unconverted: dict[str, Decimal] = {}
        shown = []
        for stage, (deals, cursor) in zip(stages, firsts, strict=True):
            with exact():
                count, sums, in_base = _stage_totals(totals, stage, rates, unconverted)
                weighted = in_base * Decimal(stage["probability"]) / Decimal(100)
            shown.append(
                BoardStage(
                    stage_id=stage["id"],
                    name=stage["name"],
                    kind=stage["kind"],
                    probability=stage["probability"],
                    forecast_category=stage["forecast_category"],
                    count=count,
                    sums={c: format_amount(a, c) for c, a in sorted(sums.items())},
                    amount=format_amount(in_base, rates.base),
                    weighted_amount=format_amount(weighted, rates.base),
                    deals=deals,
                    next_cursor=cursor,
                )
            )
        return Board(
            pipeline_id=pipeline_id,
            currency=rates.base,
            stages=shown,
            unconverted={c: format_amount(a, c) for c, a in sorted(unconverted.items())},
        )
