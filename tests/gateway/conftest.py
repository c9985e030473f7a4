"""Fixtures: gateways on free ports, and a moto server with Cognito user pools."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.gateway.support import Gateways, LocalCognito

PASSWORD = "Local-Passw0rd!"


@pytest.fixture
def gateways() -> Iterator[Gateways]:
    started = Gateways()
    yield started
    for gateway in started.started:
        gateway.stop()


def _pool(idp: Any, name: str) -> str:
    pool_id: str = idp.create_user_pool(
        PoolName=name,
        Schema=[{"Name": "tenant_id", "AttributeDataType": "String", "Mutable": True}],
    )["UserPool"]["Id"]
    return pool_id


def _client(idp: Any, pool_id: str, name: str) -> str:
    client_id: str = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=name,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    return client_id


def _user(idp: Any, pool_id: str, username: str, tenant: str, groups: list[str]) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[
            {"Name": "email", "Value": username},
            {"Name": "custom:tenant_id", "Value": tenant},
        ],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(
        UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True
    )
    for group in groups:
        idp.create_group(UserPoolId=pool_id, GroupName=group)
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=group)


def _tokens(idp: Any, client_id: str, username: str) -> dict[str, str]:
    result: dict[str, str] = idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    return result


@pytest.fixture(scope="session")
def cognito() -> Iterator[LocalCognito]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        idp = boto3.client("cognito-idp", endpoint_url=endpoint, region_name="us-east-1")
        pool_id = _pool(idp, "crm-local-users")
        client_id = _client(idp, pool_id, "crm-local-web")
        other_client_id = _client(idp, pool_id, "another-app")
        _user(idp, pool_id, "ann@acme.example", "acme", ["admin", "sales"])
        other_pool_id = _pool(idp, "another-pool")
        other_pool_client_id = _client(idp, other_pool_id, "web")
        _user(idp, other_pool_id, "ann@acme.example", "acme", ["admin", "sales"])
        tokens = _tokens(idp, client_id, "ann@acme.example")
        yield LocalCognito(
            endpoint=endpoint,
            pool_id=pool_id,
            client_id=client_id,
            id_token=tokens["IdToken"],
            access_token=tokens["AccessToken"],
            other_client_id_token=_tokens(idp, other_client_id, "ann@acme.example")["IdToken"],
            other_pool_id_token=_tokens(idp, other_pool_client_id, "ann@acme.example")["IdToken"],
        )
    finally:
        server.stop()
