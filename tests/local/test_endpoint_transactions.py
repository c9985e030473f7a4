"""The local endpoint's transactions: a refused one leaves every item as it was, and none
copies the table (moto's own backup did, so each transaction grew with the table)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra.cfn import table_create_kwargs
from infra.local.endpoint import quick_transactions

TABLE = "crm-transactions"


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws(), quick_transactions():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**table_create_kwargs(table_name=TABLE))
        yield client
        # Another module's mock may be active around this one: leave its backend as found.
        client.delete_table(TableName=TABLE)


def item(pk: str, sk: str = "X", **values: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}, **{k: {"S": v} for k, v in values.items()}}


def everything(ddb: Any) -> list[dict[str, Any]]:
    return sorted(ddb.scan(TableName=TABLE)["Items"], key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


def test_a_refused_transaction_restores_every_item_it_touched(ddb: Any) -> None:
    for n in range(50):
        ddb.put_item(TableName=TABLE, Item=item(f"P{n}", v="old"))
    ddb.put_item(TableName=TABLE, Item=item("P1", "Y", v="other sort key"))
    before = everything(ddb)
    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": item("P1", v="new")}},  # overwrite
                {"Put": {"TableName": TABLE, "Item": item("NEW")}},  # a new partition
                {"Put": {"TableName": TABLE, "Item": item("P2", "Z")}},  # a new sort key
                {"Delete": {"TableName": TABLE, "Key": item("P3")}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": item("P4"),
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"S": "changed"}},
                    }
                },
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": item("P5"),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert everything(ddb) == before


def test_a_transaction_copies_only_the_items_it_names(
    ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(200):
        ddb.put_item(TableName=TABLE, Item=item(f"P{n}"))
    copied: list[Any] = []
    real = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        copied.append(value)
        return real(value, memo)

    monkeypatch.setattr(copy, "deepcopy", counting)
    ddb.transact_write_items(
        TransactItems=[{"Put": {"TableName": TABLE, "Item": item(f"Q{n}")}} for n in range(3)]
    )
    from moto.dynamodb.models.table import Table as MotoTable

    assert not any(isinstance(value, MotoTable) for value in copied)


def test_the_service_folders_are_listed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import moto.backends

    from infra.local.endpoint import ServiceFolders

    expected = list(moto.backends.list_of_moto_modules())
    listings: list[str] = []
    real = os.listdir

    def counting(path: Any) -> list[str]:
        listings.append(str(path))
        return real(path)

    folders = ServiceFolders()
    folders.install()
    try:
        monkeypatch.setattr(os, "listdir", counting)
        for _ in range(3):
            assert list(moto.backends.list_of_moto_modules()) == expected
        assert listings == []
    finally:
        folders.uninstall()
    assert list(moto.backends.list_of_moto_modules()) == expected
    assert listings  # moto's own function lists the folder again


def test_each_event_template_path_is_parsed_once_and_builds_the_same_event() -> None:
    """moto builds the event a target receives from JSONPath expressions; with the cache the
    event is the same, and a second event parses nothing again."""
    import jsonpath_ng.ext
    from moto.events.utils import EventTemplateParser

    from infra.local.endpoint import JsonPathCache

    event = {
        "id": "e-1",
        "time": 1796637600,
        "detail-type": "lead.received",
        "source": "crm.leads",
        "account": "123456789012",
        "region": "us-east-1",
        "resources": [],
        "detail": {"data": {"lead_id": "L1", "n": 2}},
        "ingestion-time": 0,
    }
    uncached = EventTemplateParser.parse(None, {}, event)  # type: ignore[arg-type]
    cache = JsonPathCache()
    cache.install()
    try:
        parse: Any = getattr(jsonpath_ng.ext, "parse")  # noqa: B009
        assert EventTemplateParser.parse(None, {}, event) == uncached  # type: ignore[arg-type]
        parsed = parse.cache_info().misses
        again = {**event, "id": "e-2"}
        assert EventTemplateParser.parse(None, {}, again) == {**uncached, "id": "e-2"}  # type: ignore[arg-type]
        assert parse.cache_info().misses == parsed > 0
    finally:
        cache.uninstall()
    assert not hasattr(getattr(jsonpath_ng.ext, "parse"), "cache_info")  # noqa: B009
