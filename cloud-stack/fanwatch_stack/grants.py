"""Least-privilege grants written out action by action.

CDK's ``grant_*`` helpers hand out action wildcards (``s3:GetObject*``, ``kms:GenerateDataKey*``,
``kms:ReEncrypt*``…) that our handlers never use. These helpers grant exactly the calls each
principal makes, and the KMS use that comes with them, so cdk-nag's IAM5 has only resource
wildcards left to judge (object keys and log streams, acknowledged with reasons in ``nag.py``).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

__all__ = ["allow", "kms_use", "objects", "stream_writer"]

_ENCRYPT = ("kms:GenerateDataKey", "kms:Decrypt")


def allow(principal: iam.IGrantable, actions: list[str], resources: list[str]) -> None:
    iam.Grant.add_to_principal(grantee=principal, actions=actions, resource_arns=resources)


def kms_use(principal: iam.IGrantable, key: kms.IKey, *actions: str) -> None:
    allow(principal, list(actions or _ENCRYPT), [key.key_arn])


def objects(
    principal: iam.IGrantable,
    bucket: s3.IBucket,
    key: kms.IKey,
    pattern: str,
    *actions: str,
    bucket_actions: tuple[str, ...] = (),
) -> None:
    """``actions`` on the objects matching ``pattern``; ``bucket_actions`` on the bucket itself."""
    allow(principal, list(actions), [bucket.arn_for_objects(pattern)])
    if bucket_actions:
        allow(principal, list(bucket_actions), [bucket.bucket_arn])
    kms_use(principal, key)


def stream_writer(principal: iam.IGrantable, stream: kinesis.IStream, key: kms.IKey) -> None:
    allow(
        principal,
        ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary"],
        [stream.stream_arn],
    )
    kms_use(principal, key, "kms:GenerateDataKey")
