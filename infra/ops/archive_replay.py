"""`crm events replay --archive`: replay a window of the stage's archive onto its bus.

replay --archive: StartReplay of the stage's archive onto its bus for [from, to),
optionally only to the named rules, then DescribeReplay until the replay ends.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from infra.ops.signals import Stopped, sigterm_stops
from infra.ops.stage import EventsError, Stage

REPLAY_POLL_S = 2.0
REPLAY_DONE = ("COMPLETED", "FAILED", "CANCELLED")


def parse_time(text: str, now: datetime) -> datetime:
    """ISO 8601 (UTC when no offset is given), or `now`."""
    if text.strip().lower() == "now":
        return now
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise EventsError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_window(start: datetime, end: datetime, now: datetime) -> None:
    if start >= end:
        raise EventsError(f"--from ({start.isoformat()}) must be before --to ({end.isoformat()})")
    if end > now:
        raise EventsError(f"--to ({end.isoformat()}) is in the future: at most now")


def replay_name(stage: str, now: datetime) -> str:
    return f"crm-{stage}-{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def replay_archive(
    stage: Stage,
    start: datetime,
    end: datetime,
    rules: Sequence[str] = (),
    *,
    now: datetime | None = None,
    poll_s: float = REPLAY_POLL_S,
    out: TextIO | None = None,
) -> int:
    """Replay the archive's events of [start, end) onto the bus; 0 once COMPLETED."""
    out = out or sys.stdout
    now = now or datetime.now(UTC)
    check_window(start, end, now)
    events = stage.client("events")
    archive_name = stage.output("EventArchiveName")
    try:
        archive = events.describe_archive(ArchiveName=archive_name)
    except events.exceptions.ResourceNotFoundException:
        raise EventsError(f"no archive {archive_name}") from None
    bus_arn = str(archive["EventSourceArn"])
    bus = bus_arn.rsplit("/", 1)[-1]
    destination: dict[str, Any] = {"Arn": bus_arn}
    if rules:
        arns = []
        for rule in rules:
            try:
                arns.append(events.describe_rule(Name=rule, EventBusName=bus)["Arn"])
            except events.exceptions.ResourceNotFoundException:
                raise EventsError(f"no rule {rule} on {bus}") from None
        destination["FilterArns"] = arns
    name = replay_name(stage.name, now)
    events.start_replay(
        ReplayName=name,
        Description=f"crm events replay --archive ({len(rules) or 'all'} rule(s))",
        EventSourceArn=archive["ArchiveArn"],
        EventStartTime=start,
        EventEndTime=end,
        Destination=destination,
    )
    only = f", rules {', '.join(rules)}" if rules else ""
    out.write(
        f"replay {name}: {archive_name} [{start.isoformat()}, {end.isoformat()}) onto {bus}{only}\n"
    )
    out.flush()
    state, last_state = "", None
    try:
        with sigterm_stops():
            while True:
                described = events.describe_replay(ReplayName=name)
                state = str(described.get("State", ""))
                if state != last_state:
                    replayed = described.get("EventLastReplayedTime")
                    upto = f" (replayed up to {replayed.isoformat()})" if replayed else ""
                    out.write(f"{name}: {state}{upto}\n")
                    out.flush()
                    last_state = state
                if state in REPLAY_DONE:
                    if state != "COMPLETED" and described.get("StateReason"):
                        out.write(f"{name}: {described['StateReason']}\n")
                    break
                time.sleep(poll_s)
    except (KeyboardInterrupt, Stopped):
        out.write(
            f"{name} goes on: `aws events describe-replay --replay-name {name}` follows it, "
            f"`aws events cancel-replay --replay-name {name}` stops it\n"
        )
        return 130
    return 0 if state == "COMPLETED" else 1
