"""Where versions are published: the command line, the one setting, the stack's output, gdk's rule."""

from __future__ import annotations

import json

import boto3
import pytest

from fanwatch.environment import ARTIFACTS_BUCKET_VARIABLE
from fanwatch.fleet.target import TargetError, resolve_target


@pytest.fixture
def session(plane, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    for key, value in plane.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(ARTIFACTS_BUCKET_VARIABLE, raising=False)
    return boto3.Session()


def test_the_order_of_the_sources(aws, session, monkeypatch: pytest.MonkeyPatch) -> None:
    found = resolve_target(session)
    assert (found.bucket, found.region, found.account) == (aws.bucket, "us-east-1", aws.account)
    assert found.source.startswith("gdk's rule")
    template = {
        "Resources": {
            "Artifacts": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "stack-artifacts"}}
        },
        "Outputs": {"ArtifactsBucket": {"Value": {"Ref": "Artifacts"}}},
    }
    session.client("cloudformation").create_stack(
        StackName="fanwatch-cloud", TemplateBody=json.dumps(template)
    )
    found = resolve_target(session)
    assert (found.bucket, found.source) == (
        "stack-artifacts",
        "stack fanwatch-cloud's ArtifactsBucket output",
    )
    assert resolve_target(session, stack="another-stack").bucket == aws.bucket
    monkeypatch.setenv(ARTIFACTS_BUCKET_VARIABLE, "from-the-setting")
    assert resolve_target(session).bucket == "from-the-setting"
    assert resolve_target(session, bucket="from-the-command-line").bucket == "from-the-command-line"
    assert resolve_target(session, region="eu-west-1").gdk_args()[-2:] == ["--region", "eu-west-1"]


def test_no_region_is_a_clear_error(session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(TargetError, match="set AWS_REGION"):
        resolve_target(boto3.Session())
