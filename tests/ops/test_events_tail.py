"""`crm events tail`: a temporary rule and queue on the stage's bus, each event printed as it
arrives, and nothing left behind however the tail ends."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from tests.delivery.support import wait_until
from tests.ops.conftest import BUS, Backbone, Result, envelope

ROOT = Path(__file__).resolve().parents[2]
TAIL_PREFIX = "crm-local-tail-"


def tail_rules(backbone: Backbone) -> list[str]:
    rules = backbone.events.list_rules(NamePrefix=TAIL_PREFIX, EventBusName=BUS)["Rules"]
    return [rule["Name"] for rule in rules]


def tail_queues(backbone: Backbone) -> list[str]:
    return list(backbone.sqs.list_queues(QueueNamePrefix=TAIL_PREFIX).get("QueueUrls", []))


def tailing(backbone: Backbone) -> bool:
    """The tail's rule has its target: events put from now on reach it."""
    return any(
        backbone.events.list_targets_by_rule(Rule=name, EventBusName=BUS)["Targets"]
        for name in tail_rules(backbone)
    )


def test_tail_prints_the_matching_events_then_removes_its_rule_and_queue(
    backbone: Backbone,
) -> None:
    outcome: list[Result] = []
    command = threading.Thread(
        target=lambda: outcome.append(
            backbone.crm(
                "events",
                "tail",
                "--source",
                "crm.contacts",
                "--detail-type",
                "Contact Created",
                "--detail-type",
                "Contact Deleted",
                "--count",
                "2",
                "--timeout",
                "20",
            )
        )
    )
    command.start()
    wait_until(lambda: tailing(backbone), "the tail's rule and target", log=backbone.log)
    created, company, updated, deleted = (envelope(tenant="acme", n=n) for n in range(4))
    backbone.put("crm.contacts", "Contact Created", created)
    backbone.put("crm.companies", "Contact Created", company)  # another source
    backbone.put("crm.contacts", "Contact Updated", updated)  # another detail-type
    backbone.put("crm.contacts", "Contact Deleted", deleted)
    command.join(30)
    assert not command.is_alive()
    (result,) = outcome
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == 2
    printed = {}
    for line in lines:  # time source detail-type tenant event_id detail
        head, detail = line.split(" {", 1)
        moment, source, *detail_type, tenant, event_id = head.split(" ")
        assert moment.endswith("Z")
        assert (source, tenant) == ("crm.contacts", "acme")
        printed[event_id] = (" ".join(detail_type), json.loads("{" + detail))
    assert printed == {
        created["metadata"]["event_id"]: ("Contact Created", created),
        deleted["metadata"]["event_id"]: ("Contact Deleted", deleted),
    }
    assert "tailing ops-local-bus" in result.err
    assert tail_rules(backbone) == []
    assert tail_queues(backbone) == []


def test_tail_stops_at_its_timeout_and_says_so_when_count_was_not_reached(
    backbone: Backbone,
) -> None:
    result = backbone.crm("events", "tail", "--count", "1", "--timeout", "1")
    assert result.code == 1
    assert result.out == ""
    assert tail_rules(backbone) == []
    assert tail_queues(backbone) == []


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def _next(lines: queue.Queue[str], what: str, proc: subprocess.Popen[str]) -> str:
    try:
        return lines.get(timeout=20)
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"no {what} from crm events tail") from None


def test_tail_as_a_process_prints_json_and_cleans_up_on_sigterm(backbone: Backbone) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infra.cli",
            "--state-dir",
            str(backbone.state_dir),
            "events",
            "tail",
            "--json",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    for stream, lines in ((proc.stdout, out), (proc.stderr, err)):
        threading.Thread(target=_lines, args=(stream, lines), daemon=True).start()
    try:
        assert "tailing ops-local-bus" in _next(err, "banner", proc)
        assert tailing(backbone)
        quoted = envelope(name='O\'Brien "the quote"')
        backbone.put("other.app", "Ignored", envelope())  # not crm.*
        backbone.put("crm.contacts", "Contact Created", quoted)
        event: dict[str, Any] = json.loads(_next(out, "event", proc))
        assert event["source"] == "crm.contacts"
        assert event["detail-type"] == "Contact Created"
        assert event["detail"] == quoted
        assert event["account"] == "123456789012"
        assert "ingestion-time" not in event
        assert set(event) >= {"version", "id", "time", "region", "resources"}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0, "".join(err.queue)
    assert out.empty()  # the other.app event was never printed
    assert tail_rules(backbone) == []
    assert tail_queues(backbone) == []
