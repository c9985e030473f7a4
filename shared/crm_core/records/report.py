"""What the reports API takes and answers (`GET /reports/{name}`, `/settings/reports`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from crm_core.fields import INPUT_MODEL, OUTPUT_MODEL
from crm_core.timezones import TimeZone


class ReportSettingsBody(BaseModel):
    """`PUT /settings/reports`."""

    model_config = INPUT_MODEL
    timezone: TimeZone = Field(
        description="The IANA zone whose days the report periods are (a change applies to "
        "what is aggregated after it)."
    )


class ReportSettings(BaseModel):
    model_config = OUTPUT_MODEL
    timezone: str
    version: int = Field(description="0 until the tenant sets them (UTC).")


class ActivitiesRow(BaseModel):
    model_config = OUTPUT_MODEL
    period: str = Field(description="2026-12-07, 2026-W50, 2026-12 or 2026-Q4.")
    owner_id: str = Field(description="A task's assignee, anything else's author.")
    type: str
    count: int


class ActivitiesTotals(BaseModel):
    model_config = OUTPUT_MODEL
    count: int


class ActivitiesReport(BaseModel):
    model_config = OUTPUT_MODEL
    report: Literal["activities"]
    params: dict[str, str] = Field(description="The parameters it answers: from, to, period...")
    rows: list[ActivitiesRow]
    totals: ActivitiesTotals
    as_of: str = Field(description="When it was read; changes show within seconds.")
