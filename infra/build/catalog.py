"""The event catalog: a JSON Schema and a sample of every domain event, and docs/events.md.

    python -m infra.build.catalog          # (make schemas) writes events/schemas, events/samples
                                     # and docs/events.md; deletes files of removed events
    python -m infra.build.catalog --check  # exits 1, naming each missing, stale or extra file

Everything is generated from `crm_core.events.catalog.EVENT_TYPES`: the schemas from the
models, the samples by validating the example data of infra/build/catalog_samples.py through the
models, and each event's consumers from the EventBridgeRule events of template.yaml.
`generate()` is pure (it returns {relative path: content}), so tests compare it with the
files on disk.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from crm_core.events.catalog import EVENT_TYPES
from crm_core.events.envelope import DomainEvent, EventMetadata
from infra.build import catalog_samples
from infra.cfn import REPO_ROOT, TEMPLATE_PATH, load_template
from infra.topology import (
    ACCOUNT_ID,
    LOCAL_STAGE,
    REGION,
    FunctionSpec,
    Resolver,
    TemplateError,
    serverless_functions,
)

SCHEMAS_DIR = "events/schemas"
SAMPLES_DIR = "events/samples"
DOCS_PATH = "docs/events.md"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

EventType = type[DomainEvent]


class CatalogError(ValueError):
    """The catalog cannot be generated: an event type lacks an example or a description."""


# Paths ------------------------------------------------------------------------------------
def schema_path(event_type: EventType) -> str:
    return f"{SCHEMAS_DIR}/{event_type.SOURCE}/{event_type.DETAIL_TYPE}.json"


def sample_path(event_type: EventType) -> str:
    return f"{SAMPLES_DIR}/{event_type.SOURCE}/{event_type.DETAIL_TYPE}.json"


def producer_function(event_type: EventType) -> str:
    """The logical id of the producing function in template.yaml: `contacts` ->
    `ContactsFunction`, `outbox_publisher` -> `OutboxPublisherFunction`."""
    return "".join(part.capitalize() for part in event_type.PRODUCER.split("_")) + "Function"


def description(event_type: EventType) -> str:
    """The event type's own docstring (not inherited): its description in the catalog."""
    doc = event_type.__dict__.get("__doc__")
    if not doc or not doc.strip():
        raise CatalogError(
            f"{event_type.__name__} ({event_type.SOURCE} {event_type.DETAIL_TYPE}) has no "
            "docstring: it is the event's description in the catalog"
        )
    return inspect.cleandoc(doc)


# Schemas ----------------------------------------------------------------------------------
def event_schema(event_type: EventType) -> dict[str, Any]:
    """The JSON Schema of the whole EventBridge event as a consumer receives it.

    `detail` is the model's serialization schema: what producers write (detail_json()).
    The model's `$defs` move to the root, where its `#/$defs/...` references resolve.
    """
    detail = event_type.model_json_schema(mode="serialization")
    defs = detail.pop("$defs", {})
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": event_type.DETAIL_TYPE,
        "description": description(event_type),
        "x-crm-event-version": event_type.VERSION,
        "x-crm-producer": event_type.PRODUCER,
        "type": "object",
        "required": [
            "version",
            "id",
            "detail-type",
            "source",
            "account",
            "time",
            "region",
            "resources",
            "detail",
        ],
        "properties": {
            "version": {"const": "0"},
            "id": {
                "type": "string",
                "format": "uuid",
                "description": "EventBridge's id: new on every re-send. Deduplicate on "
                "detail.metadata.event_id instead.",
            },
            "detail-type": {"const": event_type.DETAIL_TYPE},
            "source": {"const": event_type.SOURCE},
            "account": {"type": "string", "pattern": r"^\d{12}$"},
            "time": {"type": "string", "format": "date-time"},
            "region": {"type": "string", "minLength": 1},
            "resources": {"type": "array", "items": {"type": "string"}},
            "detail": detail,
        },
    }
    if defs:
        schema["$defs"] = defs
    return schema


# Samples ----------------------------------------------------------------------------------
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _fixed_ulid(occurred_at: str, seed: str) -> str:
    """A ULID of the instant `occurred_at` whose random part is derived from `seed`."""
    ms = int(datetime.fromisoformat(occurred_at.replace("Z", "+00:00")).timestamp() * 1000)
    value = (ms << 80) | int.from_bytes(hashlib.sha256(seed.encode()).digest()[:10], "big")
    return "".join(_CROCKFORD[(value >> (5 * shift)) & 31] for shift in reversed(range(26)))


