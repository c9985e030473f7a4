"""Local state that survives `crm dev` restarts, kept under `.crm/state/`.

moto keeps everything in memory. The local cloud therefore saves the table's items and
the user pool's users to JSON files: every few seconds while DynamoDB is being written,
and on a clean stop. On start it provisions afresh from template.yaml and loads them back.
A crash (kill -9, power loss) loses at most the writes of the last snapshot interval.

Users keep their `sub` (the id the CRM stores as owner_id) across restarts. Passwords are
not readable from Cognito, so the local cloud keeps the ones it set (`users.json`); this is
a local development store, ignored by git, never used for a deployed stage.

KMS keys keep their id and key material (`kms-keys.json`): a ciphertext names its key, so
secrets sealed before a restart (lead sources') only open with the very same key. KMS never
exports a key's material, so the emulator reads and restores it in moto's own objects.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infra.topology import ACCOUNT_ID, REGION

_BATCH_WRITE_LIMIT = 25  # DynamoDB's limit per BatchWriteItem


@dataclass(frozen=True)
class SavedUser:
    email: str
    sub: str
    tenant_id: str
    roles: tuple[str, ...]
    password: str


@dataclass(frozen=True)
class SavedKey:
    key_id: str
    material: str  # base64 of moto's key material


class StateStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    # Tables -----------------------------------------------------------------------------
    def save_table(self, table_name: str, lines: Iterable[str]) -> int:
        """Replace the table's snapshot with `lines` (one item each, DynamoDB JSON as a Scan
        returns it: binary values in base64); the item count."""
        text = "".join(line + "\n" for line in lines)
        _write_atomically(self.folder / f"table-{table_name}.jsonl", text)
        return text.count("\n")

    def restore_table(self, dynamodb: Any, table_name: str) -> int:
        path = self.folder / f"table-{table_name}.jsonl"
        if not path.exists():
            return 0
        items = [
            _binary_decoded(json.loads(line))
            for line in path.read_text().splitlines()
            if line.strip()
        ]
        now = int(time.time())
        ttl_attribute = _ttl_attribute(dynamodb, table_name)
        if ttl_attribute:
            # Expired items would have been deleted by DynamoDB meanwhile.
            items = [i for i in items if not _expired(i.get(ttl_attribute), now)]
        for start in range(0, len(items), _BATCH_WRITE_LIMIT):
            pending: list[Any] = [
                {"PutRequest": {"Item": item}} for item in items[start : start + _BATCH_WRITE_LIMIT]
            ]
            while pending:
                result = dynamodb.batch_write_item(RequestItems={table_name: pending})
                pending = result.get("UnprocessedItems", {}).get(table_name, [])
        return len(items)

    # KMS keys ---------------------------------------------------------------------------
    def save_keys(self, keys: Mapping[str, SavedKey]) -> None:
        """The stage's keys, by logical id (the template's name for a key survives restarts)."""
        rows = {logical_id: asdict(key) for logical_id, key in sorted(keys.items())}
        _write_atomically(self.folder / "kms-keys.json", json.dumps(rows, indent=2) + "\n")

    def load_keys(self) -> dict[str, SavedKey]:
        path = self.folder / "kms-keys.json"
        if not path.exists():
            return {}
        return {k: SavedKey(**row) for k, row in json.loads(path.read_text()).items()}

    # Users ------------------------------------------------------------------------------
    def save_users(self, users: Iterable[SavedUser]) -> None:
        rows = [asdict(user) for user in users]
        _write_atomically(self.folder / "users.json", json.dumps(rows, indent=2) + "\n")

    def load_users(self) -> list[SavedUser]:
        path = self.folder / "users.json"
        if not path.exists():
            return []
        return [
            SavedUser(**{**row, "roles": tuple(row["roles"])})
            for row in json.loads(path.read_text())
        ]

    def remember_password(self, email: str, password: str) -> None:
        """Called by `crm user add` for a password other than the local default."""
        path = self.folder / "passwords.json"
        known = json.loads(path.read_text()) if path.exists() else {}
        known[email] = password
        _write_atomically(path, json.dumps(known, indent=2) + "\n")

    def passwords(self) -> dict[str, str]:
        path = self.folder / "passwords.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}


def current_users(
    cognito: Any, user_pool_id: str, passwords: dict[str, str], default: str
) -> list[SavedUser]:
    """The pool's users as they can be re-created: email, sub, tenant, groups, password."""
    users = []
    for page in cognito.get_paginator("list_users").paginate(UserPoolId=user_pool_id):
        for user in page["Users"]:
            attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
            groups = cognito.admin_list_groups_for_user(
                UserPoolId=user_pool_id, Username=user["Username"]
            )["Groups"]
            email = attributes.get("email", user["Username"])
            users.append(
                SavedUser(
                    email=email,
                    sub=attributes.get("sub", ""),
                    tenant_id=attributes.get("custom:tenant_id", ""),
                    roles=tuple(sorted(g["GroupName"] for g in groups)),
                    password=passwords.get(email, default),
                )
            )
    return users


