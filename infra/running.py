"""The record of a running local cloud (`.crm/local.json`): where its endpoint, API and user
pool are. `crm dev` writes it; the commands that act on the local stage read it, without
importing the local cloud itself."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Running:
    """What `.crm/local.json` records for `crm token`, `crm tenant create`, `crm invoke`..."""

    endpoint_url: str
    api_url: str
    user_pool_id: str
    client_id: str
    tables: list[str]
    functions: dict[str, str]  # physical name -> logical id
    pid: int = field(default_factory=os.getpid)
    outputs: dict[str, str] = field(default_factory=dict)  # the template's, for stage local

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.__dict__, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> Running:
        if not path.exists():
            raise FileNotFoundError("no local cloud is running here: start it with `make dev`")
        return cls(**json.loads(path.read_text()))
