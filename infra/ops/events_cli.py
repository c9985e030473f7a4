"""`crm events`: watch a stage's bus, and deliver again what failed (docs/operations.md).

crm events tail [--source S ...] [--detail-type T ...] [--json] [--count N] [--timeout S]
crm events replay --dlq NAME [--max N] [--dry-run]
crm events replay --archive --from T --to T [--rule NAME ...]
crm events replay --outbox --from T --to T [--dry-run]

This module holds the argparse wiring and the command functions; the work is done in
- infra/ops/stage.py: which stage a command acts on (`--stage S`, the local cloud by default);
- infra/ops/events_tail.py: `tail`, following the bus;
- infra/ops/dlq_replay.py: `replay --dlq`, re-driving a dead-letter queue's messages;
- infra/ops/archive_replay.py: `replay --archive`, replaying the stage's archive onto its bus;
- infra/ops/outbox_replay.py: `replay --outbox`, publishing a window's outbox items again;
- infra/ops/signals.py: SIGTERM stops as Ctrl-C does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from infra.ops.archive_replay import check_window, parse_time, replay_archive
from infra.ops.dlq_replay import DlqReplay
from infra.ops.events_tail import tail, tail_pattern
from infra.ops.outbox_replay import replay_outbox
from infra.ops.signals import Stopped
from infra.ops.stage import EventsError, stage_of


# The commands ------------------------------------------------------------------------------
def _guarded(run: Callable[[], int]) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return run()
    except (KeyboardInterrupt, Stopped):
        return 130
    except EventsError as error:
        print(f"crm events: {error}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"crm events: {error}", file=sys.stderr)
        return 2


def cmd_tail(args: argparse.Namespace) -> int:
    def run() -> int:
        stage = stage_of(args)
        pattern = tail_pattern(args.source or [], args.detail_type or [])
        return tail(stage, pattern, as_json=args.json, count=args.count, timeout_s=args.timeout)

    return _guarded(run)


def cmd_replay(args: argparse.Namespace) -> int:
    def run() -> int:
        if args.dlq is not None:
            if args.start or args.end or args.rule:
                raise EventsError("--from, --to and --rule go with --archive, not --dlq")
            stage = stage_of(args)
            tally = DlqReplay(stage).run(args.dlq, max_messages=args.max, dry_run=args.dry_run)
            if args.dry_run:
                summary = (
                    f"{args.dlq}: would re-drive {tally.redriven}, would fail {tally.failed}, "
                    f"kept {tally.kept} (dry run: nothing sent, nothing deleted)"
                )
            else:
                summary = (
                    f"{args.dlq}: re-driven {tally.redriven}, failed {tally.failed}, "
                    f"kept {tally.kept}"
                )
            print(summary + (" (interrupted)" if tally.interrupted else ""), flush=True)
            if tally.interrupted:
                return 130
            return 1 if tally.failed else 0
        source = "--archive" if args.archive else "--outbox"
        if not (args.start and args.end):
            raise EventsError(f"{source} needs --from and --to")
        if args.max is not None:
            raise EventsError(f"--max goes with --dlq, not {source}")
        if args.archive and args.dry_run:
            raise EventsError("--dry-run goes with --dlq or --outbox, not --archive")
        if args.outbox and args.rule:
            raise EventsError("--rule goes with --archive, not --outbox")
        now = datetime.now(UTC)
        start, end = parse_time(args.start, now), parse_time(args.end, now)
        check_window(start, end, now)  # before looking for the stage
        if args.outbox:
            return replay_outbox(stage_of(args), start, end, dry_run=args.dry_run)
        return replay_archive(stage_of(args), start, end, args.rule or [], now=now)

    return _guarded(run)


def register(commands: Any) -> None:
    """`crm events ...` under the `crm` command's subparsers."""
    events = commands.add_parser("events", help="the stage's event bus: tail, replay")
    actions = events.add_subparsers(dest="action", required=True)

    tail_cmd = actions.add_parser("tail", help="print the bus's events as they arrive")
    tail_cmd.add_argument("--stage", help="a deployed stage instead of the local cloud")
    tail_cmd.add_argument(
        "--source", action="append", help="only this source (repeatable; default crm.*)"
    )
    tail_cmd.add_argument(
        "--detail-type", action="append", help="only this detail-type (repeatable)"
    )
    tail_cmd.add_argument("--json", action="store_true", help="each event as JSON, one a line")
    tail_cmd.add_argument("--count", type=int, help="stop after N events (exit 1 if fewer)")
    tail_cmd.add_argument("--timeout", type=float, help="stop after S seconds")
    tail_cmd.set_defaults(run=cmd_tail)

    replay = actions.add_parser(
        "replay", help="deliver again: a dead-letter queue's messages, or an archive's events"
    )
    source = replay.add_mutually_exclusive_group(required=True)
    source.add_argument("--dlq", metavar="NAME", help="a dead-letter queue's name, URL or ARN")
    source.add_argument("--archive", action="store_true", help="the stage's archive")
    source.add_argument(
        "--outbox",
        action="store_true",
        help="the table's outbox items (kept 7 days): publish a window again",
    )
    replay.add_argument("--stage", help="a deployed stage instead of the local cloud")
    replay.add_argument("--max", type=int, help="--dlq: at most N messages")
    replay.add_argument("--dry-run", action="store_true", help="--dlq, --outbox: say, send nothing")
    replay.add_argument(
        "--from", dest="start", metavar="TIME", help="--archive, --outbox: ISO 8601"
    )
    replay.add_argument(
        "--to", dest="end", metavar="TIME", help="--archive, --outbox: ISO 8601, or now"
    )
    replay.add_argument(
        "--rule", action="append", help="--archive: only to this rule of the bus (repeatable)"
    )
    replay.set_defaults(run=cmd_replay)
