"""The local endpoint's DynamoDB stream stays true through cancelled transactions: no record
of a write that was undone, and every later write still reaches the readers' iterators."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.aws import boto_client
from infra.cfn import table_create_kwargs
from infra.local.endpoint import LocalEndpoint
from tests.support.local import running_endpoint

TABLE = "crm-streams"


@pytest.fixture
def endpoint() -> Iterator[LocalEndpoint]:
    with running_endpoint() as local:
        yield local


def put(pk: str, condition: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"TableName": TABLE, "Item": {"PK": {"S": pk}, "SK": {"S": "X"}}}
    if condition:
        body["ConditionExpression"] = condition
    return {"Put": body}


def test_a_cancelled_transaction_leaves_no_record_and_the_stream_goes_on(
    endpoint: LocalEndpoint,
) -> None:
    ddb = boto_client("dynamodb", endpoint.url)
    streams = boto_client("dynamodbstreams", endpoint.url)
    ddb.create_table(**table_create_kwargs(table_name=TABLE))
    arn = ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
    )["ShardIterator"]
    ddb.put_item(TableName=TABLE, Item={"PK": {"S": "taken"}, "SK": {"S": "X"}})

    with pytest.raises(ClientError, match="TransactionCanceled"):
        ddb.transact_write_items(
            TransactItems=[put("undone"), put("taken", "attribute_not_exists(PK)")]
        )
    ddb.transact_write_items(TransactItems=[put("after-1"), put("after-2")])

    seen = []
    while True:
        page = streams.get_records(ShardIterator=iterator)
        seen += [r["dynamodb"]["Keys"]["PK"]["S"] for r in page["Records"]]
        iterator = page["NextShardIterator"]
        if not page["Records"]:
            break
    assert seen == ["taken", "after-1", "after-2"]
    assert "Item" not in ddb.get_item(
        TableName=TABLE, Key={"PK": {"S": "undone"}, "SK": {"S": "X"}}
    )
