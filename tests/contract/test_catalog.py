"""The event catalog: every event type has a schema and a sample under events/, generated
from its model, and the checked-in files are exactly what the code generates."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from crm_core.events.catalog import EVENT_TYPES
from crm_core.events.envelope import DomainEvent
from infra.build import catalog, catalog_samples
from infra.cfn import load_template

ROOT = Path(__file__).resolve().parents[2]
EVENTS = pytest.mark.parametrize(
    "event_type", EVENT_TYPES, ids=[f"{t.SOURCE}/{t.DETAIL_TYPE}" for t in EVENT_TYPES]
)
SOURCE_RE = re.compile(r"^crm\.[a-z]+(_[a-z]+)*$")
# PascalCase: an entity of one or more words, then a verb in the past tense.
DETAIL_TYPE_RE = re.compile(r"^(?:[A-Z][a-z0-9]+)+$")
# Names the product gives to a state an entity reached by time alone, with no one acting
# (issue 5 names "TaskOverdue"): an adjective, read as "became overdue"; PRODUCT.md's
# "CaseSlaWarning" reads as "an SLA warning was reached".
STATE_REACHED = {"TaskOverdue", "DealRotting", "CaseSlaWarning"}
IRREGULAR_PAST_TENSES = {"Sent", "Won", "Lost", "Held", "Made", "Read", "Set", "Withdrawn"}


def read_json(relative: str) -> Any:
    return json.loads((ROOT / relative).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return catalog.generate()


def test_the_files_on_disk_are_what_the_code_generates(generated: dict[str, str]) -> None:
    problems = catalog.differences(generated, ROOT)
    assert not problems, "the event catalog is out of date: run `make schemas`\n" + "\n".join(
        problems
    )


@EVENTS
def test_every_event_type_has_a_schema_and_a_sample(
    event_type: type[DomainEvent], generated: dict[str, str]
) -> None:
    for relative in (catalog.schema_path(event_type), catalog.sample_path(event_type)):
        assert relative in generated
        assert (ROOT / relative).is_file(), f"{relative} is missing: run `make schemas`"
    assert f"### {event_type.DETAIL_TYPE}\n" in generated[catalog.DOCS_PATH]


@EVENTS
def test_source_and_detail_type_follow_the_conventions(event_type: type[DomainEvent]) -> None:
    assert SOURCE_RE.match(event_type.SOURCE), f"{event_type.SOURCE}: sources are crm.<domain>"
    detail_type = event_type.DETAIL_TYPE
    assert DETAIL_TYPE_RE.match(detail_type), f"{detail_type}: detail-types are PascalCase"
    words = re.findall(r"[A-Z][a-z0-9]*", detail_type)
    assert len(words) >= 2, f"{detail_type}: an entity, then a verb (ContactCreated)"
    verb = words[-1]
    if detail_type in STATE_REACHED:
        return
    assert verb.endswith("ed") or verb in IRREGULAR_PAST_TENSES, (
        f"{detail_type}: the last word is a verb in the past tense (add a genuine irregular "
        "one to IRREGULAR_PAST_TENSES)"
    )
    assert event_type.VERSION >= 1


@EVENTS
def test_the_event_type_is_described_and_its_producer_is_a_function(
    event_type: type[DomainEvent],
) -> None:
    assert catalog.description(event_type)
    functions = load_template()["Resources"]
    producer = catalog.producer_function(event_type)
    assert functions.get(producer, {}).get("Type") == "AWS::Serverless::Function", (
        f"{event_type.DETAIL_TYPE}: PRODUCER {event_type.PRODUCER!r} names no function "
        f"{producer} in template.yaml"
    )


def test_source_and_detail_type_name_one_event_type() -> None:
    keys = [(t.SOURCE, t.DETAIL_TYPE) for t in EVENT_TYPES]
    assert len(keys) == len(set(keys))


@EVENTS
def test_the_schema_is_a_valid_draft_2020_12_schema(event_type: type[DomainEvent]) -> None:
    schema = read_json(catalog.schema_path(event_type))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == event_type.DETAIL_TYPE
    assert schema["description"] == catalog.description(event_type)
    assert schema["x-crm-event-version"] == event_type.VERSION
    assert schema["properties"]["source"] == {"const": event_type.SOURCE}
    assert schema["properties"]["detail-type"] == {"const": event_type.DETAIL_TYPE}


@EVENTS
def test_the_sample_validates_against_its_schema(event_type: type[DomainEvent]) -> None:
    schema = read_json(catalog.schema_path(event_type))
    sample = read_json(catalog.sample_path(event_type))
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(sample)]
    assert not errors, "\n".join(errors)


@EVENTS
def test_the_schema_refuses_another_event_type(event_type: type[DomainEvent]) -> None:
    schema = read_json(catalog.schema_path(event_type))
    sample = read_json(catalog.sample_path(event_type))
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    assert not validator.is_valid({**sample, "detail-type": "SomethingElse"})
    assert not validator.is_valid({**sample, "source": "crm.other"})
    assert not validator.is_valid({**sample, "detail": {"metadata": sample["detail"]["metadata"]}})


@EVENTS
def test_the_sample_parses_back_through_its_model(event_type: type[DomainEvent]) -> None:
    sample = read_json(catalog.sample_path(event_type))
    assert sample["source"] == event_type.SOURCE
    assert sample["detail-type"] == event_type.DETAIL_TYPE
    assert sample["account"] == "123456789012"
    assert sample["region"] == "us-east-1"

    parsed = event_type.model_validate(sample["detail"])

    assert parsed.metadata.event_version == event_type.VERSION
    assert parsed.model_dump(mode="json") == sample["detail"]
    assert json.loads(parsed.detail_json()) == sample["detail"]


def test_samples_are_deterministic_and_distinct() -> None:
    first = {t: catalog.sample_event(t) for t in EVENT_TYPES}
    again = {t: catalog.sample_event(t) for t in EVENT_TYPES}
    assert first == again
    assert len({s["id"] for s in first.values()}) == len(EVENT_TYPES)
    assert len({s["detail"]["metadata"]["event_id"] for s in first.values()}) == len(EVENT_TYPES)


# The generator ------------------------------------------------------------------------------
class _UnknownThing(DomainEvent):
    """Something happened that no example describes."""

    SOURCE: ClassVar[str] = "crm.contacts"
    DETAIL_TYPE: ClassVar[str] = "ThingHappened"
    PRODUCER: ClassVar[str] = "contacts"
    data: dict[str, Any]


def test_an_event_type_without_an_example_fails_loudly() -> None:
    with pytest.raises(catalog.CatalogError, match=r"crm\.contacts ThingHappened.*EXAMPLES"):
        catalog.generate((*EVENT_TYPES, _UnknownThing))


def test_an_example_of_no_event_type_fails_loudly() -> None:
    examples = {**catalog_samples.EXAMPLES, ("crm.contacts", "ContactVanished"): {}}
    with pytest.raises(catalog.CatalogError, match="ContactVanished"):
        catalog.generate(examples=examples)


def test_an_example_the_model_refuses_fails_loudly() -> None:
    examples = {**catalog_samples.EXAMPLES, ("crm.contacts", "CompanyDeleted"): {}}
    with pytest.raises(ValueError, match="company_id"):
        catalog.generate(examples=examples)


def test_check_names_missing_stale_and_extra_files(
    generated: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog.write(generated, tmp_path)
    assert catalog.differences(generated, tmp_path) == []
    assert catalog.main(["--check"], root=tmp_path) == 0

    stale = catalog.schema_path(EVENT_TYPES[0])
    missing = catalog.sample_path(EVENT_TYPES[-1])
    extra = f"{catalog.SAMPLES_DIR}/crm.gone/ThingDeleted.json"
    (tmp_path / stale).write_text("{}\n")
    (tmp_path / missing).unlink()
    (tmp_path / extra).parent.mkdir(parents=True)
    (tmp_path / extra).write_text("{}\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    assert catalog.main(["--check"], root=tmp_path) == 1

    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    err = capsys.readouterr().err
    assert f"stale: {stale}" in err
    assert f"missing: {missing}" in err
    assert f"extra: {extra}" in err
    assert "make schemas" in err


def test_writing_deletes_the_files_of_removed_event_types(
    generated: dict[str, str], tmp_path: Path
) -> None:
    extra = tmp_path / catalog.SCHEMAS_DIR / "crm.gone" / "ThingDeleted.json"
    extra.parent.mkdir(parents=True)
    extra.write_text("{}\n")

    assert catalog.main([], root=tmp_path) == 0

    assert not extra.parent.exists()
    assert catalog.differences(generated, tmp_path) == []
    assert catalog.write(generated, tmp_path) == []  # nothing left to change
