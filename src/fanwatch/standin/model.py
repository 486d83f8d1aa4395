"""The stack's resources as the stand-in runs them: one frozen type per kind, names resolved.

:mod:`fanwatch.standin.template` builds a :class:`StackModel` from the synthesized template; the parts
of the stand-in (rules engine, event source mappings, Firehose, the functions, the registry) each take
the resources they run from it and never read the template themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fanwatch.errors import FanwatchError

__all__ = [
    "Bucket",
    "Delivery",
    "EventSourceMapping",
    "Function",
    "GlueColumn",
    "GlueTable",
    "NamedQuery",
    "Queue",
    "RuleAction",
    "StackModel",
    "Stream",
    "Table",
    "TemplateError",
    "Topic",
    "TopicRule",
]


class TemplateError(FanwatchError, ValueError):
    """The template lacks something the stand-in needs, or uses what it does not reproduce."""


@dataclass(frozen=True, slots=True)
class Stream:
    """An ``AWS::Kinesis::Stream``, with the capacity mode, shards and retention the stand-in creates it
    with."""

    logical_id: str
    name: str
    arn: str
    mode: str  # ON_DEMAND | PROVISIONED
    shard_count: int | None  # None: on-demand (AWS starts such a stream with 4 shards)
    retention_hours: int


@dataclass(frozen=True, slots=True)
class Table:
    """An ``AWS::DynamoDB::Table``, with the key schema and time-to-live attribute the stand-in creates it
    with."""

    logical_id: str
    name: str
    key: tuple[tuple[str, str, str], ...]  # (attribute, key type HASH|RANGE, attribute type S|N|B)
    ttl_attribute: str | None


@dataclass(frozen=True, slots=True)
class Bucket:
    """An ``AWS::S3::Bucket``, and whether the template turns its versioning on."""

    logical_id: str
    name: str
    versioned: bool


@dataclass(frozen=True, slots=True)
class Queue:
    """An ``AWS::SQS::Queue``, with its URL and ARN on the stand-in and its message retention."""

    logical_id: str
    name: str
    url: str
    arn: str
    retention_s: int | None


@dataclass(frozen=True, slots=True)
class Topic:
    """An ``AWS::SNS::Topic``, with its ARN on the stand-in and its display name."""

    logical_id: str
    name: str
    arn: str
    display_name: str


@dataclass(frozen=True, slots=True)
class Function:
    """An ``AWS::Lambda::Function``: the handler the stand-in imports and calls, with the environment,
    memory and timeout the template gives it."""

    logical_id: str
    name: str
    arn: str
    handler: str  # module.function, imported from the installed fanwatch package
    environment: dict[str, str]
    memory_mb: int
    timeout_s: int


@dataclass(frozen=True, slots=True)
class EventSourceMapping:
    """A Kinesis event source mapping, with every setting the template gives it."""

    logical_id: str
    function: str  # logical id of the function
    source_arn: str
    batch_size: int
    batching_window_s: float
    max_retries: int  # -1: until the record expires
    bisect_on_error: bool
    report_item_failures: bool
    on_failure_arn: str | None
    starting_position: str
    parallelization: int


@dataclass(frozen=True, slots=True)
class RuleAction:
    """One IoT rule action: its kind as the template spells it (``Kinesis``, ``S3``…) and its settings."""

    kind: str
    settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TopicRule:
    """An ``AWS::IoT::TopicRule``: its SQL, actions and error action, which the stand-in's rules engine
    runs."""

    logical_id: str
    name: str
    sql: str
    sql_version: str
    disabled: bool
    actions: tuple[RuleAction, ...]
    error_action: RuleAction | None


@dataclass(frozen=True, slots=True)
class GlueColumn:
    """A column (or partition key) of an ``AWS::Glue::Table``, with its Hive type."""

    name: str
    type: str  # Hive type: string, bigint, double, timestamp, array<string>…
    comment: str = ""


@dataclass(frozen=True, slots=True)
class GlueTable:
    """An ``AWS::Glue::Table``: the schema Firehose converts to Parquet with and the lake's queries read,
    its partition keys and its location."""

    logical_id: str
    database: str
    name: str
    columns: tuple[GlueColumn, ...]
    partition_keys: tuple[GlueColumn, ...]
    location: str
    parameters: dict[str, str]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A Firehose delivery stream with a Kinesis source, a transform Lambda and Parquet conversion."""

    logical_id: str
    name: str
    arn: str
    source_arn: str
    bucket: str
    prefix: str
    error_prefix: str
    buffer_mb: float
    buffer_s: float
    processor: str | None  # logical id of the transform function
    processor_buffer_mb: float
    processor_buffer_s: float
    table: GlueTable | None  # the schema of the Parquet conversion; None: records written as they are
    parquet_compression: str
    dynamic_partitioning: bool


@dataclass(frozen=True, slots=True)
class NamedQuery:
    """An ``AWS::Athena::NamedQuery``, which ``fanwatch lake query --named`` runs on the local lake."""

    name: str
    description: str
    database: str
    sql: str


@dataclass(frozen=True, slots=True)
class StackModel:
    """What the stand-in builds and runs, all names resolved to the stand-in's."""

    name: str
    parameters: dict[str, Any]
    streams: tuple[Stream, ...]
    tables: tuple[Table, ...]
    buckets: tuple[Bucket, ...]
    queues: tuple[Queue, ...]
    topics: tuple[Topic, ...]
    functions: tuple[Function, ...]
    mappings: tuple[EventSourceMapping, ...]
    rules: tuple[TopicRule, ...]
    deliveries: tuple[Delivery, ...]
    glue_tables: tuple[GlueTable, ...]
    queries: tuple[NamedQuery, ...]
    workgroups: tuple[str, ...] = ()
    outputs: dict[str, Any] = field(default_factory=dict)  # as CloudFormation would list them

    def function(self, logical_id: str) -> Function:
        return _by(self.functions, "logical_id", logical_id)

    def function_named(self, name_or_arn: str) -> Function:
        return _named(self.functions, "function", name_or_arn, "name", "arn", "logical_id")

    def function_with_handler(self, handler: str) -> Function:
        return _by(self.functions, "handler", handler)

    def stream(self, name_or_arn: str) -> Stream:
        return _named(self.streams, "stream", name_or_arn, "name", "arn", "logical_id")

    def queue(self, name_url_or_arn: str) -> Queue:
        return _named(self.queues, "queue", name_url_or_arn, "name", "url", "arn", "logical_id")

    def topic(self, logical_id: str) -> Topic:
        return _by(self.topics, "logical_id", logical_id)

    def mapping_for(self, handler: str) -> EventSourceMapping:
        function = self.function_with_handler(handler)
        return _by(self.mappings, "function", function.logical_id)

    def glue_table(self, name: str) -> GlueTable:
        return _by(self.glue_tables, "name", name)


def _by(items: tuple[Any, ...], attribute: str, value: str) -> Any:
    found = [i for i in items if getattr(i, attribute) == value]
    if len(found) != 1:
        raise TemplateError(f"{len(found)} resources with {attribute} {value!r} in the template")
    return found[0]


def _named(items: tuple[Any, ...], kind: str, value: str, *attributes: str) -> Any:
    """The first of ``items`` that any of ``attributes`` names ``value`` (a name, an ARN, a URL…)."""
    for item in items:
        if any(getattr(item, a) == value for a in attributes):
            return item
    raise TemplateError(f"no {kind} {value} in the template")
