"""The `crm` command: the local cloud and the admin chores around it.

crm dev [--fresh] [--artifact]            the whole CRM on this machine
crm token --tenant T --role R             an ID token, alone on stdout
crm tenant create T [--stage S]           a tenant with one user per role
crm user add --tenant T --email E --role R [--stage S]
crm invoke FUNCTION --event FILE          one event through the running cloud's runner
crm seed [--contacts N] [--deals N] [--cases N]  demo data through the API
crm events tail|replay [--stage S]        watch the bus; re-drive a DLQ or an archive
crm webhook send --source ID --secret S --file F [--form]   a signed lead delivery
crm mail receive FILE.eml [--to A] [--spam] [--stage S]  email to case, as SES delivers it
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from infra.cfn import REPO_ROOT
from infra.ops import events_cli, mail_cli, webhook_cli
from infra.ops.identity import LOCAL_PASSWORD, ROLES, Identity, IdentityError, role_email


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir) if args.state_dir else Path(args.root) / ".crm"


def _local_identity(args: argparse.Namespace) -> tuple[Identity, Any]:
    from infra.aws import boto_client
    from infra.running import Running

    running = Running.load(_state_dir(args) / "local.json")
    cognito = boto_client("cognito-idp", running.endpoint_url)
    return Identity(cognito, running.user_pool_id, running.client_id), running


def _stage_identity(stage: str) -> Identity:
    """The user pool of a deployed stage, from its stack's outputs (real AWS credentials)."""
    import boto3

    stack = boto3.client("cloudformation").describe_stacks(StackName=f"crm-{stage}")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return Identity(boto3.client("cognito-idp"), outputs["UserPoolId"], outputs["UserPoolClientId"])


def _identity(args: argparse.Namespace) -> Identity:
    if getattr(args, "stage", None):
        return _stage_identity(args.stage)
    return _local_identity(args)[0]


