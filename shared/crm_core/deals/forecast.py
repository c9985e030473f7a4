"""The forecast: per month or quarter of close date, by owner and forecast category, the
count, amount and weighted amount of open deals and the won amount, in the base currency.

`summarize` is the arithmetic (pure): every figure is an exact sum, rounded once, at the end,
to the base currency's minor unit. `ForecastReader` reads what it needs: the pipeline, the
rates and the months asked about, each as it stands now or as it stood at `as_of`; a
constant number of calls whatever the number of deals (docs/decisions.md, 80).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from crm_core import keys
from crm_core.clock import now_iso
from crm_core.currencies import exact, round_amount
from crm_core.deals import bookkeeping
from crm_core.deals.currency_settings import CurrencyStore, Rates
from crm_core.deals.pipeline_models import ForecastCategory
from crm_core.deals.pipeline_store import PipelineStore
from crm_core.deals.versions import version_at
from crm_core.fields import OUTPUT_MODEL
from crm_core.table import Table

MAX_MONTHS = 36
# Reads of months as they stood run side by side: one Query each.
_PARALLEL_READS = 8
_HUNDRED = Decimal(100)


class Figures(BaseModel):
    model_config = OUTPUT_MODEL
    count: int
    amount: str
    weighted_amount: str


class OwnerForecast(BaseModel):
    model_config = OUTPUT_MODEL
    owner_id: str | None = Field(description="null: deals without an owner.")
    count: int
    amount: str
    weighted_amount: str
    won_count: int
    won_amount: str


class PeriodForecast(BaseModel):
    model_config = OUTPUT_MODEL
    period: str = Field(description="`2027-03` (month) or `2027-Q1` (quarter); `total`.")
    count: int = Field(description="Open deals, without those in the omitted category.")
    amount: str
    weighted_amount: str = Field(description="Amount times the stage's probability.")
    won_count: int
    won_amount: str = Field(description="At the rate of each deal's closing.")
    lost_count: int
    categories: dict[str, Figures]
    owners: list[OwnerForecast]


class Forecast(BaseModel):
    model_config = OUTPUT_MODEL
    pipeline_id: str
    period: str
    from_month: str
    to_month: str
    as_of: str | None = Field(description="The moment answered for; null: now.")
    currency: str = Field(description="The base currency every amount is in.")
    periods: list[PeriodForecast]
    total: PeriodForecast
    unconverted: dict[str, str] = Field(
        description="Amounts in currencies without a rate, left out of every sum above."
    )


@dataclass
class _Sums:
    count: int = 0
    amount: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    won_count: int = 0
    won: Decimal = Decimal(0)
    lost_count: int = 0
    categories: dict[str, list[Any]] = field(default_factory=dict)
    owners: dict[str | None, _Sums] = field(default_factory=dict)

    def category(self, name: str, count: int, amount: Decimal, weighted: Decimal) -> None:
        entry = self.categories.setdefault(name, [0, Decimal(0), Decimal(0)])
        entry[0] += count
        entry[1] += amount
        entry[2] += weighted


def period_of(month: str, period: str) -> str:
    if period == "month":
        return month
    return f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}"


def months_between(start: str, end: str) -> list[str]:
    """Every month from `start` to `end` (`YYYY-MM`), both included."""
    year, month = int(start[:4]), int(start[5:7])
    found = []
    while f"{year:04d}-{month:02d}" <= end:
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def summarize(
    months: Mapping[str, Mapping[str, Mapping[str, Any]]],
    stages: Iterable[Mapping[str, Any]],
    rates: Rates,
    period: str,
    wanted: list[str],
    owner_id: str | None = None,
) -> tuple[list[PeriodForecast], PeriodForecast, dict[str, str]]:
    """The forecast of the cells of each month in `wanted` (bookkeeping.Cells), under the
    pipeline's `stages` and `rates` of one moment."""
    with exact():
        return _summarize(months, stages, rates, period, wanted, owner_id)


def _summarize(
    months: Mapping[str, Mapping[str, Mapping[str, Any]]],
    stages: Iterable[Mapping[str, Any]],
    rates: Rates,
    period: str,
    wanted: list[str],
    owner_id: str | None,
) -> tuple[list[PeriodForecast], PeriodForecast, dict[str, str]]:
    by_stage = {s["id"]: s for s in stages}
    periods: dict[str, _Sums] = {period_of(m, period): _Sums() for m in wanted}
    total = _Sums()
    unconverted: dict[str, Decimal] = {}
    for month in wanted:
        sums = periods[period_of(month, period)]
        for key, cell in months.get(month, {}).items():
            owner, stage_id, currency = bookkeeping.split_cell(key)
            if owner_id is not None and owner != owner_id:
                continue
            count, amount = int(cell["n"]), Decimal(cell["a"])
            rate = rates.rate(currency)
            if rate is None:
                unconverted[currency] = unconverted.get(currency, Decimal(0)) + amount
                continue
            in_base = amount * rate
            stage = by_stage.get(stage_id)
            for target in (sums, total):
                _count(target, stage, count, in_base)
                _count(target.owners.setdefault(owner, _Sums()), stage, count, in_base)
    base = rates.base
    shown = [_shown(name, sums, base) for name, sums in periods.items()]
    return (
        shown,
        _shown("total", total, base),
        {c: str(round_amount(a, c)) for c, a in sorted(unconverted.items())},
    )


