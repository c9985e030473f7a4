"""A function's environment, validated once at cold start: a missing variable fails at init."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field


class FunctionSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3, max_length=255)
    stage: str = Field(pattern=r"^[a-z][a-z0-9-]{0,15}$")

    @classmethod
    def from_env(cls) -> FunctionSettings:
        return cls(table_name=os.environ.get("TABLE_NAME", ""), stage=os.environ.get("STAGE", ""))
