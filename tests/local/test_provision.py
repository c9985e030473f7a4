"""The local cloud creates what template.yaml declares, and the template's references resolve."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import jwt

from infra.cfn import load_template, table_create_kwargs
from infra.local.provision import Provisioned, Provisioner
from infra.local.state import KeyKeeper, SavedKey
from infra.ops.identity import ROLES, Identity, role_email
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
    # Lead sources have no Cognito token: their webhook is open (HMAC-verified); nor have
    # the recipients of campaign emails and the customers of solved cases: the unsubscribe
    # and satisfaction routes are open (signed tokens).
    open_routes = {r.route_key for r in api.routes if not r.authorized}
    assert open_routes == {
        "POST /webhooks/leads/{source_id}",
        "GET /unsubscribe",
        "POST /unsubscribe",
        "GET /csat",
        "POST /csat",
    }


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


# KMS ---------------------------------------------------------------------------------------
def test_the_lead_secrets_key_and_its_alias(provisioned: Provisioned, clients: Any) -> None:
    kms = clients("kms")
    key = provisioned.physical["LeadSecretsKey"]
    metadata = kms.describe_key(KeyId=key.ref)["KeyMetadata"]
    assert key.ref == metadata["KeyId"]  # Ref is the key id
    assert key.attributes == {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]}
    assert metadata["Description"] == "Seals the signing secrets of crm-local lead sources"
    assert (metadata["KeyUsage"], metadata["KeySpec"]) == ("ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT")
    assert kms.get_key_rotation_status(KeyId=key.ref)["KeyRotationEnabled"] is True
    alias = provisioned.physical["LeadSecretsKeyAlias"]
    assert alias.ref == "alias/crm-local-lead-secrets"  # Ref is the alias name
    aliases = kms.list_aliases(KeyId=key.ref)["Aliases"]
    assert [a["AliasName"] for a in aliases] == ["alias/crm-local-lead-secrets"]
    assert "LeadSecretsKey" not in provisioned.skipped


def test_the_mail_bucket_is_made_and_named_in_the_functions_environments(
    provisioned: Provisioned, clients: Any
) -> None:
    bucket = provisioned.physical["MailBucket"]
    assert bucket.ref.startswith("crm-local-mail-")
    assert bucket.attributes["Arn"] == f"arn:aws:s3:::{bucket.ref}"
    clients("s3").head_bucket(Bucket=bucket.ref)
    assert "MailBucket" not in provisioned.skipped
    # No receipt rule without a rule set: SES does not receive locally (crm mail receive).
    assert provisioned.skipped["InboundMailReceiptRule"] == "condition ReceivesMail is false"


def test_functions_seal_with_the_key_their_environment_names(
    provisioned: Provisioned, clients: Any
) -> None:
    functions = {
        f.logical_id: f for f in serverless_functions(load_template(), provisioned.resolver)
    }
    arn = provisioned.physical["LeadSecretsKey"].attributes["Arn"]
    for logical_id in ("LeadSourcesFunction", "LeadWebhookFunction"):
        assert functions[logical_id].environment["LEAD_SECRETS_KEY_ID"] == arn
    kms = clients("kms")
    context = {"tenant_id": "acme", "lead_source_id": "s1"}
    sealed = kms.encrypt(KeyId=arn, Plaintext=b"whsec_x", EncryptionContext=context)
    opened = kms.decrypt(
        CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context, KeyId=arn
    )
    assert opened["Plaintext"] == b"whsec_x"
    # The alias names the same key.
    by_alias = kms.encrypt(
        KeyId="alias/crm-local-lead-secrets", Plaintext=b"x", EncryptionContext=context
    )
    assert by_alias["KeyId"] == arn


def test_key_properties_and_adoption(clients: Any) -> None:
    """KeyUsage, KeySpec, Tags and Enabled are passed on; `adopt_key` renames the key before
    its alias and tags are made, so they follow it."""
    template = {
        "Resources": {
            "SigningKey": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "Description": "signs",
                    "KeyUsage": "SIGN_VERIFY",
                    "KeySpec": "ECC_NIST_P256",
                    "Enabled": False,
                    "Tags": [{"Key": "team", "Value": "crm"}],
                    "KeyPolicy": {"Version": "2012-10-17", "Statement": []},  # not enforced
                },
            },
            "SigningKeyAlias": {
                "Type": "AWS::KMS::Alias",
                "Properties": {
                    "AliasName": "alias/test-adopted",
                    "TargetKeyId": {"Fn::GetAtt": ["SigningKey", "Arn"]},
                },
            },
        }
    }
    # A restart's keeper gives the key its saved id (infra/local/state.py).
    saved_id = str(uuid.uuid4())
    material = base64.b64encode(bytes(32)).decode()
    keeper = KeyKeeper({"SigningKey": SavedKey(key_id=saved_id, material=material)})
    provisioned = Provisioner(clients, adopt_key=keeper).provision(template, {})
    kms = clients("kms")
    key_id = provisioned.physical["SigningKey"].ref
    assert key_id == saved_id
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (metadata["KeyUsage"], metadata["KeySpec"], metadata["Enabled"]) == (
        "SIGN_VERIFY",
        "ECC_NIST_P256",
        False,
    )
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "team", "TagValue": "crm"}]
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=key_id)["Aliases"]] == [
        "alias/test-adopted"
    ]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
