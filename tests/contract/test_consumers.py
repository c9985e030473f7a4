"""Consumers and the events they receive: each function with EventBridgeRule events in a
template parses every event type its patterns let through, and every pattern lets through
at least one event type of the catalog (a pattern that matches nothing is a typo).

The same checks also run on a fixture template
(tests/fixtures/templates/contract_consumer.yaml), to prove that they catch a mismatch.
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from crm_core.events import contacts
from crm_core.events.catalog import EVENT_TYPES
from crm_core.events.envelope import DomainEvent
from infra.build import catalog
from infra.cfn import TEMPLATE_PATH
from infra.topology import FunctionSpec

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "templates" / "contract_consumer.yaml"
TEMPLATES = pytest.mark.parametrize("template", [TEMPLATE_PATH, FIXTURE], ids=lambda p: p.name)

Loader = Callable[[FunctionSpec], ModuleType]


def samples() -> dict[type[DomainEvent], dict[str, Any]]:
    return {t: catalog.sample_event(t) for t in EVENT_TYPES}


def _own_modules(folder: Path) -> set[str]:
    """The top-level modules and packages of a function folder (app, <name>_api...)."""
    return {
        path.stem
        for path in folder.iterdir()
        if path.suffix == ".py" or (path / "__init__.py").is_file()
    }


def _forget(names: set[str]) -> None:
    for module in [m for m in sys.modules if m.split(".")[0] in names]:
        del sys.modules[module]


@pytest.fixture
def load_app(aws: None) -> Iterator[Loader]:
    """Imports a function's handler module the way tests/conftest.py's `load_function` does
    for contacts: its folder first on sys.path, fresh, in moto, with the environment of
    tests/conftest.py. The function's own template variables are added, without replacing
    what conftest sets for every function (the table, the stage, Powertools' switches)."""
    loaded: set[str] = set()
    env_before = set(os.environ)
    with pytest.MonkeyPatch.context() as env:

        def load(function: FunctionSpec) -> ModuleType:
            env.undo()  # the environment of this function only
            for name, value in function.environment.items():
                if name == "POWERTOOLS_SERVICE_NAME" or name not in env_before:
                    env.setenv(name, value)
            env.setenv("AWS_LAMBDA_FUNCTION_NAME", function.name)
            folder = function.code_dir
            own = _own_modules(folder)
            loaded.update(own)
            _forget(own)
            sys.path.insert(0, str(folder))
            try:
                return importlib.import_module(function.handler.rsplit(".", 1)[0])
            finally:
                sys.path.remove(str(folder))

        yield load
    _forget(loaded)


def parse_failures(
    found: Sequence[catalog.Consumer],
    load: Loader,
    events: Mapping[type[DomainEvent], Mapping[str, Any]],
) -> list[str]:
    """Each event type a consumer receives but its `consumer.parse` does not read back."""
    failures = []
    for consumer in found:
        module = load(consumer.function)
        parser: Any = getattr(module, "consumer", None)
        if not callable(getattr(parser, "parse", None)):
            failures.append(
                f"{consumer.logical_id}: {consumer.function.code_dir.name}/app.py has no "
                "module-level `consumer` with a `parse` method"
            )
            continue
        for event_type, sample in events.items():
            rules = consumer.rules_receiving(sample)
            if not rules:
                continue
            where = (
                f"{consumer.logical_id} ({', '.join(r.name for r in rules)}) "
                f"{event_type.SOURCE} {event_type.DETAIL_TYPE}"
            )
            try:
                parsed = parser.parse(copy.deepcopy(sample))
            except Exception as exc:
                failures.append(f"{where}: parse raised {exc!r}")
                continue
            if not isinstance(parsed, event_type):
                failures.append(f"{where}: parsed as {type(parsed).__name__}")
            elif parsed.model_dump(mode="json") != sample["detail"]:
                failures.append(f"{where}: the parsed event does not dump to the same detail")
    return failures


# The checks, on template.yaml and on the fixture ---------------------------------------
@TEMPLATES
def test_every_pattern_of_a_consumer_lets_through_an_event_type(template: Path) -> None:
    problems = catalog.rule_problems(catalog.consumers(template))
    assert not problems, "\n".join(problems)


@TEMPLATES
def test_every_consumer_parses_every_event_type_it_receives(
    template: Path, load_app: Loader
) -> None:
    failures = parse_failures(catalog.consumers(template), load_app, samples())
    assert not failures, "\n".join(failures)


# That the checks see what they should -----------------------------------------------------
def test_the_fixture_template_declares_consumers_and_what_they_receive() -> None:
    found = {c.logical_id: c for c in catalog.consumers(FIXTURE)}
    assert set(found) == {"ContractConsumerFunction", "ContractAuditFunction"}

    consumer = found["ContractConsumerFunction"]
    assert consumer.function.code_dir == ROOT / "tests" / "fixtures" / "functions" / (
        "contract_consumer"
    )
    assert consumer.function.environment["BUS_NAME"] == "Bus"
    received = {
        t.DETAIL_TYPE: [r.name for r in consumer.rules_receiving(s)] for t, s in samples().items()
    }
    assert {name: rules for name, rules in received.items() if rules} == {
        "ContactMerged": ["ContactMerged"],
        "ContactUpdated": ["BecameCustomer"],  # received whatever the detail filter says
        "CompanyCreated": ["CompanyChanges"],
        "CompanyUpdated": ["CompanyChanges"],
        "CompanyDeleted": ["CompanyChanges"],
    }
    (audit,) = found["ContractAuditFunction"].rules
    assert not audit.enabled


def test_the_docs_list_the_consumers_of_each_event_type() -> None:
    page = catalog.docs_page(EVENT_TYPES, catalog.consumers(FIXTURE))

    assert "| `crm.contacts` | [ContactMerged](#contactmerged) | 1 | `contacts` | " in page
    row = next(line for line in page.splitlines() if "[ContactMerged](#contactmerged)" in line)
    assert row.endswith("| `ContractConsumerFunction` (ContactMerged) |")
    # ContractAuditFunction's rule is disabled: ContactCreated has no consumer.
    row = next(line for line in page.splitlines() if "[ContactCreated](#contactcreated)" in line)
    assert row.endswith("| none yet |")


def _with_rules(consumer: catalog.Consumer, *patterns: dict[str, Any]) -> catalog.Consumer:
    rules = tuple(
        catalog.EventRule(consumer.logical_id, f"Rule{i}", pattern)
        for i, pattern in enumerate(patterns)
    )
    return replace(consumer, rules=rules)


def test_a_typo_in_a_pattern_is_reported() -> None:
    base = catalog.consumers(FIXTURE)[0]
    typos = _with_rules(
        base,
        {"source": ["crm.contacts"], "detail-type": ["ContactMerge"]},
        {"source": ["crm.contact"]},
        {
            "source": ["crm.contacts"],
            "detail-type": ["ContactUpdated"],
            "detail": {"data": {"contact": {"lifecyle_stage": ["customer"]}}},
        },
        {"detail-type": ["CompanyDeleted"], "detail": {"data": {"company": {"id": ["x"]}}}},
    )
    fine = _with_rules(
        base,
        {"source": ["crm.contacts"], "detail-type": [{"prefix": "Contact"}]},
        {"detail": {"data": {"contact": {"attributes": {"plan": ["pro"]}}}}},
        {"$or": [{"detail-type": ["ContactDeleted"]}, {"detail-type": ["ContactMerged"]}]},
        {"detail": {"metadata": {"actor": {"type": ["user"]}}, "data": {"changed": ["tags"]}}},
        {"source": ["aws.s3"], "detail-type": ["Object Created"]},  # not a CRM event
    )

    problems = catalog.rule_problems([typos, fine])

    assert len(problems) == 4, "\n".join(problems)
    assert "Rule0" in problems[0]
    assert "matches no event type" in problems[0]
    assert "Rule1" in problems[1]
    assert "detail.data.contact.lifecyle_stage" in problems[2]
    assert "detail.data.company.id" in problems[3]
    assert "CompanyDeleted" in problems[3]


def test_a_consumer_that_cannot_parse_what_it_receives_is_reported() -> None:
    consumer = catalog.consumers(FIXTURE)[0]
    deleted = catalog.sample_event(contacts.CompanyDeleted)["detail"]

    class Refuses:
        """Refuses ContactMerged; reads everything else as a CompanyDeleted."""

        def parse(self, event: Mapping[str, Any]) -> DomainEvent:
            if event["detail-type"] == "ContactMerged":
                raise ValueError("unknown event")
            return contacts.CompanyDeleted.model_validate(deleted)

    modules: dict[str, Any] = {
        "refuses": SimpleNamespace(consumer=Refuses()),
        "none": SimpleNamespace(),
    }

    def load(function: FunctionSpec) -> ModuleType:
        module: ModuleType = modules[function.name]
        return module

    refusing = replace(consumer, function=replace(consumer.function, name="refuses"))
    missing = replace(consumer, function=replace(consumer.function, name="none"))

    failures = parse_failures([refusing, missing], load, samples())

    assert any("ContactMerged: parse raised ValueError('unknown event')" in f for f in failures)
    assert any("CompanyCreated: parsed as CompanyDeleted" in f for f in failures)
    assert not any("CompanyDeleted" in f.split(": ")[0] for f in failures)
    assert failures[-1].endswith("has no module-level `consumer` with a `parse` method")
