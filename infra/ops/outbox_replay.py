"""`crm events replay --outbox --from T --to T`: publish again the outbox items of a window.

The last resort after a publisher outage longer than the stream keeps its records (24 h):
`replay --dlq` can then no longer read the batches its DLQ messages name, but the events
are still in their outbox items for 7 days (`crm_core/events/outbox.py`). This finds the
outbox items whose `occurred_at` is in [from, to) and puts them on the stage's bus as
outbox_publisher does (same Source, DetailType, Detail, Time; chunks of 10 and 256 KB;
refused entries sent again). Events that had been published are published again: consumers
skip them by `metadata.event_id`.

Finding them takes a Scan of the table filtered on `type` and `occurred_at` (outbox items
have no index: one would cost every write). It is an operator's recovery, run rarely and by
hand; no request or event path of the CRM scans.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime
from typing import Any, TextIO

from crm_core.clock import format_iso
from crm_core.dynamo import from_item
from crm_core.events.forwarding import Outgoing, outgoing_from_item, publish
from crm_core.events.outbox import OUTBOX_EVENT
from infra.ops.stage import Stage

_ATTRIBUTES = ("PK", "SK", "type", "source", "detail_type", "detail", "occurred_at", "trace_header")


def outbox_events(stage: Stage, start: datetime, end: datetime) -> list[Outgoing]:
    """The outbox items of [start, end), oldest first, as PutEvents entries."""
    names = {f"#a{i}": name for i, name in enumerate(_ATTRIBUTES)}
    alias = {name: key for key, name in names.items()}
    scan = stage.client("dynamodb").get_paginator("scan")
    found: list[Outgoing] = []
    bus = stage.output("EventBusName")
    for page in scan.paginate(
        TableName=stage.output("TableName"),
        FilterExpression=(
            f"{alias['type']} = :outbox AND {alias['occurred_at']} >= :start "
            f"AND {alias['occurred_at']} < :end"
        ),
        ProjectionExpression=", ".join(names),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={
            ":outbox": {"S": OUTBOX_EVENT},
            ":start": {"S": format_iso(start)},
            ":end": {"S": format_iso(end)},
        },
    ):
        for raw in page.get("Items", []):
            item = from_item(raw)
            found.append(outgoing_from_item(item, bus, key=f"{item['PK']} {item['SK']}"))
    found.sort(key=lambda one: (one.entry["Time"], one.key))
    return found


def replay_outbox(
    stage: Stage, start: datetime, end: datetime, *, dry_run: bool, out: TextIO | None = None
) -> int:
    """Publish the window's outbox events; 0 when all were put on the bus."""
    out = out or sys.stdout
    found = outbox_events(stage, start, end)
    kinds = Counter(f"{o.entry['Source']} {o.entry['DetailType']}" for o in found)
    window = f"[{start.isoformat()}, {end.isoformat()})"
    print(f"outbox items of {window}: {len(found)}", file=out, flush=True)
    for kind, count in sorted(kinds.items()):
        print(f"  {count:>6}  {kind}", file=out)
    if dry_run:
        print("dry run: nothing published", file=out, flush=True)
        return 0
    failures = publish(stage.client("events"), found)
    for failure in failures:
        print(f"not published: {failure.outgoing.key}: {failure.code} {failure.message}", file=out)
    bus: Any = stage.output("EventBusName")
    print(
        f"published {len(found) - len(failures)} of {len(found)} onto {bus}", file=out, flush=True
    )
    return 1 if failures else 0
