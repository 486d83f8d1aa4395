"""Devices can download what gets published: the token exchange role may read every URI the recipes name.

The chain, each link read from its source: ``gdk-config.json`` names the publish bucket and gdk appends
the region and the account; gdk's build rewrites the recipes' artifact URIs to
``s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/<file>`` and publish fills them in; the template
names the artifacts bucket; the token exchange role's policy must allow ``s3:GetObject`` on each such
object and ``kms:Decrypt`` with the bucket's key. Evaluated for a region and account other than the
defaults the old gdk-config.json hard-coded.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest
import yaml

from fanwatch import build
from fanwatch.fleet.names import artifacts_bucket

REGION, ACCOUNT = "eu-west-1", "111122223333"


def _evaluate(value: Any, resources: dict[str, Any]) -> Any:
    """CloudFormation intrinsics, for the ones these resources use."""
    if isinstance(value, list):
        return [_evaluate(v, resources) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
        return pseudo.get(value["Ref"], value["Ref"])
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_evaluate(p, resources)) for p in parts)
    if "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        resource = resources[logical]
        assert attribute == "Arn", attribute
        if resource["Type"] == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{_evaluate(resource['Properties']['BucketName'], resources)}"
        if resource["Type"] == "AWS::KMS::Key":
            return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{logical}"
        raise AssertionError(f"no ARN rule for {resource['Type']}")
    return {k: _evaluate(v, resources) for k, v in value.items()}


def _allowed(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        targets = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if (
            statement["Effect"] == "Allow"
            and any(fnmatch.fnmatchcase(action, a) for a in actions)
            and any(fnmatch.fnmatchcase(resource, r) for r in targets)
        ):
            return True
    return False


@pytest.fixture(scope="module")
def role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    resources = template["Resources"]
    (role,) = [
        k
        for k, v in resources.items()
        if k.startswith("FleetTokenExchangeRole") and v["Type"] == "AWS::IAM::Role"
    ]
    statements = []
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]:
            statements += _evaluate(resource["Properties"]["PolicyDocument"], resources)["Statement"]
    return statements


def _published_uris(name: str) -> list[str]:
    """The artifact URIs of a component version as ``gdk component publish`` writes them."""
    config = json.loads((build.COMPONENTS[name].folder / "gdk-config.json").read_text())
    bucket = f"{config['component'][name]['publish']['bucket']}-{REGION}-{ACCOUNT}"  # gdk's _get_bucket
    recipe = yaml.safe_load(build.COMPONENTS[name].recipe.read_text())
    uris = {artifact["URI"] for manifest in recipe["Manifests"] for artifact in manifest["Artifacts"]}
    return [
        uri.replace("BUCKET_NAME", bucket)
        .replace("COMPONENT_NAME", name)
        .replace("COMPONENT_VERSION", "1.0.7")
        for uri in sorted(uris)
    ]


@pytest.mark.parametrize("name", list(build.COMPONENTS))
def test_the_token_exchange_role_can_read_every_published_artifact(
    template: dict[str, Any], role_statements: list[dict[str, Any]], name: str
) -> None:
    resources = template["Resources"]
    uris = _published_uris(name)
    assert uris and all(
        uri.startswith(f"s3://{artifacts_bucket(REGION, ACCOUNT)}/{name}/1.0.7/") for uri in uris
    )
    for uri in uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        assert _allowed(role_statements, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}"), uri
    (artifacts,) = [
        v for k, v in resources.items() if k.startswith("DataArtifacts") and v["Type"] == "AWS::S3::Bucket"
    ]
    assert _evaluate(artifacts["Properties"]["BucketName"], resources) == artifacts_bucket(REGION, ACCOUNT)
    (encryption,) = artifacts["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    key = _evaluate(encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"], resources)
    assert _allowed(role_statements, "kms:Decrypt", key)


def test_the_role_reads_nothing_else(role_statements: list[dict[str, Any]]) -> None:
    """Least privilege: not the lake, not other buckets, not writes to the artifacts."""
    assert not _allowed(
        role_statements, "s3:GetObject", "arn:aws:s3:::some-other-bucket/fanwatch.EdgeFilter/1.0.0/a.zip"
    )
    assert not _allowed(
        role_statements, "s3:PutObject", f"arn:aws:s3:::{artifacts_bucket(REGION, ACCOUNT)}/x"
    )
    assert not _allowed(role_statements, "s3:ListBucket", f"arn:aws:s3:::{artifacts_bucket(REGION, ACCOUNT)}")


def test_the_old_hard_coded_publish_target_is_gone() -> None:
    for component in build.COMPONENTS.values():
        config = json.loads((component.folder / "gdk-config.json").read_text())
        publish = config["component"][component.name]["publish"]
        assert "region" not in publish  # the region is the SDK's (AWS_REGION) or --region
