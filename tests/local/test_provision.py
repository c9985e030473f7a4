"""The local cloud creates what template.yaml declares, and the template's references resolve."""

from __future__ import annotations

from typing import Any

import jwt

from infra.cfn import load_template, table_create_kwargs
from infra.identity import ROLES, Identity, role_email
from infra.provision import Provisioned
from infra.topology import http_apis, serverless_functions


def test_the_table_is_the_deployed_one(provisioned: Provisioned, clients: Any) -> None:
    table = clients("dynamodb").describe_table(TableName="crm-local")["Table"]
    expected = table_create_kwargs(table_name="crm-local")
    assert table["KeySchema"] == expected["KeySchema"]
    assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == sorted(
        i["IndexName"] for i in expected["GlobalSecondaryIndexes"]
    )
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    ttl = clients("dynamodb").describe_time_to_live(TableName="crm-local")
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "ttl"
    assert provisioned.physical["Table"].attributes["StreamArn"] == table["LatestStreamArn"]


def test_user_pool_groups_and_client(provisioned: Provisioned, clients: Any) -> None:
    cognito = clients("cognito-idp")
    pool_id = provisioned.physical["UserPool"].ref
    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    tenant = next(a for a in pool["SchemaAttributes"] if a["Name"] == "custom:tenant_id")
    assert tenant["Mutable"] is False
    groups = {g["GroupName"] for g in cognito.list_groups(UserPoolId=pool_id)["Groups"]}
    assert groups == set(ROLES)
    client = cognito.describe_user_pool_client(
        UserPoolId=pool_id, ClientId=provisioned.physical["UserPoolClient"].ref
    )["UserPoolClient"]
    assert "custom:tenant_id" not in client.get("WriteAttributes", [])


def test_functions_and_routes_resolve(provisioned: Provisioned) -> None:
    template = load_template()
    functions = serverless_functions(template, provisioned.resolver)
    contacts = next(f for f in functions if f.logical_id == "ContactsFunction")
    assert contacts.name == "crm-local-contacts"
    assert contacts.environment["TABLE_NAME"] == "crm-local"
    assert contacts.environment["STAGE"] == "local"
    assert contacts.environment["POWERTOOLS_SERVICE_NAME"] == "contacts"
    assert contacts.timeout_s == 10
    assert [d.name for d in contacts.layer_dirs] == ["shared"]
    (api,) = http_apis(template, provisioned.resolver, functions)
    assert api.authorizer is not None
    pool_id = provisioned.physical["UserPool"].ref
    assert api.authorizer.issuer == f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"
    assert api.authorizer.audience == (provisioned.physical["UserPoolClient"].ref,)
    assert {r.route_key for r in api.routes} >= {"POST /contacts", "GET /contacts/{contact_id}"}
    assert all(r.authorized for r in api.routes)


def test_a_tenant_gets_one_user_per_role_with_real_tokens(
    provisioned: Provisioned, clients: Any
) -> None:
    identity = Identity(
        clients("cognito-idp"),
        provisioned.physical["UserPool"].ref,
        provisioned.physical["UserPoolClient"].ref,
    )
    users = identity.create_tenant("acme")
    assert [u.roles for u in users] == [(role,) for role in ROLES]
    token = identity.id_token(role_email("acme", "sales"))
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["custom:tenant_id"] == "acme"
    assert claims["cognito:groups"] == ["sales"]
    assert claims["aud"] == identity.client_id
    assert claims["iss"].endswith(identity.user_pool_id)
    assert claims["token_use"] == "id"
