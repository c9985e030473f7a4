"""Create what template.yaml declares on the local endpoint, in dependency order.

Each supported resource type has a creator that calls the same AWS API CloudFormation
would, through boto3 against the local endpoint, and returns the resource's `Ref` and
`Fn::GetAtt` values so that later resources (and the functions' environments) resolve.
Types with nothing to emulate locally (IAM roles, log groups' retention...) still get
their names, so references to them resolve.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.topology import ACCOUNT_ID, REGION, Physical, Resolver

# Creation order: a resource is created after every type it can reference.
_ORDER = (
    "AWS::Logs::LogGroup",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::Events::EventBus",
    "AWS::Events::Archive",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolGroup",
    "AWS::SES::ConfigurationSet",
    "AWS::SES::EmailIdentity",
    "AWS::Scheduler::ScheduleGroup",
    "AWS::Serverless::LayerVersion",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::Function",
)


@dataclass
class Provisioned:
    """What was created, by logical id, and what the local cloud does not emulate."""

    resolver: Resolver
    physical: dict[str, Physical]
    skipped: dict[str, str] = field(default_factory=dict)


class Provisioner:
    def __init__(self, clients: Callable[[str], Any]) -> None:
        """`clients(service)` returns a boto3 client bound to the local endpoint."""
        self.clients = clients
        self._creators: dict[str, Callable[[str, dict[str, Any]], Physical]] = {
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::Events::EventBus": self._event_bus,
            "AWS::Cognito::UserPool": self._user_pool,
            "AWS::Cognito::UserPoolClient": self._user_pool_client,
            "AWS::Cognito::UserPoolGroup": self._user_pool_group,
            "AWS::SES::EmailIdentity": self._email_identity,
            "AWS::Serverless::LayerVersion": self._layer,
            "AWS::Serverless::HttpApi": self._http_api,
            "AWS::Serverless::Function": self._function,
        }

    def provision(self, template: Mapping[str, Any], parameters: Mapping[str, str]) -> Provisioned:
        physical: dict[str, Physical] = {}
        resolver = Resolver(template, parameters, physical)
        result = Provisioned(resolver=resolver, physical=physical)
        resources: dict[str, Any] = template.get("Resources") or {}
        ranked = sorted(
            resources.items(),
            key=lambda kv: _ORDER.index(kv[1]["Type"]) if kv[1]["Type"] in _ORDER else len(_ORDER),
        )
        for logical_id, resource in ranked:
            condition = resource.get("Condition")
            if condition and not resolver.condition(condition):
                result.skipped[logical_id] = f"condition {condition} is false"
                continue
            creator = self._creators.get(resource["Type"])
            if creator is None:
                physical[logical_id] = Physical(
                    ref=logical_id, attributes={"Arn": _arn(logical_id)}
                )
                result.skipped[logical_id] = f"{resource['Type']} is not emulated"
                continue
            props = resolver.resolve(resource.get("Properties") or {})
            physical[logical_id] = creator(logical_id, props)
        return result

    # Creators ---------------------------------------------------------------------------
    def _log_group(self, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("LogGroupName") or f"/local/{logical_id}"
        logs = self.clients("logs")
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=props["RetentionInDays"])
        arn = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"
        return Physical(ref=name, attributes={"Arn": arn})

    def _table(self, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("TableName") or logical_id
        dynamodb = self.clients("dynamodb")
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(key):
                kwargs[key] = props[key]
        stream = props.get("StreamSpecification")
        if stream:
            kwargs["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": stream["StreamViewType"],
            }
        described = dynamodb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        attributes = {"Arn": described["TableArn"]}
        if described.get("LatestStreamArn"):
            attributes["StreamArn"] = described["LatestStreamArn"]
        return Physical(ref=name, attributes=attributes)

    def _queue(self, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("QueueName") or f"crm-local-{logical_id}"
        attributes: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "ReceiveMessageWaitTimeSeconds",
            "MaximumMessageSize",
            "FifoQueue",
            "ContentBasedDeduplication",
        ):
            if key in props:
                value = props[key]
                attributes[key] = str(value).lower() if isinstance(value, bool) else str(value)
        if "RedrivePolicy" in props:
            policy = props["RedrivePolicy"]
            attributes["RedrivePolicy"] = policy if isinstance(policy, str) else json.dumps(policy)
        sqs = self.clients("sqs")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
        return Physical(ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url})

    def _event_bus(self, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props["Name"]
        arn = self.clients("events").create_event_bus(Name=name)["EventBusArn"]
        return Physical(ref=name, attributes={"Arn": arn, "Name": name})

    def _user_pool(self, logical_id: str, props: dict[str, Any]) -> Physical:
        kwargs: dict[str, Any] = {"PoolName": props.get("UserPoolName") or logical_id}
        for key in (
            "Policies",
            "Schema",
            "UsernameAttributes",
            "AutoVerifiedAttributes",
            "AdminCreateUserConfig",
            "AccountRecoverySetting",
            "UserAttributeUpdateSettings",
        ):
            if key in props:
                kwargs[key] = props[key]
        pool = self.clients("cognito-idp").create_user_pool(**kwargs)["UserPool"]
        provider = f"cognito-idp.{REGION}.amazonaws.com/{pool['Id']}"
        return Physical(
            ref=pool["Id"],
            attributes={
                "Arn": pool["Arn"],
                "ProviderName": provider,
                "ProviderURL": f"https://{provider}",
                "UserPoolId": pool["Id"],
            },
        )

    def _user_pool_client(self, logical_id: str, props: dict[str, Any]) -> Physical:
        kwargs: dict[str, Any] = {
            "UserPoolId": props["UserPoolId"],
            "ClientName": props.get("ClientName") or logical_id,
            "GenerateSecret": bool(props.get("GenerateSecret", False)),
        }
        for key in (
            "ExplicitAuthFlows",
            "ReadAttributes",
            "WriteAttributes",
            "PreventUserExistenceErrors",
            "EnableTokenRevocation",
            "IdTokenValidity",
            "AccessTokenValidity",
            "RefreshTokenValidity",
            "TokenValidityUnits",
        ):
            if key in props:
                kwargs[key] = props[key]
        client = self.clients("cognito-idp").create_user_pool_client(**kwargs)["UserPoolClient"]
        return Physical(ref=client["ClientId"], attributes={"ClientId": client["ClientId"]})

    def _user_pool_group(self, logical_id: str, props: dict[str, Any]) -> Physical:
        kwargs: dict[str, Any] = {
            k: props[k] for k in ("GroupName", "UserPoolId", "Description") if k in props
        }
        if "Precedence" in props:
            kwargs["Precedence"] = int(props["Precedence"])
        self.clients("cognito-idp").create_group(**kwargs)
        return Physical(ref=props["GroupName"])

    def _email_identity(self, logical_id: str, props: dict[str, Any]) -> Physical:
        identity = props["EmailIdentity"]
        self.clients("sesv2").create_email_identity(EmailIdentity=identity)
        return Physical(ref=identity)

    def _layer(self, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("LayerName") or logical_id
        return Physical(ref=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{name}:1")

    def _http_api(self, logical_id: str, props: dict[str, Any]) -> Physical:
        api_id = "crmlocal"
        endpoint = f"https://{api_id}.execute-api.{REGION}.amazonaws.com"
        return Physical(ref=api_id, attributes={"ApiEndpoint": endpoint, "ApiId": api_id})

    def _function(self, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("FunctionName") or logical_id
        return Physical(
            ref=name, attributes={"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"}
        )


def _arn(logical_id: str) -> str:
    return f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{logical_id}"
