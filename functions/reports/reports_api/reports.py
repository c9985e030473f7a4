"""/reports/{name}: a report over a range of periods, from the aggregates only (one Query
per page of 1,000 buckets), as JSON or as CSV (`Accept: text/csv` or `format=csv`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.clock import now_iso
from crm_core.errors import BadRequest
from crm_core.fields import UserId
from crm_core.records.report import ActivitiesReport, ActivitiesRow, ActivitiesTotals
from crm_core.reports.activities_report import REPORT as ACTIVITIES
from crm_core.reports.periods import BadRange, Granularity, covered
from reports_api.context import aggregates, app
from reports_api.csv_rows import to_csv

router = Router()

ReportName = Annotated[
    Literal["activities"], Path(description="The report (more come: see the product notes).")
]
From = Annotated[date, Query(alias="from", description="The first day, in the tenant's zone.")]
To = Annotated[date, Query(description="The last day (included), in the tenant's zone.")]
Period = Annotated[
    Granularity, Query(description="The rows' periods: day, ISO week, month or quarter.")
]
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(description="csv: the rows as CSV (as `Accept: text/csv`)."),
]
Owner = Annotated[UserId | None, Query(description="Only this owner's rows.")]
ACTIVITY_COLUMNS = ("period", "owner_id", "type", "count")
CSV = "text/csv; charset=utf-8"


@router.get(
    "/reports/<name>",
    summary="A report",
    description=(
        "`activities`: activities per owner (a task's assignee, anything else's author), "
        "type and period, by the day they occurred on in the tenant's zone "
        "(`/settings/reports`). Answered from aggregates kept as activities change, with no "
        "row cap; the range spans at most five years."
    ),
    responses={
        200: {
            "description": "The report (its rows as CSV to `Accept: text/csv` or `format=csv`)",
            "content": {
                "application/json": {"model": ActivitiesReport},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
@http.guard(app, Action.REPORT_READ)
def get_report(
    caller: Principal,
    name: ReportName,
    start: From,
    to: To,
    period: Period = "month",
    owner_id: Owner = None,
    format: Format = None,
) -> Response[str]:
    try:
        periods = covered(start, to, period)
    except BadRange as bad:
        raise BadRequest(str(bad)) from None
    found = aggregates.buckets(caller.tenant_id, ACTIVITIES, period, periods[0], periods[-1])
    rows = [
        ActivitiesRow(
            period=str(item["period"]),
            owner_id=str(item["dims"]["owner_id"]),
            type=str(item["dims"]["type"]),
            count=int(item["n"]),
        )
        for item in found
        if int(item["n"]) and (owner_id is None or item["dims"]["owner_id"] == owner_id)
    ]
    params = {"from": start.isoformat(), "to": to.isoformat(), "period": period}
    if owner_id:
        params["owner_id"] = owner_id
    if format == "csv" or (format is None and _wants_csv()):
        body = to_csv(ACTIVITY_COLUMNS, (row.model_dump() for row in rows))
        filename = f"{name}-{start.isoformat()}-{to.isoformat()}-{period}.csv"
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        return Response(200, CSV, body, headers)
    report = ActivitiesReport(
        report="activities",
        params=params,
        rows=rows,
        totals=ActivitiesTotals(count=sum(row.count for row in rows)),
        as_of=now_iso(),
    )
    return http.json_response(200, report)


def _wants_csv(accept: str | None = None) -> bool:
    accept = accept if accept is not None else app.current_event.headers.get("accept") or ""
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return "text/csv" in kinds and "application/json" not in kinds