def keep_sub(user_pool_id: str, email: str, sub: str) -> None:
    """Give a re-created user its old `sub`, so stored owner ids still name it.

    Cognito never lets a client choose a sub; the local endpoint runs in this process, so
    the emulator sets it on moto's user object directly.
    """
    from moto.cognitoidp.models import cognitoidp_backends

    pool = cognitoidp_backends[ACCOUNT_ID][REGION].user_pools[user_pool_id]
    for user in pool.users.values():
        if user.attribute_lookup.get("email") == email or user.username == email:
            user.id = sub
            user.update_attributes([{"Name": "sub", "Value": sub}])
            return
    raise KeyError(email)


def current_keys(key_ids: Mapping[str, str]) -> dict[str, SavedKey]:
    """The keys (logical id -> key id) with their material, read from moto in this process."""
    backend = _kms_backend()
    return {
        logical_id: SavedKey(
            key_id=key_id, material=base64.b64encode(backend.keys[key_id].key_material).decode()
        )
        for logical_id, key_id in key_ids.items()
    }


class KeyKeeper:
    """Gives a key created on start its saved id and material (the provisioner's `adopt_key`),
    so ciphertexts sealed before the restart still decrypt, with the same key ARN."""

    def __init__(self, saved: Mapping[str, SavedKey]) -> None:
        self.saved = dict(saved)

    def __call__(self, logical_id: str, key_id: str) -> str:
        saved = self.saved.get(logical_id)
        if saved is None or saved.key_id == key_id:
            return key_id
        backend = _kms_backend()
        if saved.key_id in backend.keys:
            raise ValueError(f"KMS key {saved.key_id} exists already")
        key = backend.keys.pop(key_id)
        # Only the id, the ARN and the material depend on the key's identity; a key just
        # created has no aliases, grants or tags yet (the provisioner adds them after this).
        key.id = saved.key_id
        key.arn = key.arn.rsplit("/", 1)[0] + "/" + saved.key_id
        key.key_material = base64.b64decode(saved.material)
        backend.keys[saved.key_id] = key
        return saved.key_id


def _kms_backend() -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[ACCOUNT_ID][REGION]


def _ttl_attribute(dynamodb: Any, table_name: str) -> str | None:
    described = dynamodb.describe_time_to_live(TableName=table_name)
    ttl = described.get("TimeToLiveDescription", {})
    return ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None


def _expired(attribute: dict[str, str] | None, now: int) -> bool:
    if not attribute or "N" not in attribute:
        return False
    return float(attribute["N"]) < now


def _binary_decoded(item: dict[str, Any]) -> dict[str, Any]:
    """The item with its binary values as bytes again (a snapshot keeps them in base64, and
    boto3 would encode a string a second time)."""
    return {name: _decoded(value) for name, value in item.items()}


def _decoded(value: dict[str, Any]) -> dict[str, Any]:
    kind, inner = next(iter(value.items()))
    if kind == "B":
        return {"B": base64.b64decode(inner)}
    if kind == "BS":
        return {"BS": [base64.b64decode(v) for v in inner]}
    if kind == "M":
        return {"M": {k: _decoded(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_decoded(v) for v in inner]}
    return value


def _write_atomically(path: Path, text: str) -> None:
    """Write a sibling temp file, then rename: a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
