"""Create what template.yaml declares on the local endpoint, in dependency order.

Each supported resource type has a creator that calls the same AWS API CloudFormation
would, through boto3 against the local endpoint, and returns the resource's `Ref` and
`Fn::GetAtt` values so that later resources (and the functions' environments) resolve.
Types with nothing to emulate locally (IAM roles, log groups' retention...) still get
their names, so references to them resolve: an IAM role is not created (IAM is not enforced
locally) but has its ARN, `arn:aws:iam::<account>:role/<name>`.

The HTTP API is served by the local gateway: given its URL (`api_url`), the API's
`ApiEndpoint` is that URL, and so is every `https://<api id>.execute-api.<region>.<suffix>`
a `Fn::Sub` or `Fn::Join` builds (infra/topology.py, Physical.urls): an environment's
`!Sub https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/unsubscribe` is
`http://127.0.0.1:3000/unsubscribe` in `crm dev`.

An SES email identity is verified at once (moto says so for the identity, and here also
for sending), with DKIM signing; its DKIM tokens (`DkimDNSTokenName1`..3 and their
values) are made up, as there is no DNS to publish them in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.topology import ACCOUNT_ID, REGION, Physical, Resolver

# Creation order: a resource is created after every type it can reference.
_ORDER = (
    # Roles first: they are names only (_NAMES_ONLY), and anything can name a role.
    "AWS::IAM::Role",
    # Keys next: log groups, queues and schedules can name a key to encrypt with.
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
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
    "AWS::SES::ConfigurationSetEventDestination",
    "AWS::SES::EmailIdentity",
    "AWS::S3::Bucket",
    "AWS::Scheduler::ScheduleGroup",
    "AWS::Serverless::LayerVersion",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::Function",
    "AWS::Events::Rule",  # after the functions and queues its targets name
)
# Types whose creator needs only these properties: only they are resolved, so the others
# may name anything (a function's environment another function's ARN, a role's policy the
# function it may invoke). A function's whole properties resolve later, in topology.py.
_NAMES_ONLY = {
    "AWS::Serverless::Function": ("FunctionName",),
    "AWS::IAM::Role": ("RoleName", "Path"),
}
# moto resolves a queue's RedrivePolicy when the queue is created: dead-letter queues first.
_LATER = {"AWS::SQS::Queue": lambda props: "RedrivePolicy" in props}
# Rule targets moto delivers to itself. Lambda targets are the local cloud's (shadow queues,
# infra/local/eventbridge.py); moto would try to run Docker. Others (SNS, Step Functions...) moto
# cannot deliver: it would fail the PutEvents that matches them.
_MOTO_RULE_TARGETS = ("sqs", "logs", "events")
# moto's default message for a target drops `account` and fails on a quote in a string
# field; this template gives the whole event (plus moto's own `ingestion-time`).
_WHOLE_EVENT = {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"}


@dataclass
class Provisioned:
    """What was created, by logical id, and what the local cloud does not emulate."""

    resolver: Resolver
    physical: dict[str, Physical]
    skipped: dict[str, str] = field(default_factory=dict)


# `adopt_key(logical_id, key_id)`: the key id to use for a key just created, so that a restarted
# local cloud can give the key back its saved id and material (infra/local/state.py, KeyKeeper).
KeyAdopter = Callable[[str, str], str]


class Provisioner:
    def __init__(
        self,
        clients: Callable[[str], Any],
        adopt_key: KeyAdopter | None = None,
        api_url: str | None = None,
    ) -> None:
        """`clients(service)` returns a boto3 client bound to the local endpoint; `api_url`
        is where the local gateway serves the HTTP API (`http://127.0.0.1:3000`)."""
        self.clients = clients
        self.adopt_key = adopt_key
        self.api_url = api_url.rstrip("/") if api_url else None
        self._creators: dict[str, Callable[[str, dict[str, Any]], Physical]] = {
            "AWS::KMS::Key": self._kms_key,
            "AWS::KMS::Alias": self._kms_alias,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::Events::EventBus": self._event_bus,
            "AWS::Events::Rule": self._event_rule,
            "AWS::Events::Archive": self._event_archive,
            "AWS::Cognito::UserPool": self._user_pool,
            "AWS::Cognito::UserPoolClient": self._user_pool_client,
            "AWS::Cognito::UserPoolGroup": self._user_pool_group,
            "AWS::SES::EmailIdentity": self._email_identity,
            "AWS::SES::ConfigurationSet": self._configuration_set,
            "AWS::SES::ConfigurationSetEventDestination": self._configuration_set_destination,
            "AWS::S3::Bucket": self._bucket,
            "AWS::Scheduler::ScheduleGroup": self._schedule_group,
            "AWS::Scheduler::Schedule": self._schedule,
            "AWS::Serverless::LayerVersion": self._layer,
            "AWS::Serverless::HttpApi": self._http_api,
            "AWS::Serverless::Function": self._function,
            "AWS::IAM::Role": self._iam_role,
        }

    def provision(self, template: Mapping[str, Any], parameters: Mapping[str, str]) -> Provisioned:
        physical: dict[str, Physical] = {}
        resolver = Resolver(template, parameters, physical)
        result = Provisioned(resolver=resolver, physical=physical)
        resources: dict[str, Any] = template.get("Resources") or {}
        ranked = sorted(resources.items(), key=lambda kv: _rank(kv[1], self._creators))
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
            given: dict[str, Any] = resource.get("Properties") or {}
            only = _NAMES_ONLY.get(resource["Type"])
            if only is not None:
                given = {key: given[key] for key in only if key in given}
            physical[logical_id] = creator(logical_id, resolver.resolve(given))
        return result

    # Creators ---------------------------------------------------------------------------
    def _kms_key(self, logical_id: str, props: dict[str, Any]) -> Physical:
        """A customer managed key. KeyPolicy is not passed: IAM is not enforced locally
        (tests/iac checks the policies), and moto would judge some policies itself."""
        kms = self.clients("kms")
        # CloudFormation's defaults, sent explicitly: moto would leave KeyUsage unset.
        kwargs: dict[str, Any] = {"KeyUsage": "ENCRYPT_DECRYPT", "KeySpec": "SYMMETRIC_DEFAULT"}
        for key in ("Description", "KeyUsage", "KeySpec", "MultiRegion", "Origin"):
            if key in props:
                kwargs[key] = props[key]
        key_id = kms.create_key(**kwargs)["KeyMetadata"]["KeyId"]
        if self.adopt_key is not None:
            key_id = self.adopt_key(logical_id, key_id)
        # Tags after the adoption: moto files them under the key's id.
        if props.get("Tags"):
            kms.tag_resource(
                KeyId=key_id,
                Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props["Tags"]],
            )
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=key_id)
        if props.get("Enabled") is False:
            kms.disable_key(KeyId=key_id)
        arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
        return Physical(ref=key_id, attributes={"Arn": arn, "KeyId": key_id})

    def _kms_alias(self, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props["AliasName"]
        self.clients("kms").create_alias(AliasName=name, TargetKeyId=props["TargetKeyId"])
        return Physical(ref=name)

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

    def _event_archive(self, logical_id: str, props: dict[str, Any]) -> Physical:
        """An archive of a bus: moto keeps the events, and StartReplay replays them."""
        name = props.get("ArchiveName") or logical_id
        kwargs: dict[str, Any] = {"ArchiveName": name, "EventSourceArn": props["SourceArn"]}
        pattern = props.get("EventPattern")
        if pattern:
            kwargs["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        for key in ("Description", "RetentionDays"):
            if key in props:
                kwargs[key] = int(props[key]) if key == "RetentionDays" else props[key]
        events = self.clients("events")
        try:
            arn = events.create_archive(**kwargs)["ArchiveArn"]
        except events.exceptions.ResourceAlreadyExistsException:
            arn = events.describe_archive(ArchiveName=name)["ArchiveArn"]
        return Physical(ref=name, attributes={"Arn": arn, "ArchiveName": name})

    def _event_rule(self, logical_id: str, props: dict[str, Any]) -> Physical:
        """The rule, with the targets moto delivers itself (see _MOTO_RULE_TARGETS)."""
        name = props.get("Name") or logical_id
        bus = str(props.get("EventBusName") or "default")
        bus = bus.rsplit("/", 1)[-1] if bus.startswith("arn:") else bus
        kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus}
        pattern = props.get("EventPattern")
        if pattern:
            kwargs["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        for key in ("ScheduleExpression", "State", "Description", "RoleArn"):
            if key in props:
                kwargs[key] = props[key]
        events = self.clients("events")
        arn = events.put_rule(**kwargs)["RuleArn"]
        targets = []
        for target in props.get("Targets") or []:
            parts = str(target.get("Arn", "")).split(":")
            if len(parts) < 6 or parts[2] not in _MOTO_RULE_TARGETS:
                continue
            if not {"Input", "InputPath", "InputTransformer"} & set(target):
                target = {**target, "InputTransformer": _WHOLE_EVENT}
            targets.append(target)
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        return Physical(ref=name, attributes={"Arn": arn})

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
        identity = str(props["EmailIdentity"])
        kwargs: dict[str, Any] = {"EmailIdentity": identity}
        if props.get("DkimSigningAttributes"):
            kwargs["DkimSigningAttributes"] = props["DkimSigningAttributes"]
        default_set = (props.get("ConfigurationSetAttributes") or {}).get("ConfigurationSetName")
        if default_set:
            kwargs["ConfigurationSetName"] = default_set
        if props.get("Tags"):
            kwargs["Tags"] = props["Tags"]
        self.clients("sesv2").create_email_identity(**kwargs)
        _verified_for_sending(identity)
        digest = hashlib.sha256(identity.encode()).hexdigest()
        attributes = {}
        for n in (1, 2, 3):
            token = f"local{n}{digest[8 * n : 8 * n + 24]}"
            attributes[f"DkimDNSTokenName{n}"] = f"{token}._domainkey.{identity}"
            attributes[f"DkimDNSTokenValue{n}"] = f"{token}.dkim.amazonses.com"
        return Physical(ref=identity, attributes=attributes)

    def _configuration_set(self, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("Name") or f"crm-local-{logical_id}"
        self.clients("sesv2").create_configuration_set(ConfigurationSetName=name)
        return Physical(ref=name)

    def _configuration_set_destination(self, logical_id: str, props: dict[str, Any]) -> Physical:
        """Nothing to create: moto keeps no SESv2 event destinations (and SES v1 has no
        EventBridge ones). infra/local/mail.py reads the destination from the template."""
        destination = props.get("EventDestination") or {}
        return Physical(ref=str(destination.get("Name") or logical_id))

    def _bucket(self, logical_id: str, props: dict[str, Any]) -> Physical:
        """A bucket (moto's S3 on the endpoint). Encryption, lifecycle and access blocks are
        AWS's to enforce; a restarted local cloud finds its bucket again (objects are
        not kept across restarts)."""
        name = props.get("BucketName") or f"crm-local-{logical_id.lower()}"
        s3 = self.clients("s3")
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=name)
        return Physical(
            ref=name,
            attributes={
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
            },
        )

    def _schedule_group(self, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("Name") or f"crm-local-{logical_id}"
        kwargs: dict[str, Any] = {"Name": name}
        if props.get("Tags"):
            kwargs["Tags"] = props["Tags"]
        arn = self.clients("scheduler").create_schedule_group(**kwargs)["ScheduleGroupArn"]
        return Physical(ref=name, attributes={"Arn": arn})

    def _schedule(self, logical_id: str, props: dict[str, Any]) -> Physical:
        """An AWS::Scheduler::Schedule: stored by moto, fired by infra/local/schedules.py."""
        name = props.get("Name") or f"crm-local-{logical_id}"
        kwargs: dict[str, Any] = {
            "Name": name,
            "ScheduleExpression": props["ScheduleExpression"],
            "FlexibleTimeWindow": props.get("FlexibleTimeWindow") or {"Mode": "OFF"},
            "Target": props["Target"],
        }
        for key in (
            "GroupName",
            "ScheduleExpressionTimezone",
            "StartDate",
            "EndDate",
            "State",
            "Description",
            "KmsKeyArn",
        ):
            if props.get(key):
                kwargs[key] = props[key]
        arn = self.clients("scheduler").create_schedule(**kwargs)["ScheduleArn"]
        return Physical(ref=name, attributes={"Arn": arn})

    def _layer(self, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("LayerName") or logical_id
        return Physical(ref=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{name}:1")

    def _http_api(self, logical_id: str, props: dict[str, Any]) -> Physical:
        api_id = "crmlocal"
        endpoint = f"https://{api_id}.execute-api.{REGION}.amazonaws.com"
        if self.api_url is None:
            return Physical(ref=api_id, attributes={"ApiEndpoint": endpoint, "ApiId": api_id})
        return Physical(
            ref=api_id,
            attributes={"ApiEndpoint": self.api_url, "ApiId": api_id},
            urls={endpoint: self.api_url},
        )

    def _iam_role(self, logical_id: str, props: dict[str, Any]) -> Physical:
        """A name and an ARN only: IAM is not enforced locally (tests/iac checks the
        policies). CloudFormation names an unnamed role `<stack>-<logical id>-<suffix>`."""
        name = str(props.get("RoleName") or f"crm-local-{logical_id}")
        path = str(props.get("Path") or "/")
        arn = f"arn:aws:iam::{ACCOUNT_ID}:role{path}{name}"
        role_id = "AROA" + hashlib.sha256(arn.encode()).hexdigest()[:17].upper()
        return Physical(ref=name, attributes={"Arn": arn, "RoleId": role_id})

    def _function(self, logical_id: str, props: dict[str, Any]) -> Physical:
        name = props.get("FunctionName") or logical_id
        return Physical(
            ref=name, attributes={"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"}
        )


def _verified_for_sending(identity: str) -> None:
    """moto verifies every identity but says VerifiedForSendingStatus false; the endpoint
    runs in this process (infra/local/endpoint.py), so its SES backend is at hand."""
    try:
        from moto.ses.models import ses_backends

        found = ses_backends[ACCOUNT_ID][REGION].email_identities.get(identity)
    except Exception:  # another endpoint: the status stays as moto has it
        return
    if found is not None:
        found.verified_for_sending_status = True


def _rank(resource: Mapping[str, Any], creators: Mapping[str, Any]) -> tuple[int, bool]:
    """Types not emulated first (their placeholders resolve nothing, and rules' targets may
    name them), then _ORDER's, then other created types."""
    kind = resource["Type"]
    later = _LATER.get(kind)
    delayed = bool(later and later(resource.get("Properties") or {}))
    if kind in _ORDER:
        return _ORDER.index(kind), delayed
    return (len(_ORDER) if kind in creators else -1), delayed


def _arn(logical_id: str) -> str:
    return f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{logical_id}"
