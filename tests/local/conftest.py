"""A local endpoint (moto server in this process) with the stage provisioned from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infra.aws import boto_client
from infra.cfn import load_template
from infra.local.endpoint import LocalEndpoint
from infra.local.provision import Provisioned, Provisioner
from tests.support.local import running_endpoint


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    with running_endpoint() as local:
        yield local


# Where `crm dev` serves the HTTP API by default: the API's URLs resolve to it.
API_URL = "http://127.0.0.1:3000"


@pytest.fixture(scope="module")
def provisioned(endpoint: LocalEndpoint) -> Provisioned:
    clients = lambda service: boto_client(service, endpoint.url)  # noqa: E731
    return Provisioner(clients, api_url=API_URL).provision(load_template(), {"Stage": "local"})


@pytest.fixture(scope="module")
def clients(endpoint: LocalEndpoint) -> Any:
    return lambda service: boto_client(service, endpoint.url)
