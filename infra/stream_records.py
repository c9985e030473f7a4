"""A DynamoDB stream record in the shape Lambda delivers it, from what GetRecords answers:
for the local stream pollers and for `crm events replay --dlq`, which reads a failed batch's
records back from the stream."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from infra.topology import REGION

EVENT_VERSION = "1.1"
Record = dict[str, Any]


def lambda_record(raw: Mapping[str, Any], stream_arn: str) -> Record:
    """A record from GetRecords (as boto3 parses it) in the shape Lambda delivers it."""
    stream = raw.get("dynamodb") or {}
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        created = int(created.timestamp())
    dynamodb: Record = {}
    if created is not None:
        dynamodb["ApproximateCreationDateTime"] = created
    for key in ("Keys", "NewImage", "OldImage"):
        if key in stream:
            dynamodb[key] = {name: _json_value(v) for name, v in stream[key].items()}
    for key in ("SequenceNumber", "SizeBytes", "StreamViewType"):
        if key in stream:
            dynamodb[key] = stream[key]
    record: Record = {
        "eventID": raw.get("eventID"),
        "eventName": raw.get("eventName"),
        "eventVersion": EVENT_VERSION,
        "eventSource": "aws:dynamodb",
        "awsRegion": raw.get("awsRegion", REGION),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in raw:  # deletions by TTL
        record["userIdentity"] = raw["userIdentity"]
    return record


def _json_value(value: Any) -> Any:
    """An attribute value as JSON: binary values base64-encoded, as Lambda sends them."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, set):
        return [_json_value(v) for v in sorted(value)]
    return value
