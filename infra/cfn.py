"""Read template.yaml the way CloudFormation does, for the local cloud and the tests.

`load_template()` parses the template with yaml.SafeLoader extended with CloudFormation's
short-form tags (`!Ref X` becomes `{"Ref": "X"}`, `!Sub s` becomes `{"Fn::Sub": s}`, ...).
Like CloudFormation, it keeps date-like scalars such as `2010-09-09` as strings.

`table_create_kwargs()` turns the template's `Table` resource into the keyword arguments
of boto3's `dynamodb.create_table`, so tests create exactly the table that is deployed.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

# Short-form tag -> long-form key. !Ref, !Condition and !GetAtt are handled separately below.
_FN_TAGS = {
    "Sub": "Fn::Sub",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Select": "Fn::Select",
    "Join": "Fn::Join",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "ImportValue": "Fn::ImportValue",
    "Base64": "Fn::Base64",
    "GetAZs": "Fn::GetAZs",
    "Cidr": "Fn::Cidr",
}

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class CfnLoader(yaml.SafeLoader):
    """yaml.SafeLoader that understands CloudFormation's short-form intrinsic functions."""


# CloudFormation reads `AWSTemplateFormatVersion: 2010-09-09` as a string, not a date.
CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _node_value(loader: CfnLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise yaml.constructor.ConstructorError(None, None, f"unexpected {node!r}", node.start_mark)


def _construct_ref(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Ref": _node_value(loader, node)}


def _construct_condition(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
    return {"Condition": _node_value(loader, node)}


def _construct_getatt(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
    value = _node_value(loader, node)
    if isinstance(value, str):
        # `!GetAtt Resource.Attribute` (the attribute may itself contain dots).
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {"Fn::GetAtt": value}


def _fn_constructor(key: str) -> Any:
    def construct(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
        return {key: _node_value(loader, node)}

    return construct


CfnLoader.add_constructor("!Ref", _construct_ref)
CfnLoader.add_constructor("!Condition", _construct_condition)
CfnLoader.add_constructor("!GetAtt", _construct_getatt)
for _tag, _key in _FN_TAGS.items():
    CfnLoader.add_constructor(f"!{_tag}", _fn_constructor(_key))


def loads(text: str) -> dict[str, Any]:
    """Parse CloudFormation YAML text into a dict with long-form intrinsic functions."""
    data = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a yaml.SafeLoader
    if not isinstance(data, dict):
        raise ValueError("a CloudFormation template must be a mapping")
    return data


@cache
def _load_cached(path: Path, mtime_ns: int) -> dict[str, Any]:
    return loads(path.read_text(encoding="utf-8"))


def load_template(path: str | Path | None = None) -> dict[str, Any]:
    """Load a template (default: the repository's template.yaml). Returns a fresh copy."""
    resolved = Path(path).resolve() if path is not None else TEMPLATE_PATH
    return copy.deepcopy(_load_cached(resolved, resolved.stat().st_mtime_ns))


def resources(template: dict[str, Any], type_: str | None = None) -> dict[str, dict[str, Any]]:
    """The template's resources by logical id, optionally only those of one type."""
    found: dict[str, dict[str, Any]] = template.get("Resources") or {}
    if type_ is None:
        return dict(found)
    return {name: res for name, res in found.items() if res.get("Type") == type_}


def _literal(value: Any, where: str) -> Any:
    """Refuse intrinsic functions where a test needs a literal value."""
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value
        if key == "Ref" or key.startswith("Fn::"):
            raise ValueError(f"{where} must be a literal to build a test table, got {value!r}")
    return value


def _table_properties(template: dict[str, Any] | None, logical_id: str) -> dict[str, Any]:
    tpl = template if template is not None else load_template()
    resource = resources(tpl).get(logical_id)
    if resource is None or resource.get("Type") != "AWS::DynamoDB::Table":
        raise KeyError(f"no AWS::DynamoDB::Table named {logical_id!r} in the template")
    properties: dict[str, Any] = resource.get("Properties") or {}
    return properties


def table_create_kwargs(
    template: dict[str, Any] | None = None,
    table_name: str = "crm-test",
    *,
    logical_id: str = "Table",
) -> dict[str, Any]:
    """boto3 `create_table` keyword arguments for the template's table, named `table_name`.

    Includes TableName, KeySchema, AttributeDefinitions, GlobalSecondaryIndexes (if any),
    BillingMode and StreamSpecification (if any). TTL is set with a separate call: see
    `table_ttl_attribute`.
    """
    props = _table_properties(template, logical_id)
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": copy.deepcopy(_literal(props["KeySchema"], "KeySchema")),
        "AttributeDefinitions": copy.deepcopy(
            _literal(props["AttributeDefinitions"], "AttributeDefinitions")
        ),
        "BillingMode": _literal(props.get("BillingMode", "PROVISIONED"), "BillingMode"),
    }
    if kwargs["BillingMode"] != "PAY_PER_REQUEST":
        raise ValueError("the test table helper supports BillingMode PAY_PER_REQUEST only")
    indexes = _literal(props.get("GlobalSecondaryIndexes") or [], "GlobalSecondaryIndexes")
    if indexes:
        kwargs["GlobalSecondaryIndexes"] = [
            {
                "IndexName": _literal(index["IndexName"], "IndexName"),
                "KeySchema": copy.deepcopy(_literal(index["KeySchema"], "KeySchema")),
                "Projection": copy.deepcopy(_literal(index["Projection"], "Projection")),
            }
            for index in indexes
        ]
    stream = props.get("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": _literal(stream["StreamViewType"], "StreamViewType"),
        }
    return kwargs


def table_ttl_attribute(
    template: dict[str, Any] | None = None, *, logical_id: str = "Table"
) -> str | None:
    """The table's TTL attribute name, or None when TTL is not enabled."""
    spec = _table_properties(template, logical_id).get("TimeToLiveSpecification") or {}
    if spec.get("Enabled") is not True:
        return None
    name = _literal(spec.get("AttributeName"), "TimeToLiveSpecification.AttributeName")
    return str(name) if name is not None else None
