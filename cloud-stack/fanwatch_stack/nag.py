"""cdk-nag AwsSolutions findings we accept, each with the reason it is right for fanwatch.

Every acknowledgement names one rule (and, for IAM5, the one wildcard) on one construct, so a new
wildcard anywhere fails synthesis until someone writes down why it is needed.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Acknowledgment, Stack, Validations

__all__ = ["ACKNOWLEDGED", "acknowledge_findings"]

_PY312 = (
    "The handlers and the numpy layer are built for CPython 3.12 (the runtime the project targets "
    "and tests on); moving to a newer runtime means rebuilding the layer for it, a deliberate upgrade."
)

#: construct path (under the stack) -> [(rule id, reason)]
ACKNOWLEDGED: Final[dict[str, list[tuple[str, str]]]] = {
    "Data/Telemetry": [
        (
            "AwsSolutions-KDS3",
            "Encrypted with the stack's customer-managed KMS key (rotated "
            "yearly), which cdk-nag cannot resolve from the key's ARN token.",
        )
    ],
    "Data/Anomalies": [
        (
            "AwsSolutions-KDS3",
            "Encrypted with the stack's customer-managed KMS key (rotated "
            "yearly), which cdk-nag cannot resolve from the key's ARN token.",
        )
    ],
    "Data/DeadLetters/Resource": [
        (
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue itself (the "
            "handlers' rejects and the event source mappings' on-failure records); a "
            "queue behind it would only move the same messages again.",
        )
    ],
    "Fleet/TokenExchangeRole/DefaultPolicy/Resource": [
        (
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            "/aws/greengrass/*]",
            "The Greengrass log manager creates one log group per component under "
            "/aws/greengrass/; the names are not known when the stack is deployed.",
        ),
        (
            "AwsSolutions-IAM5[Resource::<DataArtifacts5613094C.Arn>/*]",
            "Devices download component artifacts "
            "keyed by component name and version, which change with every release; read-only, one bucket.",
        ),
    ],
    "Fleet/ProvisioningRole/DefaultPolicy/Resource": [
        (
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:thing/*]",
            "Fleet provisioning creates a thing named by the enrolling device; the name is unknown in "
            "advance. The template puts it only in the fleet group and attaches only the core device policy.",
        ),
        (
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:<AWS::Region>:<AWS::AccountId>:cert/*]",
            "Fleet provisioning activates the certificate the enrolling device just created; its id is "
            "unknown in advance.",
        ),
        (
            "AwsSolutions-IAM5[Resource::*]",
            "iot:RegisterThing and iot:CreateCertificateFromCsr support no "
            "resource-level permissions (IAM service authorization reference).",
        ),
    ],
    "Fleet/RuleRole/DefaultPolicy/Resource": [
        (
            "AwsSolutions-IAM5[Resource::<DataLake1AA8665A.Arn>/errors/iot/*]",
            "The IoT rules' error action writes one object per failed message (topic, time and a UUID in "
            "the key), under errors/iot/ only.",
        ),
    ],
    "Functions/DetectorRole/DefaultPolicy/Resource": [
        (
            "AwsSolutions-IAM5[Resource::<DataModels253B5D42.Arn>/models/*]",
            "One forest checkpoint object per "
            "fan, named by thing and fan, which join the fleet over time; get and put only, under models/.",
        ),
    ],
    "Lake/ReadingsDeliveryRole/DefaultPolicy/Resource": [
        (
            "AwsSolutions-IAM5[Resource::<DataLake1AA8665A.Arn>/readings/*]",
            "Firehose writes Parquet objects under readings/ with day and thing partitions in the key.",
        ),
        (
            "AwsSolutions-IAM5[Resource::<DataLake1AA8665A.Arn>/errors/readings/*]",
            "Firehose writes records it "
            "could not convert under errors/readings/, keyed by error type and day.",
        ),
    ],
    "Lake/EventsDeliveryRole/DefaultPolicy/Resource": [
        (
            "AwsSolutions-IAM5[Resource::<DataLake1AA8665A.Arn>/events/*]",
            "Firehose writes Parquet objects under events/ with day and thing partitions in the key.",
        ),
        (
            "AwsSolutions-IAM5[Resource::<DataLake1AA8665A.Arn>/errors/events/*]",
            "Firehose writes records it could not convert under errors/events/, keyed by error type and day.",
        ),
    ],
    "Lake/ReadingsDelivery": [
        (
            "AwsSolutions-KDF1",
            "A delivery stream reading a Kinesis stream cannot "
            "enable its own server-side encryption; records stay encrypted with the KMS "
            "key in the source stream and in S3.",
        )
    ],
    "Lake/EventsDelivery": [
        (
            "AwsSolutions-KDF1",
            "A delivery stream reading a Kinesis stream cannot "
            "enable its own server-side encryption; records stay encrypted with the KMS "
            "key in the source stream and in S3.",
        )
    ],
    **{
        f"Functions/{name}/Resource": [("AwsSolutions-L1", _PY312)]
        for name in ("Detector", "Notifier", "NotifierSweep", "LakeTransform")
    },
}


def acknowledge_findings(stack: Stack) -> None:
    for path, findings in ACKNOWLEDGED.items():
        construct = stack.node.find_child(path.split("/")[0])
        for part in path.split("/")[1:]:
            construct = construct.node.find_child(part)
        Validations.of(construct).acknowledge(
            *(Acknowledgment(id=rule, reason=why) for rule, why in findings)
        )
