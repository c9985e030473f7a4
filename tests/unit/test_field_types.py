"""Field types every later use can rely on: a date-time any code can turn into UTC and
format, and numbers DynamoDB stores and JSON clients hold. Both as model fields and as
query parameters of a Powertools route."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from crm_core.clock import format_iso
from crm_core.fields import EARLIEST, LATEST, Attributes, StorableNumber, UtcDateTime
from tests.support.api import SAMPLE

moments = TypeAdapter(UtcDateTime)
numbers = TypeAdapter(StorableNumber)


# UtcDateTime ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"),
        ("1970-01-01T05:30:00+05:30", "1970-01-01T00:00:00.000Z"),
        ("2026-03-01T09:30:00.123456-08:00", "2026-03-01T17:30:00.123Z"),
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59.000Z"),
        ("9999-12-31T09:59:59-14:00", "9999-12-31T23:59:59.000Z"),
    ],
)
def test_times_within_the_bounds_are_kept_in_utc(text: str, utc: str) -> None:
    moment = moments.validate_python(text)
    assert moment.utcoffset() == timedelta(0)
    assert format_iso(moment) == utc


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC: OverflowError once converted
        "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
        "9999-12-31T23:59:59.5Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00+00:01",
        "2026-01-01T00:00:00",  # no zone: a time that means nothing alone
        "1700000000",  # Unix seconds: refused, not guessed
        "",
        "tomorrow",
    ],
)
def test_other_times_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        moments.validate_python(text)
    with pytest.raises(ValidationError):
        moments.validate_json(json.dumps(text))


def test_numbers_are_refused_not_read_as_unix_time() -> None:
    for value in (0, 1_700_000_000, 1.5):
        with pytest.raises(ValidationError):
            moments.validate_python(value)


zones = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))])


@given(st.datetimes(timezones=zones))
@example(datetime(1969, 12, 31, 10, 0, tzinfo=timezone(timedelta(hours=-14))))
def test_any_aware_time_is_refused_or_formats_in_utc(moment: datetime) -> None:
    try:
        parsed = moments.validate_python(moment.isoformat())
    except ValidationError:
        in_range = False
    else:
        in_range = True
        assert EARLIEST <= parsed <= LATEST
        assert format_iso(parsed).endswith("Z")
    try:
        expected = EARLIEST <= moment.astimezone(UTC) <= LATEST
    except OverflowError:  # before year 1 or after 9999 in UTC
        expected = False
    # The text's own year is 1970 or later too (the document's pattern says so): the first
    # moment of 1970 in UTC, written at -14:00, is 1969 text and refused.
    expected = expected and moment.year >= 1970
    assert in_range == expected


def test_the_schema_says_the_bounds() -> None:
    class Window(BaseModel):
        after: UtcDateTime | None = None

    (schema,) = [
        s
        for s in Window.model_json_schema()["properties"]["after"]["anyOf"]
        if s.get("type") and s["type"] != "null"
    ]
    assert schema["type"] == "string"
    # The pattern the code applies: years 1970 to 9999, a zone required.
    pattern = re.compile(schema["pattern"])
    assert pattern.fullmatch("2026-06-01T09:30:00.123456+02:00")
    assert pattern.fullmatch("2026-06-01T09:30Z")
    assert not pattern.fullmatch("1969-12-31T23:59:59Z")
    assert not pattern.fullmatch("2026-06-01T09:30:00")
    assert "1970-01-01T00:00:00Z" in schema["description"]
    assert "9999-12-31T23:59:59Z" in schema["description"]


def _resolver() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.get("/things")
    def things(
        due_after: Annotated[
            UtcDateTime | None, Query(description="Due at or after this time.")
        ] = None,
    ) -> Response[str]:
        shown = format_iso(due_after) if due_after else None
        return Response(200, "application/json", json.dumps({"due_after": shown}))

    return app


def _get(app: APIGatewayHttpResolver, query: dict[str, str]) -> tuple[int, Any]:
    event = copy.deepcopy(SAMPLE)
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/things"
    event["routeKey"] = event["requestContext"]["routeKey"] = "GET /things"
    event["queryStringParameters"] = query
    reply = app.resolve(event, None)
    return reply["statusCode"], json.loads(reply["body"])


def test_it_works_as_a_powertools_query_parameter() -> None:
    app = _resolver()
    status, body = _get(app, {"due_after": "2026-03-01T09:30:00+01:00"})
    assert (status, body) == (200, {"due_after": "2026-03-01T08:30:00.000Z"})
    for bad in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1700000000"):
        status, body = _get(app, {"due_after": bad})
        assert status == 422, (bad, body)
    parameters = app.get_openapi_schema().model_dump(mode="json", by_alias=True, exclude_none=True)
    (parameter,) = parameters["paths"]["/things"]["get"]["parameters"]
    assert parameter["description"] == "Due at or after this time."
    assert "9999-12-31T23:59:59Z" in json.dumps(parameter["schema"])


# StorableNumber -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0, -0.0, 1e-15, -1e-15, 0.5, 3, 1e15, -1e15, 123.456])
def test_storable_numbers_are_kept(value: float) -> None:
    assert numbers.validate_python(value) == value


@pytest.mark.parametrize(
    "value", [1e-300, -1e-16, 9.9e-16, 1.0000001e15, -2e15, float("nan"), float("inf"), 10**400]
)
def test_numbers_dynamodb_or_json_clients_cannot_hold_are_refused(value: float) -> None:
    with pytest.raises(ValidationError):
        numbers.validate_python(value)


def test_the_number_schema_says_exactly_what_is_accepted() -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(numbers.json_schema())
    for value in (0, -0.0, 1e-15, -1e-15, 0.5, 1e15, -1e15, 1e-300, -1e-16, 1e16, -2e15):
        try:
            numbers.validate_python(value)
        except ValidationError:
            accepted = False
        else:
            accepted = True
        assert validator.is_valid(value) == accepted, value


def test_the_special_use_domains_are_email_validators() -> None:
    # The schema names them (fields.EMAIL_SCHEMA) because the validator refuses them.
    import email_validator

    from crm_core import normalize

    assert set(normalize.SPECIAL_USE_DOMAINS) == set(email_validator.SPECIAL_USE_DOMAIN_NAMES)


ATTRIBUTES = TypeAdapter(Attributes)
SAFE = 2**53


@pytest.mark.parametrize("value", [SAFE, -SAFE, 0, 5, 1.5, 5e15, -5e15])
def test_attribute_numbers_within_two_to_the_53_are_kept_exactly(value: float) -> None:
    kept = ATTRIBUTES.validate_json(json.dumps({"n": value}))["n"]
    assert (kept, type(kept)) == (value, type(value))


@pytest.mark.parametrize("value", [SAFE + 1, -SAFE - 1, 10**20, -(10**20)])
def test_an_attribute_integer_past_two_to_the_53_is_refused_not_rounded(value: int) -> None:
    # A float would take it as the nearest double (2**53 + 1 -> 2**53): another number.
    with pytest.raises(ValidationError):
        ATTRIBUTES.validate_json(json.dumps({"n": value}))