def _count(sums: _Sums, stage: Mapping[str, Any] | None, count: int, amount: Decimal) -> None:
    kind = stage["kind"] if stage else "open"
    category = stage["forecast_category"] if stage else ForecastCategory.OMITTED.value
    if kind == "won":
        sums.won_count += count
        sums.won += amount
        sums.category(category, count, amount, amount)
    elif kind == "lost":
        sums.lost_count += count
        sums.category(category, count, amount, Decimal(0))
    else:
        weighted = amount * Decimal(stage["probability"] if stage else 0) / _HUNDRED
        sums.category(category, count, amount, weighted)
        if category != ForecastCategory.OMITTED:
            sums.count += count
            sums.amount += amount
            sums.weighted += weighted


def _money(amount: Decimal, base: str) -> str:
    return f"{round_amount(amount, base):f}"


def _shown(name: str, sums: _Sums, base: str) -> PeriodForecast:
    categories = {
        c.value: Figures(
            count=sums.categories.get(c.value, [0])[0],
            amount=_money(sums.categories.get(c.value, [0, Decimal(0)])[1], base),
            weighted_amount=_money(sums.categories.get(c.value, [0, 0, Decimal(0)])[2], base),
        )
        for c in ForecastCategory
    }
    owners = [
        OwnerForecast(
            owner_id=owner,
            count=o.count,
            amount=_money(o.amount, base),
            weighted_amount=_money(o.weighted, base),
            won_count=o.won_count,
            won_amount=_money(o.won, base),
        )
        for owner, o in sorted(sums.owners.items(), key=lambda kv: kv[0] or "")
    ]
    return PeriodForecast(
        period=name,
        count=sums.count,
        amount=_money(sums.amount, base),
        weighted_amount=_money(sums.weighted, base),
        won_count=sums.won_count,
        won_amount=_money(sums.won, base),
        lost_count=sums.lost_count,
        categories=categories,
        owners=owners,
    )


class ForecastReader:
    def __init__(
        self,
        table: Table,
        pipelines: PipelineStore,
        currencies: CurrencyStore,
        clock: Callable[[], str] = now_iso,
    ) -> None:
        self.table = table
        self.pipelines = pipelines
        self.currencies = currencies
        self.clock = clock

    def forecast(
        self,
        tenant_id: str,
        pipeline_id: str,
        period: str,
        start: str,
        end: str,
        owner_id: str | None = None,
        as_of: str | None = None,
    ) -> Forecast:
        """`start` and `end` are months (`YYYY-MM`), both included."""
        wanted = months_between(start, end)
        current = self.pipelines.load(tenant_id, pipeline_id)  # a 404 for an unknown one
        if as_of is None or as_of >= self.clock():
            as_of = None
            pipeline: Mapping[str, Any] | None = current
            rates = self.currencies.current(tenant_id)
            month_keys = [keys.forecast_month(tenant_id, pipeline_id, m) for m in wanted]
            found = self.table.batch_get(month_keys, consistent=True, exact=True)
            months = {i["month"]: bookkeeping.decode_cells(i) for i in found}
        else:
            pipeline = self.pipelines.as_of(tenant_id, pipeline_id, as_of)
            rates = self.currencies.as_of(tenant_id, as_of)
            months = self._months_as_of(tenant_id, pipeline_id, wanted, as_of)
        stages = pipeline["stages"] if pipeline is not None else []
        periods, total, unconverted = summarize(months, stages, rates, period, wanted, owner_id)
        return Forecast(
            pipeline_id=pipeline_id,
            period=period,
            from_month=start,
            to_month=end,
            as_of=as_of,
            currency=rates.base,
            periods=periods,
            total=total,
            unconverted=unconverted,
        )

    def _months_as_of(
        self, tenant_id: str, pipeline_id: str, wanted: list[str], as_of: str
    ) -> dict[str, Any]:
        def one(month: str) -> tuple[str, Any]:
            partition = keys.forecast_partition(tenant_id, pipeline_id, month)
            found = version_at(self.table, partition, keys.SNAPSHOT_PREFIX, as_of, exact=True)
            return month, bookkeeping.decode_cells(found)

        with ThreadPoolExecutor(max_workers=min(_PARALLEL_READS, len(wanted))) as pool:
            return dict(pool.map(one, wanted))
