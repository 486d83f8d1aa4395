"""Component versions: created from inline recipes, artifacts checked and pinned in the S3 stand-in."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import yaml
from botocore.exceptions import ClientError


def test_create_list_describe_and_get_a_component_version(aws) -> None:
    data = b"print('hello')"
    uri = aws.put_artifact("com.example.Hello/1.0.0/hello.py", data)
    created = aws.gg.create_component_version(
        inlineRecipe=aws.recipe("com.example.Hello", "1.0.0", artifact=uri, ComponentDescription="says hello")
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["arn"] == aws.component_arn("com.example.Hello", "1.0.0")
    assert created["status"]["componentState"] == "DEPLOYABLE"

    described = aws.gg.describe_component(arn=created["arn"])
    assert (described["componentName"], described["description"], described["publisher"]) == (
        "com.example.Hello",
        "says hello",
        "tests",
    )
    assert described["platforms"] == [{"name": "linux", "attributes": {"os": "linux"}}]

    stored = json.loads(aws.gg.get_component(arn=created["arn"])["recipe"])
    (artifact,) = stored["Manifests"][0]["Artifacts"]
    assert artifact["Algorithm"] == "SHA-256"
    assert artifact["Digest"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    as_yaml = aws.gg.get_component(arn=created["arn"], recipeOutputFormat="YAML")
    assert as_yaml["recipeOutputFormat"] == "YAML" and yaml.safe_load(as_yaml["recipe"]) == stored

    listed = aws.gg.list_components()["components"]
    assert [(c["componentName"], c["latestVersion"]["componentVersion"]) for c in listed] == [
        ("com.example.Hello", "1.0.0")
    ]
    public = aws.gg.list_components(scope="PUBLIC")["components"]
    assert [c["componentName"] for c in public] == ["aws.greengrass.Nucleus"]


def test_versions_come_newest_first_as_gdk_expects(aws) -> None:
    for version in ("1.0.2", "1.0.10", "1.0.9", "2.0.0-rc.1"):
        aws.publish("com.example.Sorted", version)
    versions = aws.gg.list_component_versions(arn=aws.component_arn("com.example.Sorted"))[
        "componentVersions"
    ]
    assert [v["componentVersion"] for v in versions] == ["2.0.0-rc.1", "1.0.10", "1.0.9", "1.0.2"]
    unknown = aws.gg.list_component_versions(arn=aws.component_arn("com.example.Nothing"))
    assert unknown["componentVersions"] == []  # gdk's first publish relies on this (no error)


def _refusal(aws, recipe: bytes) -> ClientError:
    with pytest.raises(ClientError) as caught:
        aws.gg.create_component_version(inlineRecipe=recipe)
    return caught.value


def test_an_existing_version_is_a_conflict_and_changes_nothing(aws) -> None:
    aws.publish("com.example.Once", "1.0.0")
    before = aws.gg.get_component(arn=aws.component_arn("com.example.Once", "1.0.0"))["recipe"]
    error = _refusal(aws, aws.recipe("com.example.Once", "1.0.0", ComponentDescription="changed"))
    assert error.response["Error"]["Code"] == "ConflictException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert error.response["resourceId"] == aws.component_arn("com.example.Once", "1.0.0")
    assert aws.gg.get_component(arn=aws.component_arn("com.example.Once", "1.0.0"))["recipe"] == before


@pytest.mark.parametrize(
    ("recipe", "words"),
    [
        (b"ComponentName: [unclosed", "not YAML or JSON"),
        (b"- a list\n- not a recipe", "YAML or JSON object"),
        (b"RecipeFormatVersion: '2020-01-25'\nComponentVersion: 1.0.0\n", "ComponentName"),
        (b"RecipeFormatVersion: '2020-01-25'\nComponentName: x\nComponentVersion: one\n", "semantic version"),
    ],
)
def test_recipes_the_service_refuses(aws, recipe: bytes, words: str) -> None:
    error = _refusal(aws, recipe)
    assert error.response["Error"]["Code"] == "ValidationException"
    assert words in error.response["Error"]["Message"]
    assert aws.gg.list_components()["components"] == []


def test_a_recipe_over_16_kb_is_refused(aws) -> None:
    padded = aws.recipe("com.example.Big", "1.0.0", ComponentDescription="x" * 16_000)
    error = _refusal(aws, padded)
    assert "at most 16000 bytes" in error.response["Error"]["Message"]


def test_artifacts_must_be_readable_and_match_their_digest(aws) -> None:
    missing = f"s3://{aws.bucket}/com.example.Art/1.0.0/missing.zip"
    error = _refusal(aws, aws.recipe("com.example.Art", "1.0.0", artifact=missing))
    assert error.response["Error"]["Message"] == (
        f"Invalid Input: Encountered following errors in Artifacts: "
        f"{{{missing} = Specified artifact resource cannot be accessed}}"
    )
    other_bucket = "s3://somebody-elses-bucket/com.example.Art/1.0.0/a.zip"
    assert "cannot be accessed" in str(
        _refusal(aws, aws.recipe("com.example.Art", "1.0.0", artifact=other_bucket))
    )

    uri = aws.put_artifact("com.example.Art/1.0.0/a.py", b"one")
    document = yaml.safe_load(aws.recipe("com.example.Art", "1.0.0", artifact=uri))
    document["Manifests"][0]["Artifacts"][0]["Digest"] = base64.b64encode(
        hashlib.sha256(b"two").digest()
    ).decode()
    error = _refusal(aws, yaml.safe_dump(document).encode())
    assert "Digest in the recipe does not match the artifact" in error.response["Error"]["Message"]
    assert aws.gg.list_components()["components"] == []


def test_an_unknown_version_is_not_found(aws) -> None:
    with pytest.raises(ClientError) as caught:
        aws.gg.get_component(arn=aws.component_arn("com.example.Nope", "1.0.0"))
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