# Commands ---------------------------------------------------------------------------------
def cmd_dev(args: argparse.Namespace) -> int:
    from infra.local.dev import LocalCloud, LocalConfig, banner

    config = LocalConfig(
        root=args.root,
        host=args.host,
        aws_port=args.aws_port,
        api_port=args.api_port,
        fresh=args.fresh,
        state_dir_override=_state_dir(args),
        template_override=args.template,
        artifact=args.artifact,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    cloud = LocalCloud(config)

    def stop(signum: int, _frame: Any) -> None:
        cloud.request_stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # `kill -USR1` prints every thread's stack: how to see what a stuck stop waits for.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        cloud.start()
        print(banner(cloud), flush=True)
        cloud.wait()
        print("[crm] stopping: saving state...", file=sys.stderr, flush=True)
    finally:
        cloud.stop()
    print("[crm] stopped", file=sys.stderr, flush=True)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    identity = _identity(args)
    email = args.email or role_email(args.tenant, args.role)
    print(identity.id_token(email, args.password))
    return 0


def cmd_tenant_create(args: argparse.Namespace) -> int:
    identity = _identity(args)
    users = identity.create_tenant(args.tenant, args.password)
    for user in users:
        print(f"{user.roles[0]:<10} {user.email}")
    if not args.stage:
        print(f"password: {args.password}", file=sys.stderr)
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    identity = _identity(args)
    identity.add_user(args.email, args.tenant, tuple(args.role), args.password)
    if not args.stage and args.password != LOCAL_PASSWORD:
        from infra.local.state import StateStore

        StateStore(_state_dir(args) / "state").remember_password(args.email, args.password)
    print(args.email)
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    from infra.ops.local_http import post_json
    from infra.running import Running

    running = Running.load(_state_dir(args) / "local.json")
    event = json.loads(Path(args.event).read_text()) if args.event != "-" else json.load(sys.stdin)
    result = post_json(f"{running.api_url}/_local/invoke/{args.function}", event)
    print(json.dumps(result, indent=2))
    return 0 if result.get("error") is None else 1


def cmd_seed(args: argparse.Namespace) -> int:
    from infra.ops.seed import REPS, seed

    identity, running = _local_identity(args)
    token = identity.id_token(role_email(args.tenant, "admin"))
    # Deals belong to the tenant's own sales and admin users, and to made-up reps.
    users = [identity.user_id(role_email(args.tenant, role)) for role in ("sales", "admin")]
    owners = [*(u for u in users if u), *REPS]
    # Cases go to the tenant's support and admin users.
    agents = [identity.user_id(role_email(args.tenant, role)) for role in ("support", "admin")]
    seed(
        running.api_url,
        token,
        contacts=args.contacts,
        companies=args.companies,
        deals=args.deals,
        owners=owners,
        cases=args.cases,
        agents=[a for a in agents if a],
    )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="crm", description=__doc__.split("\n")[0])
    root.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    root.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ["CRM_STATE_DIR"]) if os.environ.get("CRM_STATE_DIR") else None,
        help="where the local cloud keeps local.json and its data (default: .crm/)",
    )
    commands = root.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the whole CRM on this machine")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--aws-port", type=int, default=4566)
    dev.add_argument("--api-port", type=int, default=3000)
    dev.add_argument("--fresh", action="store_true", help="ignore the saved state")
    dev.add_argument("--template", type=Path, help="another template (tests use fixtures)")
    dev.add_argument(
        "--artifact",
        nargs="?",
        const=REPO_ROOT / ".aws-sam" / "build",
        type=Path,
        help="run the functions from `make build`'s output (default .aws-sam/build)",
    )
    dev.set_defaults(run=cmd_dev)

    token = commands.add_parser("token", help="print an ID token")
    token.add_argument("--tenant", required=True)
    token.add_argument("--role", choices=ROLES, default="admin")
    token.add_argument("--email", help="another user than the tenant's standard one")
    token.add_argument("--password", default=LOCAL_PASSWORD)
    token.add_argument("--stage", help="a deployed stage instead of the local cloud")
    token.set_defaults(run=cmd_token)

    tenant = commands.add_parser("tenant", help="tenants").add_subparsers(
        dest="action", required=True
    )
    create = tenant.add_parser("create", help="a tenant with one user per role")
    create.add_argument("tenant")
    create.add_argument("--password", default=LOCAL_PASSWORD)
    create.add_argument("--stage", help="a deployed stage instead of the local cloud")
    create.set_defaults(run=cmd_tenant_create)

    user = commands.add_parser("user", help="users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="add a user to a tenant")
    add.add_argument("--tenant", required=True)
    add.add_argument("--email", required=True)
    add.add_argument("--role", choices=ROLES, action="append", required=True)
    add.add_argument("--password", default=LOCAL_PASSWORD)
    add.add_argument("--stage", help="a deployed stage instead of the local cloud")
    add.set_defaults(run=cmd_user_add)

    invoke = commands.add_parser("invoke", help="invoke a function of the running cloud")
    invoke.add_argument("function", help="logical id or function name")
    invoke.add_argument("--event", required=True, help="a JSON file, or - for stdin")
    invoke.set_defaults(run=cmd_invoke)

    seed_cmd = commands.add_parser("seed", help="demo data through the API")
    seed_cmd.add_argument("--contacts", type=int, default=200)
    seed_cmd.add_argument("--companies", type=int, default=20)
    seed_cmd.add_argument(
        "--deals", type=int, default=300, help="deals with their history (0: none)"
    )
    seed_cmd.add_argument(
        "--cases", type=int, default=40, help="support cases in every state (0: none)"
    )
    seed_cmd.add_argument("--tenant", default="demo")
    seed_cmd.set_defaults(run=cmd_seed)

    events_cli.register(commands)
    mail_cli.register(commands)
    webhook_cli.register(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (IdentityError, FileNotFoundError, OSError) as error:
        print(f"crm: {error}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
