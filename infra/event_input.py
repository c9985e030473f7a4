"""What an EventBridge target receives: the event itself, or what the target's Input,
InputPath or InputTransformer make of it (EventBridge's own rules, for the local bus and for
`crm events replay --dlq`, which hands a dead-lettered event to its target as the rule would).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class TargetInput:
    """What a target receives: the event, or what Input / InputPath / InputTransformer make."""

    input: str | None = None
    input_path: str | None = None
    transformer: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, props: Mapping[str, Any]) -> TargetInput:
        given = props.get("Input")
        return cls(
            input=given if given is None or isinstance(given, str) else json.dumps(given),
            input_path=props.get("InputPath"),
            transformer=props.get("InputTransformer"),
        )

    def payload(self, event: Mapping[str, Any], rule_name: str, rule_arn: str) -> Any:
        if self.input is not None:
            try:
                return json.loads(self.input)
            except ValueError:
                return self.input
        if self.input_path:
            found = json_path(event, self.input_path)
            return None if found is _MISSING else found
        if self.transformer:
            return transform(self.transformer, event, rule_name, rule_arn)
        return dict(event)


_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def json_path(document: Any, path: str) -> Any:
    """The value at a simple JSONPath (`$`, `$.a.b`, `$.a[0]`, `$['a.b']`), or _MISSING."""
    if not path.startswith("$"):
        raise ValueError(f"unsupported JSONPath {path!r}")
    value, position = document, 1
    while position < len(path):
        step = _PATH_STEP.match(path, position)
        if step is None:
            raise ValueError(f"unsupported JSONPath {path!r}")
        position = step.end()
        name, index, quoted, double = step.groups()
        key = next((k for k in (name, quoted, double) if k is not None), None)
        if key is not None and isinstance(value, dict) and key in value:
            value = value[key]
        elif index is not None and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return _MISSING
    return value


def transform(
    transformer: Mapping[str, Any], event: Mapping[str, Any], rule_name: str, rule_arn: str
) -> Any:
    """An InputTransformer's output: `<name>` placeholders of InputTemplate replaced.

    In a JSON template, a placeholder inside a string takes the text of its value, and
    outside one its JSON (a path the event lacks gives "" and null); the result is
    delivered parsed. A template that is not JSON gives a string, values as text.
    """
    values: dict[str, Any] = {
        name: json_path(event, str(path))
        for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    values.update(
        {
            "aws.events.rule-arn": rule_arn,
            "aws.events.rule-name": rule_name,
            "aws.events.event.ingestion-time": event.get("time"),
            "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
            "aws.events.event.json": dict(event),
        }
    )
    template = str(transformer.get("InputTemplate", ""))
    try:
        return json.loads(_fill(template, values, as_json=True))
    except ValueError:
        return _fill(template, values, as_json=False)


def _fill(template: str, values: Mapping[str, Any], *, as_json: bool) -> str:
    """The template with its known placeholders replaced. `as_json`: a value goes in as
    JSON outside quotes and as escaped text inside them; otherwise strings go in as they
    are (a text template) and other values as JSON."""
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        char = template[i]
        if char == "\\" and in_string:
            out.append(template[i : i + 2])
            i += 2
            continue
        if char == '"':
            in_string = not in_string
        elif char == "<":
            end = template.find(">", i)
            name = template[i + 1 : end] if end > i else ""
            if name in values:
                value = values[name]
                if not as_json:
                    text = "" if value is _MISSING else value
                    out.append(text if isinstance(text, str) else json.dumps(text))
                elif in_string:
                    text = "" if value is _MISSING else value
                    text = text if isinstance(text, str) else json.dumps(text)
                    out.append(json.dumps(text)[1:-1])
                else:
                    out.append("null" if value is _MISSING else json.dumps(value))
                i = end + 1
                continue
        out.append(char)
        i += 1
    return "".join(out)
