"""The cloud stack as the stand-in reads it: the synthesized CloudFormation template, turned into types.

The stand-in creates nothing from a list of its own: streams and shard counts, tables, queues, topics
and buckets, the functions with their environment, the event source mappings' settings, the IoT rules
and the Firehose deliveries with their Glue schema all come from the template, with the parameters'
defaults unless the caller chooses other values. Resources without an explicit name get a stable one
made from the stack name and the construct's logical id (``fanwatch-cloud-data-dead-letters``).

The template is the checked-in copy of what ``make synth`` writes (``cloud-stack/template/``), so the
demo needs neither Node.js nor the CDK; a test synthesizes the stack and fails when the copy is stale.
``make synth`` refreshes it (:mod:`fanwatch.standin.refresh`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from fanwatch.standin.endpoint import AwsEndpoint
from fanwatch.standin.intrinsics import IntrinsicError, Resolver
from fanwatch.standin.model import (
    Bucket,
    Delivery,
    EventSourceMapping,
    Function,
    GlueColumn,
    GlueTable,
    NamedQuery,
    Queue,
    RuleAction,
    StackModel,
    Stream,
    Table,
    TemplateError,
    Topic,
    TopicRule,
)

__all__ = ["STACK_NAME", "TEMPLATE", "build_model", "load_template", "normalized"]

ROOT: Final = Path(__file__).resolve().parents[3]
#: The checked-in synthesized template (normalised: asset hashes replaced, see :func:`normalized`).
TEMPLATE: Final = ROOT / "cloud-stack" / "template" / "fanwatch-cloud.template.json"
STACK_NAME: Final = "fanwatch-cloud"

#: The property that names a resource explicitly, per type (dotted for nested ones).
_NAME_PROPERTY: Final = {
    "AWS::Kinesis::Stream": "Name",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
    "AWS::IoT::TopicRule": "RuleName",
    "AWS::IoT::ThingGroup": "ThingGroupName",
    "AWS::IoT::Policy": "PolicyName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Glue::Database": "DatabaseInput.Name",
    "AWS::Glue::Table": "TableInput.Name",
    "AWS::Athena::WorkGroup": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
}
_CDK_HASH: Final = re.compile(r"[0-9A-F]{8}$")
_ASSET_KEY: Final = re.compile(r"^[0-9a-f]{64}\.zip$")


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The synthesized template as JSON (by default the checked-in copy); a missing one says to run
    ``make synth``."""
    if not path.is_file():
        raise TemplateError(f"no synthesized template at {path}: run `make synth`")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def normalized(template: Mapping[str, Any]) -> dict[str, Any]:
    """``template`` without what changes with every source edit: the Lambda asset keys (content
    hashes of the code and layer) and the layer's description (the versions pip resolved)."""
    out: dict[str, Any] = json.loads(json.dumps(template))
    for resource in out.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for holder in (properties.get("Code"), properties.get("Content")):
            if isinstance(holder, dict) and _ASSET_KEY.match(str(holder.get("S3Key", ""))):
                holder["S3Key"] = "<asset>.zip"
        if resource.get("Type") == "AWS::Lambda::LayerVersion" and "Description" in properties:
            properties["Description"] = "<layer requirements>"
    return out


def _kebab(logical_id: str) -> str:
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|$)|[A-Z]?[a-z]+|\d+", _CDK_HASH.sub("", logical_id))
    return "-".join(w.lower() for w in words)


def _dig(properties: Mapping[str, Any], dotted: str) -> Any:
    value: Any = properties
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


# --- building it -------------------------------------------------------------------------------


