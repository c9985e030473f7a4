"""`crm tenant create` and `crm user add` with --stage work on a deployed stage's user pool.

The "deployed stage" here is a CloudFormation stack on a moto server, with the outputs
template.yaml declares; the command finds the pool from them, as it does in AWS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from infra.aws import boto_client
from infra.cfn import REPO_ROOT
from infra.local.endpoint import LocalEndpoint
from infra.ops.identity import ROLES

STACK = {
    "Parameters": {"PoolId": {"Type": "String"}, "ClientId": {"Type": "String"}},
    "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
    "Outputs": {
        "UserPoolId": {"Value": {"Ref": "PoolId"}},
        "UserPoolClientId": {"Value": {"Ref": "ClientId"}},
    },
}


def crm(endpoint: LocalEndpoint, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ENDPOINT_URL": endpoint.url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_tenant_and_user_admin_on_a_deployed_stage(endpoint: LocalEndpoint) -> None:
    cognito: Any = boto_client("cognito-idp", endpoint.url)
    pool = cognito.create_user_pool(
        PoolName="crm-dev-users",
        Schema=[{"Name": "tenant_id", "AttributeDataType": "String", "Mutable": False}],
    )["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="crm-dev-app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    for role in ROLES:
        cognito.create_group(UserPoolId=pool, GroupName=role)
    boto_client("cloudformation", endpoint.url).create_stack(
        StackName="crm-dev",
        TemplateBody=json.dumps(STACK),
        Parameters=[
            {"ParameterKey": "PoolId", "ParameterValue": pool},
            {"ParameterKey": "ClientId", "ParameterValue": client},
        ],
    )

    created = crm(
        endpoint, "tenant", "create", "acme", "--stage", "dev", "--password", "Acme-Passw0rd!"
    )
    assert created.returncode == 0, created.stderr
    added = crm(
        endpoint,
        "user",
        "add",
        "--stage",
        "dev",
        "--tenant",
        "acme",
        "--email",
        "ops@acme.example.com",
        "--role",
        "sales",
        "--role",
        "marketing",
        "--password",
        "Ops-Passw0rd!!",
    )
    assert added.returncode == 0, added.stderr

    users = cognito.list_users(UserPoolId=pool)["Users"]
    tenants = {
        a["Value"] for u in users for a in u["Attributes"] if a["Name"] == "custom:tenant_id"
    }
    assert (len(users), tenants) == (6, {"acme"})
    groups = cognito.admin_list_groups_for_user(UserPoolId=pool, Username="ops@acme.example.com")
    assert sorted(g["GroupName"] for g in groups["Groups"]) == ["marketing", "sales"]
    token = crm(
        endpoint,
        "token",
        "--stage",
        "dev",
        "--tenant",
        "acme",
        "--email",
        "ops@acme.example.com",
        "--password",
        "Ops-Passw0rd!!",
    )
    assert token.returncode == 0, token.stderr
    assert token.stdout.count(".") == 2


def test_a_bad_tenant_id_is_refused_clearly(endpoint: LocalEndpoint) -> None:
    refused = crm(endpoint, "tenant", "create", "acme corp!", "--stage", "dev")
    assert refused.returncode == 2
    assert "tenant id" in refused.stderr
