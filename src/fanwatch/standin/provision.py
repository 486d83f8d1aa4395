"""Create the stack's resources in moto, from the :class:`~fanwatch.standin.template.StackModel`.

What CloudFormation would create, minus what the stand-in does not reproduce: KMS encryption (moto
would accept it, but nothing local needs it to be real), IAM roles and policies (moto does not
enforce them), lifecycle rules, alarms and the dashboard. The IoT rules and the fleet's thing group
are stored in moto's IoT registry so that ``aws iot list-topic-rules`` against the stand-in shows them;
:mod:`fanwatch.standin.rules` runs them.
"""

from __future__ import annotations

import re
from typing import Any

from fanwatch.standin.endpoint import AwsEndpoint
from fanwatch.standin.model import RuleAction, StackModel, TemplateError

__all__ = ["provision"]


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase keys as the IoT API spells them (``StreamName`` -> ``streamName``)."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _action(action: RuleAction) -> dict[str, Any]:
    return {action.kind[:1].lower() + action.kind[1:]: _camel(action.settings)}


def provision(model: StackModel, endpoint: AwsEndpoint) -> None:
    """Create every stream, table, bucket, queue, topic and rule of ``model`` on ``endpoint``."""
    kinesis = endpoint.client("kinesis")
    for stream in model.streams:
        if stream.shard_count is None:
            kinesis.create_stream(StreamName=stream.name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        else:
            kinesis.create_stream(
                StreamName=stream.name,
                ShardCount=stream.shard_count,
                StreamModeDetails={"StreamMode": "PROVISIONED"},
            )
        if stream.retention_hours > 24:
            kinesis.increase_stream_retention_period(
                StreamName=stream.name, RetentionPeriodHours=stream.retention_hours
            )

    dynamodb = endpoint.client("dynamodb")
    for table in model.tables:
        dynamodb.create_table(
            TableName=table.name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, _k, t in table.key],
            KeySchema=[{"AttributeName": n, "KeyType": k} for n, k, _t in table.key],
        )
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )

    s3 = endpoint.client("s3")
    for bucket in model.buckets:
        where = {} if endpoint.region == "us-east-1" else {"LocationConstraint": endpoint.region}
        s3.create_bucket(Bucket=bucket.name, **({"CreateBucketConfiguration": where} if where else {}))
        if bucket.versioned:
            s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})

    sqs = endpoint.client("sqs")
    for queue in model.queues:
        attributes = {"MessageRetentionPeriod": str(queue.retention_s)} if queue.retention_s else {}
        url = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
        if url != queue.url:  # the handlers' environment was resolved to the predicted URL
            raise TemplateError(f"queue {queue.name}: moto answered {url}, the template resolved {queue.url}")

    sns = endpoint.client("sns")
    for topic in model.topics:
        arn = sns.create_topic(Name=topic.name, Attributes={"DisplayName": topic.display_name})["TopicArn"]
        if arn != topic.arn:
            raise TemplateError(f"topic {topic.name}: moto answered {arn}, the template resolved {topic.arn}")

    iot = endpoint.client("iot")
    for rule in model.rules:
        payload: dict[str, Any] = {
            "sql": rule.sql,
            "awsIotSqlVersion": rule.sql_version,
            "ruleDisabled": rule.disabled,
            "actions": [_action(a) for a in rule.actions],
        }
        if rule.error_action is not None:
            payload["errorAction"] = _action(rule.error_action)
        if not re.fullmatch(r"[a-zA-Z0-9_]+", rule.name):
            raise TemplateError(f"rule name {rule.name!r}: IoT allows letters, digits and underscores only")
        iot.create_topic_rule(ruleName=rule.name, topicRulePayload=payload)
