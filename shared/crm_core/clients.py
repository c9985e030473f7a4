"""AWS clients for the functions: plain botocore, created once per process.

botocore rather than boto3: `import boto3` also imports s3transfer and friends, which costs
cold-start time for nothing we use (docs/decisions.md, "A plain botocore client").
AWS_ENDPOINT_URL (the local cloud) is honoured by botocore itself.
"""

from __future__ import annotations

import os
from typing import Any

from botocore.config import Config

CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
)


# For calls that must never be repeated by botocore: a retried request whose first answer was
# lost (a read timeout) may act twice. SES's SendEmail has no idempotency token, so a repeat
# is a second email (decision 48); the caller retries throttling itself.
NO_RETRY_CONFIG = CLIENT_CONFIG.merge(Config(retries={"total_max_attempts": 1}, read_timeout=15))


def client(service: str, config: Config = CLIENT_CONFIG) -> Any:
    import botocore.session

    session = botocore.session.get_session()
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return session.create_client(service, region_name=region, config=config)