def _example(
    event_type: EventType, examples: Mapping[tuple[str, str], Mapping[str, Any]]
) -> Mapping[str, Any]:
    key = (event_type.SOURCE, event_type.DETAIL_TYPE)
    if key not in examples:
        raise CatalogError(
            f"no example data for {event_type.SOURCE} {event_type.DETAIL_TYPE}: add its "
            "`data` to EXAMPLES in infra/build/catalog_samples.py"
        )
    return examples[key]


def sample_event(
    event_type: EventType,
    examples: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A deterministic sample of the event as EventBridge delivers it: its detail is the
    example data validated by the model, then written as producers write it."""
    data = _example(event_type, catalog_samples.EXAMPLES if examples is None else examples)
    seed = f"{event_type.SOURCE}/{event_type.DETAIL_TYPE}"
    occurred_at = catalog_samples.OCCURRED_AT
    event = event_type.model_validate(
        {
            "metadata": {
                "event_id": _fixed_ulid(occurred_at, seed),
                "event_version": event_type.VERSION,
                "tenant_id": catalog_samples.TENANT_ID,
                "occurred_at": occurred_at,
                "correlation_id": catalog_samples.CORRELATION_ID,
                "actor": {"type": "user", "id": catalog_samples.USER_ID},
            },
            "data": data,
        }
    )
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:crm:events:samples:{seed}")),
        "detail-type": event_type.DETAIL_TYPE,
        "source": event_type.SOURCE,
        "account": ACCOUNT_ID,
        "time": occurred_at[:19] + "Z",  # EventBridge's precision: seconds
        "region": REGION,
        "resources": [],
        "detail": json.loads(event.detail_json()),
    }


# Consumers --------------------------------------------------------------------------------
class _Placeholders(Resolver):
    """Resolves a template without a stage: a resource's Ref is its logical id, and
    `GetAtt X.Y` is `X.Y`. Enough to read patterns, code folders and environments."""

    def ref(self, name: str) -> Any:
        try:
            return super().ref(name)
        except TemplateError:
            return name

    def get_att(self, resource: str, attribute: str) -> str:
        try:
            return super().get_att(resource, attribute)
        except TemplateError:
            return f"{resource}.{attribute}"


def pattern_matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether an EventBridge pattern matches an event, by the local cloud's matcher."""
    from moto.events.models import EventPattern

    candidate: Any = dict(event)  # moto types events as its own; any JSON object works
    return bool(EventPattern.load(json.dumps(pattern)).matches_event(candidate))


def routing_part(pattern: Mapping[str, Any]) -> dict[str, Any]:
    """The pattern without its `detail` filters: which event types it lets through."""
    routed: dict[str, Any] = {}
    for key, value in pattern.items():
        if key == "detail":
            continue
        if key == "$or" and isinstance(value, list):
            routed[key] = [routing_part(alt) if isinstance(alt, Mapping) else alt for alt in value]
        else:
            routed[key] = value
    return routed


@dataclass(frozen=True)
class EventRule:
    """One `EventBridgeRule` event of a function."""

    function: str  # the function's logical id
    name: str  # the event's key under the function's Events
    pattern: dict[str, Any]
    enabled: bool = True

    def receives(self, event: Mapping[str, Any]) -> bool:
        """Whether events of this type reach the function: the pattern without its detail
        filters matches (a filter on detail narrows which events of a type arrive; it
        does not change what the function must parse)."""
        return pattern_matches(routing_part(self.pattern), event)


@dataclass(frozen=True)
class Consumer:
    function: FunctionSpec
    rules: tuple[EventRule, ...]

    @property
    def logical_id(self) -> str:
        return self.function.logical_id

    def rules_receiving(self, event: Mapping[str, Any]) -> list[EventRule]:
        return [rule for rule in self.rules if rule.receives(event)]


def consumers(template_path: str | Path | None = None) -> list[Consumer]:
    """The functions of a template (default template.yaml) with EventBridgeRule events."""
    template = load_template(template_path)
    resolver = _Placeholders(template, {"Stage": LOCAL_STAGE})
    found = []
    for function in serverless_functions(template, resolver):
        rules = []
        for name, event in function.events.items():
            if event.get("Type") != "EventBridgeRule":
                continue
            props = event.get("Properties") or {}
            pattern = props.get("Pattern") or {}
            if isinstance(pattern, str):
                pattern = json.loads(pattern)
            enabled = props.get("State", "ENABLED") != "DISABLED" and props.get("Enabled", True)
            rules.append(EventRule(function.logical_id, name, dict(pattern), bool(enabled)))
        if rules:
            found.append(Consumer(function, tuple(rules)))
    return found


def _pattern_paths(
    node: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    for key, value in node.items():
        if key == "$or" and isinstance(value, list):
            for alternative in value:
                if isinstance(alternative, Mapping):
                    yield from _pattern_paths(alternative, prefix)
        elif isinstance(value, Mapping):
            yield from _pattern_paths(value, (*prefix, key))
        else:
            yield (*prefix, key)


def _has_path(schema: Mapping[str, Any], node: Mapping[str, Any], path: Sequence[str]) -> bool:
    """Whether a JSON object valid against `node` can hold a value at `path`."""
    if "$ref" in node:
        return _has_path(schema, schema["$defs"][node["$ref"].split("/")[-1]], path)
    if not path:
        return True
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            return any(_has_path(schema, alt, path) for alt in node[key])
    if node.get("type") == "array":
        return _has_path(schema, node.get("items") or {}, path)
    properties = node.get("properties")
    if properties is not None and path[0] in properties:
        return _has_path(schema, properties[path[0]], path[1:])
    if properties is None:
        # A free-form object (dict[str, Any]) holds any key; a scalar holds none.
        return node.get("type") == "object" and node.get("additionalProperties") is not False
    # A model: its own fields only (a tolerant reader ignores others, but no producer
    # writes them, so a filter on one never matches).
    return bool(node.get("additionalProperties", False))


def _aws_only(pattern: Mapping[str, Any]) -> bool:
    """Whether a pattern is for AWS services' own events (`source: [aws.s3]`), not ours."""
    sources = pattern.get("source")
    return (
        isinstance(sources, list)
        and bool(sources)
        and all(isinstance(s, str) and s.startswith("aws.") for s in sources)
    )


def rule_problems(
    found: Sequence[Consumer], event_types: Sequence[EventType] = EVENT_TYPES
) -> list[str]:
    """What is wrong with the consumers' patterns: a rule that no event type reaches, or a
    detail filter on a field that no event type it receives has (both are typos). Rules
    for AWS services' events (`source: [aws.*]`) are not about the catalog."""
    samples = {t: sample_event(t) for t in event_types}
    problems = []
    for consumer in found:
        for rule in consumer.rules:
            if _aws_only(rule.pattern):
                continue
            where = f"{rule.function} event {rule.name} (pattern {json.dumps(rule.pattern)})"
            received = [t for t, sample in samples.items() if rule.receives(sample)]
            if not received:
                problems.append(f"{where}: matches no event type of the catalog")
                continue
            detail = rule.pattern.get("detail")
            paths = list(_pattern_paths(detail)) if isinstance(detail, Mapping) else []
            schemas = [event_schema(t) for t in received]
            for path in paths:
                if not any(_has_path(s, s["properties"]["detail"], path) for s in schemas):
                    problems.append(
                        f"{where}: filters on detail.{'.'.join(path)}, a field that none of "
                        f"{', '.join(t.DETAIL_TYPE for t in received)} has"
                    )
    return problems


# docs/events.md ---------------------------------------------------------------------------
_ENVELOPE_FIELDS = (
    ("version", 'Always `"0"`.'),
    (
        "id",
        "EventBridge's id of this delivery: a new one each time an event is sent again. "
        "Never deduplicate on it.",
    ),
    ("detail-type", "The event type, `<Entity><PastTenseVerb>`."),
    ("source", "The domain that publishes it, `crm.<domain>`."),
    ("account", "The AWS account of the bus."),
    ("time", "When the change happened, to the second (`metadata.occurred_at` has milliseconds)."),
    ("region", "The AWS region of the bus."),
    ("resources", "Always empty."),
    ("detail", '`{"metadata": {...}, "data": {...}}`: the envelope below, and the event\'s data.'),
)

_METADATA_MEANINGS = {
    "event_id": "Our id of the event, a ULID written in the same transaction as the change. "
    "It is stable across every retry and replay (EventBridge's `id` is not): consumers "
    "deduplicate on it.",
    "event_version": "The version of the event type's contract (the schema's "
    "`x-crm-event-version`).",
    "tenant_id": "The tenant the change belongs to.",
    "occurred_at": "When the change was made: UTC, ISO 8601, milliseconds.",
    "correlation_id": "The id of the request that caused the change (the HTTP API's request "
    "id), or null. Consumers log it.",
    "actor": "Who caused the change: `type` is `user` (then `id` is the Cognito subject), "
    "`system` (a function's name) or `lead_source`.",
}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _def_name(ref: str) -> str:
    return ref.split("/")[-1]


def _type_text(node: Mapping[str, Any]) -> str:
    if "$ref" in node:
        name = _def_name(node["$ref"])
        return f"[{name}](#{name.lower()})"
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return " or ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            return " or ".join(_type_text(alt) for alt in node[key])
    kind = node.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array":
        return f"array of {_type_text(node.get('items') or {})}"
    if kind == "object":
        extra = node.get("additionalProperties")
        return f"object of {_type_text(extra)}" if isinstance(extra, dict) and extra else "object"
    if kind == "string" and "format" in node:
        return f"string ({node['format']})"
    return str(kind) if kind else "any"


def _field_rows(node: Mapping[str, Any]) -> list[str]:
    required = set(node.get("required") or [])
    rows = ["| Field | Type | Required | Description |", "|---|---|---|---|"]
    for name, field in (node.get("properties") or {}).items():
        rows.append(
            f"| `{name}` | {_type_text(field)} | {'yes' if name in required else 'no'} | "
            f"{_cell(field.get('description', ''))} |"
        )
    return rows


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        if isinstance(node.get("$ref"), str):
            yield _def_name(node["$ref"])
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _data_types(schema: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The name of the event's data model, and every type its fields use (in order)."""
    defs = schema.get("$defs") or {}
    data_name = _def_name(schema["properties"]["detail"]["properties"]["data"]["$ref"])
    seen: list[str] = []
    pending = list(_refs(defs[data_name]))
    while pending:
        name = pending.pop(0)
        if name not in seen and name != data_name:
            seen.append(name)
            pending += list(_refs(defs[name]))
    return data_name, seen


def _consumer_text(found: Sequence[Consumer], sample: Mapping[str, Any]) -> str:
    names = []
    for consumer in found:
        rules = [r for r in consumer.rules_receiving(sample) if r.enabled]
        if rules:
            names.append(f"`{consumer.logical_id}` ({', '.join(r.name for r in rules)})")
    return ", ".join(names) or "none yet"


def docs_page(event_types: Sequence[EventType], found: Sequence[Consumer]) -> str:
    lines = [
        "# Domain events",
        "",
        "<!-- Generated by `make schemas` (python -m infra.build.catalog): do not edit by hand. -->",
        "",
        "This page is generated by `make schemas` from the event models "
        "(`crm_core.events.catalog.EVENT_TYPES`) and template.yaml; CI fails when it, or a "
        "schema or sample under events/, is out of date.",
        "",
        "Every change a domain function commits is written to the table's outbox in the same "
        "transaction, and outbox_publisher puts it on the CRM's EventBridge bus. EventBridge "
        "delivers each event at least once and in no particular order: consumers deduplicate "
        "on `detail.metadata.event_id`.",
        "",
        "## The event",
        "",
        "What a consumer receives (an EventBridge event):",
        "",
        "| Field | Meaning |",
        "|---|---|",
        *(f"| `{name}` | {_cell(text)} |" for name, text in _ENVELOPE_FIELDS),
        "",
        "### `detail.metadata`",
        "",
        "The same for every event type:",
        "",
        "| Field | Type | Required | Meaning |",
        "|---|---|---|---|",
    ]
    metadata_schema = EventMetadata.model_json_schema(mode="serialization")
    missing = set(metadata_schema["properties"]) - set(_METADATA_MEANINGS)
    if missing:
        raise CatalogError(
            f"EventMetadata fields without a meaning in infra/build/catalog.py: {sorted(missing)}"
        )
    required = set(metadata_schema.get("required") or [])
    for name, field in metadata_schema["properties"].items():
        lines.append(
            f"| `{name}` | {_type_text(field)} | {'yes' if name in required else 'no'} | "
            f"{_cell(_METADATA_MEANINGS[name])} |"
        )
    shared: dict[str, Mapping[str, Any]] = dict(metadata_schema.get("$defs") or {})
    samples = {t: sample_event(t) for t in event_types}
    schemas = {t: event_schema(t) for t in event_types}
    lines += [
        "",
        "## Event types",
        "",
        "| Source | Detail-type | Version | Producer | Consumers |",
        "|---|---|---|---|---|",
    ]
    for t in event_types:
        lines.append(
            f"| `{t.SOURCE}` | [{t.DETAIL_TYPE}](#{t.DETAIL_TYPE.lower()}) | {t.VERSION} | "
            f"`{t.PRODUCER}` | {_consumer_text(found, samples[t])} |"
        )
    for t in event_types:
        data_name, used = _data_types(schemas[t])
        defs = schemas[t]["$defs"]
        for name in used:
            if name in shared and shared[name] != defs[name]:
                raise CatalogError(f"two different types are named {name}: rename one")
            shared[name] = defs[name]
        lines += [
            "",
            f"### {t.DETAIL_TYPE}",
            "",
            description(t),
            "",
            f"- Source: `{t.SOURCE}`; detail-type: `{t.DETAIL_TYPE}`; version: {t.VERSION}",
            f"- Producer: `{t.PRODUCER}` (`{producer_function(t)}`)",
            f"- Consumers: {_consumer_text(found, samples[t])}",
            f"- Schema: [{schema_path(t)}](../{schema_path(t)}); "
            f"sample: [{sample_path(t)}](../{sample_path(t)})",
            "",
            "`detail.data`:",
            "",
            *_field_rows(defs[data_name]),
        ]
    if shared:
        lines += ["", "## Types", "", "The types the metadata and the events' data use."]
    for name, node in sorted(shared.items()):
        lines += ["", f"### {name}", ""]
        if node.get("description"):
            lines += [_cell(node["description"]), ""]
        if "enum" in node:
            lines.append("One of " + ", ".join(f"`{v}`" for v in node["enum"]) + ".")
        else:
            lines += _field_rows(node)
    return "\n".join(lines) + "\n"


# Generation -------------------------------------------------------------------------------
def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def generate(
    event_types: Sequence[EventType] = EVENT_TYPES,
    template_path: str | Path | None = None,
    examples: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> dict[str, str]:
    """Every catalog file: {path relative to the repository: content}."""
    table = catalog_samples.EXAMPLES if examples is None else examples
    keys = [(t.SOURCE, t.DETAIL_TYPE) for t in event_types]
    duplicates = sorted({f"{s} {d}" for s, d in keys if keys.count((s, d)) > 1})
    if duplicates:
        raise CatalogError(f"event types declared twice: {', '.join(duplicates)}")
    unused = sorted(f"{s} {d}" for s, d in table if (s, d) not in keys)
    if unused:
        raise CatalogError(
            f"examples in infra/build/catalog_samples.py for no event type: {', '.join(unused)}"
        )
    files: dict[str, str] = {}
    for t in event_types:
        files[schema_path(t)] = _json_text(event_schema(t))
        files[sample_path(t)] = _json_text(sample_event(t, table))
    files[DOCS_PATH] = docs_page(event_types, consumers(template_path or TEMPLATE_PATH))
    return files


def _existing(root: Path) -> Iterable[str]:
    for folder in (SCHEMAS_DIR, SAMPLES_DIR):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                yield path.relative_to(root).as_posix()


def differences(files: Mapping[str, str], root: Path = REPO_ROOT) -> list[str]:
    """Each file on disk that differs from `files`: missing, stale, or extra."""
    problems = []
    for relative, content in files.items():
        path = root / relative
        if not path.is_file():
            problems.append(f"missing: {relative}")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"stale: {relative}")
    problems += [f"extra: {relative}" for relative in _existing(root) if relative not in files]
    return problems


def write(files: Mapping[str, str], root: Path = REPO_ROOT) -> list[str]:
    """Write `files` and delete the extra ones under events/schemas and events/samples;
    returns what changed."""
    changed = []
    for relative in _existing(root):
        if relative not in files:
            (root / relative).unlink()
            changed.append(f"deleted: {relative}")
    for folder in (SCHEMAS_DIR, SAMPLES_DIR):
        base = root / folder
        if base.is_dir():
            for path in sorted(base.rglob("*"), reverse=True):
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
    for relative, content in files.items():
        path = root / relative
        if path.is_file() and path.read_text(encoding="utf-8") == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        changed.append(f"wrote: {relative}")
    return changed


def main(argv: Sequence[str] | None = None, root: Path = REPO_ROOT) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.build.catalog", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any file is out of date"
    )
    args = parser.parse_args(argv)
    try:
        files = generate()
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        problems = differences(files, root)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("the event catalog is out of date: run `make schemas`", file=sys.stderr)
            return 1
        print(f"the event catalog is up to date ({len(files)} files)")
        return 0
    for change in write(files, root):
        print(change)
    return 0


if __name__ == "__main__":
    sys.exit(main())
