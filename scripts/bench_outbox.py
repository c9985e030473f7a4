"""The outbox's cost and speed, on the local cloud (`crm dev` in a subprocess).

1. Added cost per write: the outbox item rides in the write's own TransactWriteItems, so
   it adds no request; it adds the write units of one more transactional item (2 WCU per
   started KB). Item sizes are counted as DynamoDB counts them (attribute names + values).
2. End-to-end latency from `POST /contacts` (request sent) to the ContactCreated event on
   the stage's bus (received by a queue subscribed to the bus): median of N. The stream is
   polled four times a second (as Lambda polls it); each request starts after a random
   pause, or the loop would lock onto the poller's phase and measure one point of it.

    python scripts/bench_outbox.py [--requests N]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.aws import boto_client  # noqa: E402
from tests.e2e.conftest import CloudProcess  # noqa: E402

BUS = "crm-local-bus"
TABLE = "crm-local"
WHOLE_EVENT = {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"}


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it: names plus values (strings as UTF-8)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "N":
        return math.ceil(len(raw.lstrip("-").replace(".", "")) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_bytes(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(_value_bytes(v) + 1 for v in raw)
    raise ValueError(kind)


def transactional_wcu(size: int) -> int:
    return 2 * math.ceil(size / 1024)


def watch(endpoint: str) -> tuple[Any, str]:
    events, sqs = boto_client("events", endpoint), boto_client("sqs", endpoint)
    url = sqs.create_queue(QueueName="bench-outbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(
        Name="bench-outbox", EventBusName=BUS, EventPattern=json.dumps({"source": ["crm.contacts"]})
    )
    events.put_targets(
        Rule="bench-outbox",
        EventBusName=BUS,
        Targets=[{"Id": "q", "Arn": arn["QueueArn"], "InputTransformer": WHOLE_EVENT}],
    )
    return sqs, url


def wait_for(sqs: Any, url: str, contact_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        found = False
        for message in reply.get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            event = json.loads(message["Body"])
            found |= event["detail"]["data"].get("contact", {}).get("id") == contact_id
        if found:
            return
    raise TimeoutError(f"no event for {contact_id}")


def outbox_sizes(endpoint: str, tenant: str, contact_id: str) -> dict[str, int]:
    ddb = boto_client("dynamodb", endpoint)
    items = ddb.query(
        TableName=TABLE,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :o)",
        ExpressionAttributeValues={
            ":pk": {"S": f"T#{tenant}#C#{contact_id}"},
            ":o": {"S": "OUTBOX#"},
        },
    )["Items"]
    return {i["detail_type"]["S"]: item_bytes(i) for i in items}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        cloud = CloudProcess(Path(state))
        cloud.start()
        try:
            endpoint = cloud.running["endpoint_url"]
            token = cloud.token("demo", "admin")
            sqs, url = watch(endpoint)
            latencies = []
            for n in range(args.requests):
                body = {
                    "email": f"bench{n}@example.com",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "title": "Engineer",
                    "tags": ["bench"],
                    "country": "GB",
                }
                time.sleep(random.uniform(0, 0.25))  # noqa: S311 - a random phase, not security
                started = time.perf_counter()
                status, _, created = cloud.call("POST", "/contacts", token, body)
                assert status == 201, created
                wait_for(sqs, url, created["id"])
                latencies.append((time.perf_counter() - started) * 1000)

            # One contact through every change, for the size of each event.
            status, _, a = cloud.call(
                "POST",
                "/contacts",
                token,
                {
                    "email": "size-a@example.com",
                    "first_name": "Ada",
                    "tags": ["vip"],
                    "title": "CTO",
                },
            )
            status, _, b = cloud.call("POST", "/contacts", token, {"email": "size-b@example.com"})
            cloud.call("PATCH", f"/contacts/{a['id']}", token, {"title": "CEO"})
            cloud.call("POST", f"/contacts/{a['id']}/merge", token, {"from_id": b["id"]})
            status, _, c = cloud.call("POST", "/contacts", token, {"email": "size-c@example.com"})
            cloud.call("DELETE", f"/contacts/{c['id']}", token)
            time.sleep(0.5)
            tenant = "demo"
            sizes = {
                **outbox_sizes(endpoint, tenant, a["id"]),
                **outbox_sizes(endpoint, tenant, c["id"]),
            }
        finally:
            cloud.stop()

    latencies.sort()
    print("Outbox: added cost per write (the event item in the write's own transaction)\n")
    print("| write | added requests | event item bytes | added WCU (transactional) |")
    print("|---|---|---|---|")
    for detail_type in ("ContactCreated", "ContactUpdated", "ContactMerged", "ContactDeleted"):
        size = sizes.get(detail_type, 0)
        print(f"| {detail_type} | 0 | {size} | {transactional_wcu(size)} |")
    print(f"\nPOST /contacts -> ContactCreated on the local bus, {len(latencies)} requests (ms)\n")
    print("| median | p90 | min | max |")
    print("|---|---|---|---|")
    p90 = latencies[int(len(latencies) * 0.9) - 1]
    low, high = latencies[0], latencies[-1]
    print(f"| {statistics.median(latencies):.0f} | {p90:.0f} | {low:.0f} | {high:.0f} |")


if __name__ == "__main__":
    main()
