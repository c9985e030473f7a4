"""`crm dev`: the whole CRM on this machine, from template.yaml, on a local AWS endpoint.

Start order: the endpoint (moto), the stage's resources (provision.py), saved state or the
demo tenant, one warm runner per function, then the HTTP API. `.crm/local.json` tells the
other `crm` commands where the running cloud is.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from infra.aws import LOCAL_CREDENTIALS, boto_client
from infra.cfn import REPO_ROOT, load_template
from infra.local import lambda_api
from infra.local.async_invoke import AsyncInvoker
from infra.local.context import CloudContext, Service
from infra.local.endpoint import LocalEndpoint, reserve
from infra.local.pages import pages
from infra.local.provision import Provisioned, Provisioner
from infra.local.state import KeyKeeper, StateStore, current_keys, current_users, keep_sub
from infra.ops.identity import LOCAL_PASSWORD, ROLES, Identity, role_email
from infra.running import Running
from infra.topology import (
    LOCAL_STAGE,
    FunctionSpec,
    HttpApiSpec,
    Resolver,
    TemplateError,
    http_apis,
    serverless_functions,
)

DEMO_TENANT = "demo"
SNAPSHOT_SECONDS = 5.0
# The next snapshot waits at least this many times as long as the last one took.
SNAPSHOT_SHARE = 20


@dataclass
class LocalConfig:
    root: Path = REPO_ROOT
    host: str = "127.0.0.1"
    aws_port: int = 4566
    api_port: int = 3000
    fresh: bool = False  # ignore saved state
    log: Callable[[str], None] = print
    state_dir_override: Path | None = None
    template_override: Path | None = None
    artifact: Path | None = None  # a `make build` output to run the functions from

    @property
    def template_path(self) -> Path:
        return self.template_override or self.root / "template.yaml"

    @property
    def state_dir(self) -> Path:
        """`.crm/` of the checkout: local.json (where the cloud runs) and state/ (its data)."""
        return self.state_dir_override or self.root / ".crm"


class LocalCloud:
    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self.endpoint = LocalEndpoint(config.host, config.aws_port)
        self.state = StateStore(config.state_dir / "state")
        self.provisioned: Provisioned | None = None
        self.functions: list[FunctionSpec] = []
        self.apis: list[HttpApiSpec] = []
        self.runners: Any = None
        self.gateway: Any = None
        self.identity: Identity | None = None
        self.running: Running | None = None
        self.restored: dict[str, int] = {}
        self.kms_keys: dict[str, str] = {}  # logical id -> key id
        self.services: list[Service] = []
        self.async_invoker: AsyncInvoker | None = None
        self.context: CloudContext | None = None
        self._stop = threading.Event()
        self._snapshot_thread: threading.Thread | None = None
        self._saved_writes = 0
        self._api_socket: socket.socket | None = None  # the API's port, until the gateway has it

    # Start ------------------------------------------------------------------------------
    def start(self) -> Running:
        from infra.local.gateway import HttpGateway
        from infra.local.runner import FunctionRunners

        started = time.perf_counter()
        # The API's port before anything is created (a free one for 0), kept for the gateway:
        # the functions' environments name the API's URL (UNSUBSCRIBE_URL, say).
        self._api_socket = reserve(self.config.host, self.config.api_port)
        api_url = f"http://{self.config.host}:{self._api_socket.getsockname()[1]}"
        self.endpoint.start()
        template = load_template(self.config.template_path)
        # Saved KMS keys come back with their id and material: sealed secrets still open.
        keeper = KeyKeeper({} if self.config.fresh else self.state.load_keys())
        self.provisioned = Provisioner(self.client, adopt_key=keeper, api_url=api_url).provision(
            template, {"Stage": LOCAL_STAGE}
        )
        physical = self.provisioned.physical
        self.kms_keys = {
            logical: physical[logical].ref
            for logical, res in template["Resources"].items()
            if res["Type"] == "AWS::KMS::Key" and logical in physical
        }
        skipped = [f"{k} ({why})" for k, why in self.provisioned.skipped.items()]
        if skipped:
            self.config.log(f"[crm] skipped: {'; '.join(sorted(skipped))}")
        self.functions = serverless_functions(template, self.provisioned.resolver)
        if self.config.artifact is not None:
            self.functions = self._from_artifact(self.functions, self.config.artifact)
        self.apis = http_apis(template, self.provisioned.resolver, self.functions)
        pool_id, client_id = _cognito_ids(template, physical)
        if pool_id and client_id:
            self.identity = Identity(self.client("cognito-idp"), pool_id, client_id)
        tables = [
            physical[logical].ref
            for logical, res in template["Resources"].items()
            if res["Type"] == "AWS::DynamoDB::Table" and logical in physical
        ]
        self._restore_or_seed(tables)
        self.runners = FunctionRunners(
            self.functions, self.endpoint.url, extra_env=dict(LOCAL_CREDENTIALS)
        )
        self.runners.warm()  # every function's cold start now, side by side
        self.async_invoker = AsyncInvoker(
            self.runners.invoke, self.functions, self.client, log=self.config.log
        )
        self.context = CloudContext(
            template=template,
            resolver=self.provisioned.resolver,
            functions=self.functions,
            invoke=self.runners.invoke,
            async_invoker=self.async_invoker,
            client=self.client,
            endpoint_url=self.endpoint.url,
            log=self.config.log,
            pages={
                **pages(self.config.root),
                "/_local/invoke/": self._invoke_page,
                **lambda_api.pages(self.functions, self.runners.invoke, self.async_invoker),
            },
        )
        for build in service_builders():
            service = build(self.context)
            if service is not None:
                self.services.append(service)
        api = self.apis[0] if self.apis else HttpApiSpec("NoHttpApi", (), None, None)
        bound, self._api_socket = self._api_socket, None
        self.gateway = HttpGateway(
            api,
            self.runners.invoke,
            jwks_url=f"{self.endpoint.url}/{pool_id}/.well-known/jwks.json" if pool_id else None,
            host=self.config.host,
            port=bound.getsockname()[1],
            api_id=physical[api.logical_id].ref if api.logical_id in physical else "local",
            local_pages=self.context.pages,
            log=self.config.log,
            bound_socket=bound,
        )
        self.gateway.start()
        for service in self.services:
            service.start()
        self.running = Running(
            endpoint_url=self.endpoint.url,
            api_url=self.gateway.url,
            user_pool_id=pool_id or "",
            client_id=client_id or "",
            tables=tables,
            functions={f.name: f.logical_id for f in self.functions},
            outputs=stack_outputs(template, self.provisioned.resolver),
        )
        self.running.save(self.config.state_dir / "local.json")
        self._saved_writes = self.endpoint.isolation.writes
        self._snapshot_thread = threading.Thread(target=self._snapshots, daemon=True)
        self._snapshot_thread.start()
        self.ready_seconds = time.perf_counter() - started
        return self.running

    def _from_artifact(self, specs: list[FunctionSpec], build_dir: Path) -> list[FunctionSpec]:
        """The specs, pointed at a copy of the built artifact that runs here (its arm64
        wheels swapped for this machine's), each worker without site-packages."""
        from infra.build.artifact import host_copy

        layout, swapped = host_copy(build_dir, self.config.state_dir / "artifact")
        missing = sorted({s.logical_id for s in specs} - set(layout.functions))
        if missing:
            raise RuntimeError(f"{build_dir} lacks {', '.join(missing)}: run `make build`")
        self.config.log(
            f"[crm] functions run from the artifact in {build_dir} "
            f"(swapped for this machine: {', '.join(swapped) or 'nothing'})"
        )
        return [
            replace(
                spec,
                code_dir=layout.functions[spec.logical_id],
                layer_dirs=(layout.layer,),
                isolated=True,
            )
            for spec in specs
        ]

    def _invoke_page(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        """`crm invoke`: one event through the running cloud's own warm runner."""
        name = request.path.removeprefix("/_local/invoke/")
        if request.method != "POST" or self.running is None:
            return 405, {"Content-Type": "application/json"}, b'{"message":"POST an event"}'
        logical = self.running.functions.get(name, name)
        if logical not in {f.logical_id for f in self.functions}:
            return 404, {"Content-Type": "application/json"}, b'{"message":"no such function"}'
        result = self.runners.invoke(logical, json.loads(request.body or b"{}"))
        body = {"payload": result.payload, "error": result.error, "duration_ms": result.duration_ms}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def client(self, service: str) -> Any:
        return boto_client(service, self.endpoint.url)

    def _restore_or_seed(self, tables: list[str]) -> None:
        saved_users = [] if self.config.fresh else self.state.load_users()
        if self.identity is None:
            pass  # a template without a user pool: no users to keep
        elif saved_users:
            for user in saved_users:
                self.identity.add_user(user.email, user.tenant_id, user.roles, user.password)
                if user.sub:
                    keep_sub(self.identity.user_pool_id, user.email, user.sub)
        else:
            self.identity.create_tenant(DEMO_TENANT)
        dynamodb = self.client("dynamodb")
        for table in tables:
            self.restored[table] = (
                0 if self.config.fresh else self.state.restore_table(dynamodb, table)
            )

    # Stop -------------------------------------------------------------------------------
    def snapshot(self) -> None:
        """Save the keys, tables and users now (the emulator's own Scan, not a request path)."""
        if self.running is None:
            return
        writes = self.endpoint.isolation.writes
        if self.kms_keys:
            self.state.save_keys(current_keys(self.kms_keys))
        for table in self.running.tables:
            self.state.save_table(table, self.endpoint.isolation.table_lines(table))
        if self.identity is not None:
            users = current_users(
                self.identity.cognito,
                self.identity.user_pool_id,
                self.state.passwords(),
                LOCAL_PASSWORD,
            )
            self.state.save_users(users)
        self._saved_writes = writes

    def _snapshots(self) -> None:
        interval = SNAPSHOT_SECONDS
        while not self._stop.wait(interval):
            if self.endpoint.isolation.writes != self._saved_writes:
                started = time.perf_counter()
                try:
                    self.snapshot()
                except Exception as error:
                    self.config.log(f"[crm] snapshot failed: {error}")
                # A snapshot holds the DynamoDB lock while it reads the table: a large
                # table is saved less often, so the functions keep most of the lock's time.
                took = time.perf_counter() - started
                interval = max(SNAPSHOT_SECONDS, SNAPSHOT_SHARE * took)

    def stop(self) -> None:
        self._stop.set()
        for service in reversed(self.services):
            service.stop()
        if self.async_invoker is not None:
            self.async_invoker.stop()
        if self.gateway is not None:
            self.gateway.stop()
        if self._api_socket is not None:  # a start that failed before the gateway
            self._api_socket.close()
            self._api_socket = None
        if self.running is not None:
            self.snapshot()
        if self.runners is not None:
            self.runners.close()
        self.endpoint.stop()
        (self.config.state_dir / "local.json").unlink(missing_ok=True)

    def wait(self) -> None:
        """Until a stop is asked for (Ctrl-C, SIGTERM). In short waits: a signal may be
        delivered to any of our threads, and Python runs its handler only when the main
        thread next runs bytecode; blocked in one endless wait, it never would (a SIGTERM
        then went unanswered until the sender killed the process)."""
        while not self._stop.wait(timeout=0.2):
            pass

    def request_stop(self) -> None:
        self._stop.set()


def _cognito_ids(
    template: dict[str, Any], physical: dict[str, Any]
) -> tuple[str | None, str | None]:
    """The user pool and app client, if the template has them (one of each at most)."""
    resources = template["Resources"]
    pools = [k for k, r in resources.items() if r["Type"] == "AWS::Cognito::UserPool"]
    clients = [k for k, r in resources.items() if r["Type"] == "AWS::Cognito::UserPoolClient"]
    if len(pools) > 1 or len(clients) > 1:
        raise ValueError("the local cloud supports one Cognito user pool and one app client")
    pool = physical[pools[0]].ref if pools and pools[0] in physical else None
    client = physical[clients[0]].ref if clients and clients[0] in physical else None
    return pool, client


def stack_outputs(template: dict[str, Any], resolver: Resolver) -> dict[str, str]:
    """The template's Outputs as the stack would have them (those it cannot resolve left out)."""
    outputs: dict[str, str] = {}
    for key, output in (template.get("Outputs") or {}).items():
        condition = output.get("Condition")
        try:
            if condition and not resolver.condition(condition):
                continue
            value = resolver.resolve(output.get("Value"))
        except TemplateError:
            continue
        outputs[key] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return outputs


def service_builders() -> list[Callable[[CloudContext], Service | None]]:
    """The parts that run beside the API, each built from the template (None: not used).

    EventBridge first: its catch-all rules for /_local/events then see what the others put.
    """
    from infra.local import eventbridge, mail, schedules, sqs_sources, streams

    return [eventbridge.build, sqs_sources.build, streams.build, schedules.build, mail.build]


def banner(cloud: LocalCloud) -> str:
    running = cloud.running
    assert running is not None
    lines = [
        "",
        f"CRM local cloud is ready ({cloud.ready_seconds:.1f} s; stage `local` of template.yaml)",
        "",
        f"  API            {running.api_url}",
        f"  OpenAPI        {running.api_url}/openapi.json",
        f"  Swagger UI     {running.api_url}/docs",
        f"  Mailbox        {running.api_url}/_local/mailbox",
        f"  Events         {running.api_url}/_local/events",
        f"  AWS endpoint   {running.endpoint_url}",
        f"  Functions      {', '.join(sorted(running.functions))}",
        f"  Tables         {', '.join(running.tables)}"
        + (
            f"   (restored {sum(cloud.restored.values())} items)"
            if any(cloud.restored.values())
            else ""
        ),
        "",
        f"  Demo tenant `{DEMO_TENANT}`: one user per role, password {LOCAL_PASSWORD}",
    ]
    lines += [f"    {role:<10} {role_email(DEMO_TENANT, role)}" for role in ROLES]
    lines += [
        "",
        "  A token:       TOKEN=$(.venv/bin/crm token --tenant demo --role sales)",
        f'  Call the API:  curl -H "Authorization: Bearer $TOKEN" {running.api_url}/contacts',
        "",
        "  Ctrl-C stops; data is kept in .crm/state/ (start afresh with `crm dev --fresh`).",
        "",
    ]
    return "\n".join(lines)
