"""What every invocation of outbox_publisher shares, made once per cold start."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

from crm_core.clients import client

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics()
events = client("events")
BUS_NAME = os.environ["EVENT_BUS_NAME"]