class _Builder:
    def __init__(
        self,
        template: Mapping[str, Any],
        endpoint: AwsEndpoint,
        overrides: Mapping[str, Any],
        stack_name: str,
    ) -> None:
        self.template = template
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.endpoint = endpoint
        self.stack_name = stack_name
        declared = template.get("Parameters", {})
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"the template has no parameter(s) {', '.join(unknown)}")
        self.parameters: dict[str, Any] = {}
        for name, spec in declared.items():
            value = overrides.get(name, spec.get("Default"))
            if value is None:
                raise TemplateError(f"parameter {name} has no default: give it a value")
            self.parameters[name] = _typed(value, spec.get("Type", "String"))
        self.names: dict[str, str] = {}
        self.resolver = Resolver(
            template,
            parameters=self.parameters,
            pseudo={
                "AWS::Region": endpoint.region,
                "AWS::AccountId": endpoint.account,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": stack_name,
                "AWS::StackId": endpoint.arn("cloudformation", f"stack/{stack_name}/local"),
                "AWS::NotificationARNs": "",
            },
            attributes=self.attribute,
        )

    def name(self, logical_id: str) -> str:
        if logical_id not in self.names:
            resource = self.resources[logical_id]
            kind = resource["Type"]
            explicit = _NAME_PROPERTY.get(kind)
            value = _dig(resource.get("Properties", {}), explicit) if explicit else None
            if value is not None:
                name = str(self.resolver.resolve(value, f"{logical_id}.{explicit}"))
            else:
                name = f"{self.stack_name}-{_kebab(logical_id)}"
                if kind == "AWS::S3::Bucket":
                    name = name.lower()[:63]
                elif kind in ("AWS::Glue::Database", "AWS::Glue::Table"):
                    name = name.replace("-", "_")
            self.names[logical_id] = name
        return self.names[logical_id]

    def attribute(self, logical_id: str, attribute: str | None) -> Any:
        if logical_id not in self.resources:
            raise IntrinsicError(f"no resource {logical_id}")
        kind = self.resources[logical_id]["Type"]
        name = self.name(logical_id)
        e = self.endpoint
        arns = {
            "AWS::Kinesis::Stream": e.arn("kinesis", f"stream/{name}"),
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::SQS::Queue": e.arn("sqs", name),
            "AWS::SNS::Topic": e.arn("sns", name),
            "AWS::DynamoDB::Table": e.arn("dynamodb", f"table/{name}"),
            "AWS::Lambda::Function": e.arn("lambda", f"function:{name}"),
            "AWS::Lambda::LayerVersion": e.arn("lambda", f"layer:{name}:1"),
            "AWS::KMS::Key": e.arn("kms", f"key/{name}"),
            "AWS::IAM::Role": f"arn:aws:iam::{e.account}:role/{name}",
            "AWS::KinesisFirehose::DeliveryStream": e.arn("firehose", f"deliverystream/{name}"),
            "AWS::IoT::TopicRule": e.arn("iot", f"rule/{name}"),
            "AWS::Logs::LogGroup": e.arn("logs", f"log-group:{name}:*"),
        }
        arn = arns.get(kind, e.arn(kind.split("::")[1].lower(), f"{_kebab(kind.split('::')[2])}/{name}"))
        if attribute is None:
            ref = {
                "AWS::SQS::Queue": f"{e.url}/{e.account}/{name}",
                "AWS::SNS::Topic": arn,
                "AWS::Lambda::LayerVersion": arn,
            }
            return ref.get(kind, name)
        values = {
            "Arn": arn,
            "StreamArn": arn,
            "TopicArn": arn,
            "QueueName": name,
            "QueueUrl": f"{e.url}/{e.account}/{name}",
            "TopicName": name,
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{e.region}.amazonaws.com",
            "RoleId": f"AROA{abs(hash(name)) % 10**16:016d}",
            "RoleAliasArn": e.arn("iot", f"rolealias/{name}"),
            "Id": name,
            "KeyId": name,
        }
        if attribute not in values:
            raise IntrinsicError(f"GetAtt {logical_id}.{attribute}: not an attribute the stand-in knows")
        return values[attribute]

    def of_type(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """(logical id, resolved properties) of each resource of ``kind`` whose condition holds."""
        out = []
        for logical_id, resource in self.resources.items():
            if resource["Type"] != kind:
                continue
            if "Condition" in resource and not self.resolver.condition(resource["Condition"]):
                continue
            out.append((logical_id, self.resolver.resolve(resource.get("Properties", {}), logical_id)))
        return out

    def build(self) -> StackModel:
        glue_tables = tuple(self._glue_table(i, p) for i, p in self.of_type("AWS::Glue::Table"))
        return StackModel(
            name=self.stack_name,
            parameters=self.parameters,
            streams=tuple(self._stream(i, p) for i, p in self.of_type("AWS::Kinesis::Stream")),
            tables=tuple(self._table(i, p) for i, p in self.of_type("AWS::DynamoDB::Table")),
            buckets=tuple(
                Bucket(i, self.name(i), _dig(p, "VersioningConfiguration.Status") == "Enabled")
                for i, p in self.of_type("AWS::S3::Bucket")
            ),
            queues=tuple(
                Queue(
                    i,
                    self.name(i),
                    self.attribute(i, None),
                    self.attribute(i, "Arn"),
                    _int(p.get("MessageRetentionPeriod")),
                )
                for i, p in self.of_type("AWS::SQS::Queue")
            ),
            topics=tuple(
                Topic(i, self.name(i), self.attribute(i, "TopicArn"), str(p.get("DisplayName", "")))
                for i, p in self.of_type("AWS::SNS::Topic")
            ),
            functions=tuple(self._function(i, p) for i, p in self.of_type("AWS::Lambda::Function")),
            mappings=tuple(self._mapping(i, p) for i, p in self.of_type("AWS::Lambda::EventSourceMapping")),
            rules=tuple(self._rule(i, p) for i, p in self.of_type("AWS::IoT::TopicRule")),
            deliveries=tuple(
                self._delivery(i, p, glue_tables)
                for i, p in self.of_type("AWS::KinesisFirehose::DeliveryStream")
            ),
            glue_tables=glue_tables,
            queries=tuple(
                NamedQuery(p["Name"], p.get("Description", ""), p["Database"], p["QueryString"])
                for _i, p in self.of_type("AWS::Athena::NamedQuery")
            ),
            workgroups=tuple(str(p["Name"]) for _i, p in self.of_type("AWS::Athena::WorkGroup")),
            outputs={
                key: self.resolver.resolve(output["Value"], f"Outputs.{key}")
                for key, output in self.template.get("Outputs", {}).items()
                if "Condition" not in output or self.resolver.condition(output["Condition"])
            },
        )

    def _stream(self, logical_id: str, p: dict[str, Any]) -> Stream:
        mode = _dig(p, "StreamModeDetails.StreamMode") or "PROVISIONED"
        count = p.get("ShardCount")
        if mode == "PROVISIONED" and count is None:
            count = 1  # CloudFormation's default for a provisioned stream without ShardCount
        return Stream(
            logical_id,
            self.name(logical_id),
            self.attribute(logical_id, "Arn"),
            mode,
            None if count is None else int(count),
            int(p.get("RetentionPeriodHours", 24)),
        )

    def _table(self, logical_id: str, p: dict[str, Any]) -> Table:
        types = {a["AttributeName"]: a["AttributeType"] for a in p.get("AttributeDefinitions", [])}
        key = tuple((k["AttributeName"], k["KeyType"], types[k["AttributeName"]]) for k in p["KeySchema"])
        ttl = p.get("TimeToLiveSpecification") or {}
        return Table(
            logical_id, self.name(logical_id), key, ttl.get("AttributeName") if ttl.get("Enabled") else None
        )

    def _function(self, logical_id: str, p: dict[str, Any]) -> Function:
        variables = _dig(p, "Environment.Variables") or {}
        return Function(
            logical_id,
            self.name(logical_id),
            self.attribute(logical_id, "Arn"),
            str(p["Handler"]),
            {k: _text(v) for k, v in variables.items()},
            int(p.get("MemorySize", 128)),
            int(p.get("Timeout", 3)),
        )

    def _function_id(self, reference: str, where: str) -> str:
        for logical_id, resource in self.resources.items():
            if resource["Type"] == "AWS::Lambda::Function" and reference in (
                self.name(logical_id),
                self.attribute(logical_id, "Arn"),
            ):
                return logical_id
        raise TemplateError(f"{where}: function {reference} is not in the template")

    def _mapping(self, logical_id: str, p: dict[str, Any]) -> EventSourceMapping:
        source = str(p["EventSourceArn"])
        if ":kinesis:" not in source:
            raise TemplateError(f"{logical_id}: the stand-in runs Kinesis event sources only, not {source}")
        return EventSourceMapping(
            logical_id,
            self._function_id(str(p["FunctionName"]), logical_id),
            source,
            int(p.get("BatchSize", 100)),
            float(p.get("MaximumBatchingWindowInSeconds", 0)),
            int(p.get("MaximumRetryAttempts", -1)),
            bool(p.get("BisectBatchOnFunctionError", False)),
            "ReportBatchItemFailures" in p.get("FunctionResponseTypes", []),
            _dig(p, "DestinationConfig.OnFailure.Destination"),
            str(p.get("StartingPosition", "LATEST")),
            int(p.get("ParallelizationFactor", 1)),
        )

    def _rule(self, logical_id: str, p: dict[str, Any]) -> TopicRule:
        payload = p["TopicRulePayload"]

        def action(raw: dict[str, Any]) -> RuleAction:
            ((kind, settings),) = raw.items()
            return RuleAction(kind, dict(settings))

        error = payload.get("ErrorAction")
        return TopicRule(
            logical_id,
            self.name(logical_id),
            str(payload["Sql"]),
            str(payload.get("AwsIotSqlVersion", "2015-10-08")),
            bool(payload.get("RuleDisabled", False)),
            tuple(action(a) for a in payload.get("Actions", [])),
            action(error) if error else None,
        )

    def _glue_table(self, logical_id: str, p: dict[str, Any]) -> GlueTable:
        table = p["TableInput"]
        storage = table.get("StorageDescriptor", {})

        def columns(raw: list[dict[str, Any]]) -> tuple[GlueColumn, ...]:
            return tuple(GlueColumn(c["Name"], c["Type"], c.get("Comment", "")) for c in raw)

        return GlueTable(
            logical_id,
            str(p["DatabaseName"]),
            str(table["Name"]),
            columns(storage.get("Columns", [])),
            columns(table.get("PartitionKeys", [])),
            str(storage.get("Location", "")),
            {k: _text(v) for k, v in table.get("Parameters", {}).items()},
        )

    def _delivery(self, logical_id: str, p: dict[str, Any], tables: tuple[GlueTable, ...]) -> Delivery:
        if p.get("DeliveryStreamType") != "KinesisStreamAsSource":
            raise TemplateError(f"{logical_id}: the stand-in runs deliveries with a Kinesis source only")
        s3 = p.get("ExtendedS3DestinationConfiguration")
        if s3 is None:
            raise TemplateError(f"{logical_id}: the stand-in writes to S3 (ExtendedS3Destination) only")
        processor, processor_mb, processor_s = None, 1.0, 60.0  # Firehose's defaults for a Lambda
        for proc in _dig(s3, "ProcessingConfiguration.Processors") or []:
            if proc.get("Type") != "Lambda" or not _dig(s3, "ProcessingConfiguration.Enabled"):
                continue
            params = {x["ParameterName"]: x["ParameterValue"] for x in proc.get("Parameters", [])}
            processor = self._function_id(str(params["LambdaArn"]), logical_id)
            processor_mb = float(params.get("BufferSizeInMBs", processor_mb))
            processor_s = float(params.get("BufferIntervalInSeconds", processor_s))
        conversion = s3.get("DataFormatConversionConfiguration") or {}
        table = None
        compression = "SNAPPY"
        if conversion.get("Enabled"):
            schema = conversion["SchemaConfiguration"]
            found = [
                t for t in tables if (t.database, t.name) == (schema["DatabaseName"], schema["TableName"])
            ]
            if len(found) != 1:
                raise TemplateError(
                    f"{logical_id}: no Glue table {schema['DatabaseName']}.{schema['TableName']}"
                )
            table = found[0]
            serializer = _dig(conversion, "OutputFormatConfiguration.Serializer") or {}
            if "ParquetSerDe" not in serializer:
                raise TemplateError(f"{logical_id}: the stand-in converts to Parquet only")
            compression = str(serializer["ParquetSerDe"].get("Compression", "SNAPPY"))
        bucket_arn = str(s3["BucketARN"])
        hints = s3.get("BufferingHints") or {}
        return Delivery(
            logical_id,
            self.name(logical_id),
            self.attribute(logical_id, "Arn"),
            str(_dig(p, "KinesisStreamSourceConfiguration.KinesisStreamARN")),
            bucket_arn.rsplit(":", 1)[-1],
            str(s3.get("Prefix", "")),
            str(s3.get("ErrorOutputPrefix", "")),
            float(hints.get("SizeInMBs", 5)),
            float(hints.get("IntervalInSeconds", 300)),
            processor,
            processor_mb,
            processor_s,
            table,
            compression,
            bool(_dig(s3, "DynamicPartitioningConfiguration.Enabled")),
        )


def _typed(value: Any, kind: str) -> Any:
    if kind == "Number":
        number = float(value)
        return int(number) if number.is_integer() else number
    return value


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _text(value: Any) -> str:
    """An environment value as Lambda gets it: a string (numbers as CloudFormation writes them)."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def build_model(
    template: Mapping[str, Any],
    endpoint: AwsEndpoint,
    *,
    parameters: Mapping[str, Any] | None = None,
    stack_name: str = STACK_NAME,
) -> StackModel:
    """The stack as the stand-in runs it, for ``endpoint``; ``parameters`` override the defaults."""
    try:
        return _Builder(template, endpoint, parameters or {}, stack_name).build()
    except IntrinsicError as exc:
        raise TemplateError(str(exc)) from None
