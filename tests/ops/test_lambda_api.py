"""Lambda's Invoke API on the local cloud's API port: the boto3 `lambda` client works unchanged
(infra/local/lambda_api.py), as `crm events replay --dlq` uses it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.ops.local_http import request
from tests.delivery.support import QueueReader
from tests.ops.conftest import (
    CONSUMER_DLQ,
    PICKY,
    RECORDER,
    Backbone,
    envelope,
    function_arn,
)


def an_event(**data: Any) -> dict[str, Any]:
    return {"source": "crm.contacts", "detail-type": "Contact Created", "detail": envelope(**data)}


def test_request_response_answers_the_functions_payload(backbone: Backbone) -> None:
    event = an_event()
    answer = backbone.lambda_.invoke(FunctionName=RECORDER, Payload=json.dumps(event))
    assert answer["StatusCode"] == 200
    assert answer["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"ok": True}
    (recorded,) = backbone.received(event["detail"]["metadata"]["event_id"], RECORDER)
    assert recorded["event"] == event


def test_a_function_error_is_a_200_with_the_error_and_unhandled(backbone: Backbone) -> None:
    answer = backbone.lambda_.invoke(
        FunctionName=PICKY, Payload=json.dumps(an_event(poison="sync"))
    )
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "poisoned by sync"


def test_event_is_accepted_at_once_then_retried_and_sent_to_the_destination(
    backbone: Backbone,
) -> None:
    fine, poisoned = an_event(), an_event(poison="async")
    answer = backbone.lambda_.invoke(
        FunctionName=RECORDER, InvocationType="Event", Payload=json.dumps(fine)
    )
    assert answer["StatusCode"] == 202
    assert answer["Payload"].read() == b""
    backbone.wait_received(fine["detail"]["metadata"]["event_id"], RECORDER)

    answer = backbone.lambda_.invoke(
        FunctionName=PICKY, InvocationType="Event", Payload=json.dumps(poisoned)
    )
    assert answer["StatusCode"] == 202
    event_id = poisoned["detail"]["metadata"]["event_id"]
    attempts = backbone.wait_received(event_id, PICKY, count=2)  # one retry (EventInvokeConfig)
    assert {a["outcome"] for a in attempts} == {"failed"}
    dlq = QueueReader(backbone.sqs, CONSUMER_DLQ)
    (record,) = dlq.wait_for(lambda bodies: bodies, "the on-failure record", backbone.log)
    assert record["requestPayload"] == poisoned
    assert record["requestContext"]["functionArn"] == f"{function_arn(PICKY)}:$LATEST"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["requestId"] == answer["ResponseMetadata"]["RequestId"]


def test_dry_run_invokes_nothing(backbone: Backbone) -> None:
    answer = backbone.lambda_.invoke(FunctionName=RECORDER, InvocationType="DryRun")
    assert answer["StatusCode"] == 204


@pytest.mark.parametrize(
    ("name", "qualifier"),
    [
        (function_arn(RECORDER), None),
        (f"{function_arn(RECORDER)}:$LATEST", None),
        (f"{RECORDER}:$LATEST", None),
        (f"123456789012:function:{RECORDER}", None),
        (RECORDER, "$LATEST"),
    ],
)
def test_a_function_by_arn_partial_arn_or_qualified_name(
    backbone: Backbone, name: str, qualifier: str | None
) -> None:
    extra = {"Qualifier": qualifier} if qualifier else {}
    answer = backbone.lambda_.invoke(FunctionName=name, Payload=b"{}", **extra)
    assert answer["StatusCode"] == 200
    assert json.loads(answer["Payload"].read()) == {"ok": True}


@pytest.mark.parametrize(
    "name",
    [
        "ops-local-nope",
        f"{RECORDER}:v7",  # no such version or alias
        f"arn:aws:lambda:eu-west-1:123456789012:function:{RECORDER}",  # another region
    ],
)
def test_an_unknown_function_is_resource_not_found(backbone: Backbone, name: str) -> None:
    client = backbone.lambda_
    with pytest.raises(client.exceptions.ResourceNotFoundException) as raised:
        client.invoke(FunctionName=name, Payload=b"{}")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert raised.value.response["Error"]["Message"].startswith(
        "Function not found: arn:aws:lambda:"
    )


def test_a_body_that_is_not_json_is_refused(backbone: Backbone) -> None:
    client = backbone.lambda_
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName=RECORDER, Payload=b"{not json")


def test_the_invoke_path_is_no_api_route_and_other_paths_still_are(backbone: Backbone) -> None:
    # The fixture's API routes every path (`ANY /{proxy+}`) to echo, without a token.
    status, _, body = request("GET", f"{backbone.api_url}/2015-03-31/functions/{RECORDER}")
    assert status == 404
    assert body == {"Type": "User", "Message": "Unknown operation"}
    status, _, body = request("GET", f"{backbone.api_url}/contacts")
    assert status == 200
    assert body["event"]["rawPath"] == "/contacts"
