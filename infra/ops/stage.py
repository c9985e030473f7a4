"""Which stage a `crm` command acts on: the stack's Outputs and clients for its account.

Every command takes `--stage S`. Without it (or with `--stage local`), the running local
cloud: `.crm/local.json` gives the endpoint, the API URL (Lambda's Invoke API is served
there, infra/local/lambda_api.py) and the template's Outputs as the stage resolves them. With
`--stage dev|staging|prod`, the deployed stack `crm-<stage>`: its CloudFormation Outputs,
and clients of the default boto3 session (AWS_PROFILE, AWS_REGION...). Either way the
calls are the same boto3 calls.

Also what the commands share about failing: EventsError, for what the operator must fix,
and `gone`, which tells a client's "it does not exist" from its other errors.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOT_FOUND = {
    "ResourceNotFoundException",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
}


class EventsError(Exception):
    """Something the operator must fix first (a missing stack output, a bad time...)."""


def gone(error: Exception) -> bool:
    """The error says the thing does not exist (so there is nothing to remove)."""
    code = str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
    return code in NOT_FOUND


# The stage ---------------------------------------------------------------------------------
@dataclass
class Stage:
    """Where the commands act: the stack's Outputs and clients for its account."""

    name: str
    outputs: Mapping[str, str]
    client: Callable[[str], Any]  # boto3 client for a service

    def output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            where = "the local cloud's template" if self.name == "local" else f"crm-{self.name}"
            raise EventsError(f"{where} has no output {key}: is the event backbone deployed?")
        return value


def local_stage(state_dir: Path) -> Stage:
    """The running local cloud, from the local.json that `crm dev` writes."""
    from infra.aws import boto_client
    from infra.running import Running

    running = Running.load(state_dir / "local.json")
    if not running.outputs:
        raise EventsError("the running local cloud does not list its outputs: restart `crm dev`")

    def client(service: str) -> Any:
        # Lambda's Invoke API is served by the local cloud's gateway, not by moto.
        url = running.api_url if service == "lambda" else running.endpoint_url
        return boto_client(service, url)

    return Stage("local", running.outputs, client)


def deployed_stage(stage: str) -> Stage:
    """The stack `crm-<stage>` with the default boto3 session's credentials."""
    import boto3

    session = boto3.session.Session()
    stacks = session.client("cloudformation").describe_stacks(StackName=f"crm-{stage}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks["Stacks"][0].get("Outputs", [])}

    def client(service: str) -> Any:
        return session.client(service)  # type: ignore[call-overload]

    return Stage(stage, outputs, client)


def stage_of(args: argparse.Namespace) -> Stage:
    if args.stage and args.stage != "local":
        return deployed_stage(args.stage)
    state_dir = Path(args.state_dir) if args.state_dir else Path(args.root) / ".crm"
    return local_stage(state_dir)
