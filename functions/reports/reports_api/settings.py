"""/settings/reports: the time zone whose days the tenant's report periods are."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm_core import http
from crm_core.auth import Action, Principal
from crm_core.records.report import ReportSettings, ReportSettingsBody
from crm_core.reports.report_settings import ReportSettingsStore
from reports_api.context import app, table

router = Router()
store = ReportSettingsStore(table)


@router.get(
    "/settings/reports",
    summary="The report settings",
    description="Until a tenant sets them: UTC.",
    responses=http.returns(200, "The settings", ReportSettings),
)
@http.guard(app, Action.REPORT_READ)
def get_report_settings(caller: Principal) -> Response[str]:
    found = store.get(caller.tenant_id)
    return http.json_response(200, found, version=found.version)


@router.put(
    "/settings/reports",
    summary="Set the report settings",
    description=(
        "The IANA time zone whose days the report periods are. It applies to what is "
        "aggregated after the change (up to a minute later in a running aggregator)."
    ),
    responses=http.returns(200, "The settings", ReportSettings),
)
@http.guard(app, Action.REPORT_ADMIN)
def put_report_settings(caller: Principal, body: ReportSettingsBody) -> Response[str]:
    saved = store.replace(caller.tenant_id, body.timezone, http.if_match(app))
    return http.json_response(200, saved, version=saved.version)
