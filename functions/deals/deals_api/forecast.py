"""/forecast: the forecast by period, owner and category, now or as of a moment."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.clock import format_iso
from crm_core.deals.forecast import MAX_MONTHS, Forecast, months_between
from crm_core.errors import BadRequest, Unprocessable
from crm_core.fields import UserId, UtcDateTime
from crm_core.records.deal import DEFAULT_PIPELINE, PipelineId
from deals_api.context import app, forecasts

router = Router()

# Close dates are in the years 2000 to 2999 (records/deal.py): so is a forecast's range.
_MONTH = r"^2[0-9]{3}-(0[1-9]|1[0-2])(-[0-9]{2})?$"
_MONTH_SAYS = "A month (`2027-01`) or a day in it; by close date."


def _first_month(period: str, today: date) -> str:
    month = today.month if period == "month" else (today.month - 1) // 3 * 3 + 1
    return f"{today.year:04d}-{month:02d}"


def _check_day(name: str, text: str | None) -> None:
    if text is None or len(text) == 7:
        return
    try:
        date.fromisoformat(text)
    except ValueError:
        message = f"{text} is not a date"
        raise Unprocessable(message, errors=[{"loc": ["query", name], "msg": message}]) from None


def _add_months(month: str, count: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@router.get(
    "/forecast",
    summary="The forecast by period of close date, owner and category",
    description=(
        "Per month or quarter of close date: count, amount and weighted amount (amount times "
        "stage probability) of open deals, and the won amount, in the base currency; by "
        "owner and by forecast category. `from` and `to` are months (default: twelve months "
        "from the current one, or four quarters from the current one); at most 36 months. "
        "`as_of` answers exactly as the forecast stood at that moment: the deals, stages, "
        "probabilities and rates of then; a moment not yet past answers now (`as_of` null)."
    ),
    responses=http.returns(200, "The forecast", Forecast),
)
@http.guard(app, Action.DEAL_READ)
def get_forecast(
    caller: Principal,
    pipeline_id: Annotated[PipelineId, Query()] = DEFAULT_PIPELINE,
    period: Annotated[Literal["month", "quarter"], Query()] = "month",
    start: Annotated[
        str | None, Query(alias="from", pattern=_MONTH, description=_MONTH_SAYS)
    ] = None,
    end: Annotated[str | None, Query(alias="to", pattern=_MONTH, description=_MONTH_SAYS)] = None,
    owner_id: Annotated[UserId | None, Query()] = None,
    as_of: Annotated[UtcDateTime | None, Query(description="A past moment.")] = None,
) -> Response[str]:
    for name, text in (("from", start), ("to", end)):
        _check_day(name, text)
    first = start[:7] if start else _first_month(period, datetime.now(UTC).date())
    if period == "quarter":
        first = f"{first[:4]}-{(int(first[5:7]) - 1) // 3 * 3 + 1:02d}"
    last = end[:7] if end else _add_months(first, 11)
    if last < first:
        raise BadRequest("`to` is before `from`")
    if len(months_between(first, last)) > MAX_MONTHS:
        raise BadRequest(f"a forecast covers at most {MAX_MONTHS} months")
    moment = format_iso(as_of) if as_of is not None else None
    result = forecasts.forecast(
        caller.tenant_id, pipeline_id, period, first, last, owner_id, moment
    )
    return http.json_response(200, result)
