"""Data survives a restart of the local cloud: tables and users are saved and loaded back."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from infra.aws import boto_client
from infra.cfn import load_template
from infra.local.endpoint import LocalEndpoint
from infra.local.provision import Provisioned, Provisioner
from infra.local.state import KeyKeeper, StateStore, current_keys, current_users, keep_sub
from infra.ops.identity import LOCAL_PASSWORD, Identity, role_email
from tests.support.local import running_endpoint


@pytest.fixture
def endpoint() -> Iterator[LocalEndpoint]:
    with running_endpoint() as local:
        yield local


def restart(endpoint: LocalEndpoint) -> tuple[Any, Identity]:
    """What a new `crm dev` process starts from: nothing, then the template."""
    provisioned = _reprovision(endpoint, None)
    clients = lambda service: boto_client(service, endpoint.url)  # noqa: E731
    identity = Identity(
        clients("cognito-idp"),
        provisioned.physical["UserPool"].ref,
        provisioned.physical["UserPoolClient"].ref,
    )
    return clients("dynamodb"), identity


def _reprovision(endpoint: LocalEndpoint, keeper: KeyKeeper | None) -> Provisioned:
    request = urllib.request.Request(f"{endpoint.url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request).close()
    clients = lambda service: boto_client(service, endpoint.url)  # noqa: E731
    return Provisioner(clients, adopt_key=keeper).provision(load_template(), {"Stage": "local"})


def test_items_and_users_survive_a_restart(endpoint: LocalEndpoint, tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    dynamodb, identity = restart(endpoint)
    identity.create_tenant("acme")
    identity.add_user("ops@acme.example.com", "acme", ("admin", "sales"), "Other-Passw0rd!")
    store.remember_password("ops@acme.example.com", "Other-Passw0rd!")
    items = [
        {"PK": {"S": f"T#acme#C#{i:03d}"}, "SK": {"S": "PROFILE"}, "n": {"N": str(i)}}
        for i in range(60)  # more than one BatchWriteItem of 25
    ]
    expired = {"PK": {"S": "T#acme#IDEMPOTENCY"}, "SK": {"S": "k"}, "ttl": {"N": "1"}}
    alive = {
        "PK": {"S": "T#acme#IDEMPOTENCY"},
        "SK": {"S": "k2"},
        "ttl": {"N": str(int(time.time()) + 60)},
    }
    kinds = {  # every kind of value, binary ones nested too
        "PK": {"S": "T#acme#KINDS"},
        "SK": {"S": "x"},
        "b": {"B": b"\x00\xff"},
        "bs": {"BS": [b"a", b"b"]},
        "m": {"M": {"b": {"B": b"z"}, "l": {"L": [{"B": b"y"}, {"S": "s"}, {"N": "1.5"}]}}},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "bool": {"BOOL": True},
        "null": {"NULL": True},
    }
    for item in [*items, expired, alive, kinds]:
        dynamodb.put_item(TableName="crm-local", Item=item)
    users = current_users(
        identity.cognito, identity.user_pool_id, store.passwords(), LOCAL_PASSWORD
    )
    assert store.save_table("crm-local", endpoint.isolation.table_lines("crm-local")) == 63
    store.save_users(users)

    dynamodb, identity = restart(endpoint)
    assert dynamodb.scan(TableName="crm-local")["Count"] == 0
    assert store.restore_table(dynamodb, "crm-local") == 62  # the expired record is gone
    for user in store.load_users():
        identity.add_user(user.email, user.tenant_id, user.roles, user.password)
        keep_sub(identity.user_pool_id, user.email, user.sub)

    restored = dynamodb.scan(TableName="crm-local")["Items"]
    by_key = lambda i: i["PK"]["S"] + i["SK"]["S"]  # noqa: E731
    assert sorted(restored, key=by_key) == sorted([*items, alive, kinds], key=by_key)
    before = {u.email: u for u in users}
    for email, user in before.items():
        claims = jwt.decode(
            identity.id_token(email, user.password), options={"verify_signature": False}
        )
        assert claims["sub"] == user.sub  # stored owner ids still name the same person
        assert claims["custom:tenant_id"] == "acme"
        assert sorted(claims["cognito:groups"]) == sorted(user.roles)
    assert role_email("acme", "viewer") in before


def test_a_snapshot_is_replaced_whole(tmp_path: Path) -> None:
    """A crash while saving leaves the previous snapshot, never half of a new one."""
    store = StateStore(tmp_path)

    def failing_read() -> Iterator[str]:
        yield '{"PK": {"S": "a"}, "SK": {"S": "b"}}'
        raise RuntimeError("crash")

    (tmp_path / "table-crm-local.jsonl").write_text('{"PK": {"S": "x"}, "SK": {"S": "y"}}\n')
    with pytest.raises(RuntimeError):
        store.save_table("crm-local", failing_read())
    assert (tmp_path / "table-crm-local.jsonl").read_text().count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["table-crm-local.jsonl"]


def test_secrets_sealed_before_a_restart_still_open(
    endpoint: LocalEndpoint, tmp_path: Path
) -> None:
    """The lead secrets key comes back with its id, ARN and material."""
    store = StateStore(tmp_path)
    kms = boto_client("kms", endpoint.url)
    before = _reprovision(endpoint, None).physical["LeadSecretsKey"]
    context = {"tenant_id": "acme", "lead_source_id": "01J0000000000000000000000"}
    sealed = kms.encrypt(
        KeyId=before.attributes["Arn"], Plaintext=b"whsec_s", EncryptionContext=context
    )
    store.save_keys(current_keys({"LeadSecretsKey": before.ref}))

    # Without the saved key, a restart makes another key: the ciphertext no longer opens.
    other = _reprovision(endpoint, KeyKeeper({})).physical["LeadSecretsKey"]
    assert other.ref != before.ref
    with pytest.raises(kms.exceptions.ClientError):
        kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context)

    after = _reprovision(endpoint, KeyKeeper(store.load_keys())).physical["LeadSecretsKey"]
    assert after == before  # the same Ref and Arn, so the functions' environment is unchanged
    opened = kms.decrypt(
        CiphertextBlob=sealed["CiphertextBlob"],
        EncryptionContext=context,
        KeyId=after.attributes["Arn"],
    )
    assert opened["Plaintext"] == b"whsec_s"
    # Its alias follows it, and new secrets seal and open with it as before.
    assert (
        kms.describe_key(KeyId="alias/crm-local-lead-secrets")["KeyMetadata"]["KeyId"] == before.ref
    )
    again = kms.encrypt(KeyId=after.ref, Plaintext=b"whsec_t", EncryptionContext=context)
    assert (
        kms.decrypt(CiphertextBlob=again["CiphertextBlob"], EncryptionContext=context)["Plaintext"]
        == b"whsec_t"
    )
