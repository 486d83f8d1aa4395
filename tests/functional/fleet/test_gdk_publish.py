"""The real GDK CLI, unchanged, builds and publishes to the local stand-ins with ``AWS_ENDPOINT_URL``.

``gdk component publish`` calls STS, ``greengrassv2`` (the highest version, then CreateComponentVersion)
and S3 (the bucket, the upload): every call lands on the one local endpoint. The bucket and region come
from ``fanwatch fleet bucket --gdk-args``, as the README says.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gdk, pytest.mark.slow]


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def environment(plane, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"  # no ~/.aws of the machine's user
    home.mkdir()
    return {**os.environ, **plane.environment(), "HOME": str(home), "AWS_CONFIG_FILE": str(home / "config")}


def test_gdk_builds_and_publishes_to_the_stand_ins(
    gdk_cli: Path, gdk_checkout: Path, aws, environment
) -> None:
    folder = gdk_checkout / "components" / "fanwatch.EdgeFilter"
    target = _run([sys.executable, "-m", "fanwatch", "fleet", "bucket", "--gdk-args"], folder, environment)
    assert target.returncode == 0, target.stderr
    assert target.stdout.split() == ["--bucket", aws.bucket, "--region", aws.region]
    built = _run([str(gdk_cli), "component", "build"], folder, environment)
    assert built.returncode == 0, built.stdout + built.stderr
    for expected in ("1.0.0", "1.0.1"):  # NEXT_PATCH against the versions in the account
        published = _run([str(gdk_cli), "component", "publish", *target.stdout.split()], folder, environment)
        assert published.returncode == 0, published.stdout + published.stderr
        assert f"Created private version '{expected}'" in published.stdout + published.stderr
    arn = aws.component_arn("fanwatch.EdgeFilter", "1.0.1")
    recipe = json.loads(aws.gg.get_component(arn=arn)["recipe"])
    uris = {a["URI"]: a["Digest"] for m in recipe["Manifests"] for a in m["Artifacts"]}
    key = "fanwatch.EdgeFilter/1.0.1/fanwatch_edgefilter.zip"
    assert list(uris) == [f"s3://{aws.bucket}/{key}"]
    uploaded = aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()
    built_zip = folder / "greengrass-build/artifacts/fanwatch.EdgeFilter/NEXT_PATCH/fanwatch_edgefilter.zip"
    assert uploaded == built_zip.read_bytes()
    assert uris[f"s3://{aws.bucket}/{key}"] == base64.b64encode(hashlib.sha256(uploaded).digest()).decode()


def test_gdk_overwrites_the_artifact_of_a_version_that_exists(
    gdk_cli: Path, gdk_checkout: Path, aws, environment
) -> None:
    """Why ``fanwatch fleet publish`` refuses before uploading: gdk uploads first, then the service
    refuses the version, and the artifact no longer matches the digest every device checks."""
    folder = gdk_checkout / "components" / "fanwatch.EdgeFilter"
    config_file = folder / "gdk-config.json"
    config = json.loads(config_file.read_text())
    config["component"]["fanwatch.EdgeFilter"]["version"] = "1.0.0"
    config_file.write_text(json.dumps(config))
    args = ["--bucket", aws.bucket, "--region", aws.region]
    assert _run([str(gdk_cli), "component", "build"], folder, environment).returncode == 0
    first = _run([str(gdk_cli), "component", "publish", *args], folder, environment)
    assert first.returncode == 0, first.stdout + first.stderr
    changed = gdk_checkout / "src/fanwatch/edge/alerts.py"
    changed.write_text(changed.read_text() + "# a change made after 1.0.0 was published\n")
    assert _run([str(gdk_cli), "component", "build"], folder, environment).returncode == 0
    second = _run([str(gdk_cli), "component", "publish", *args], folder, environment)
    assert second.returncode != 0 and "ConflictException" in second.stdout + second.stderr
    recipe = json.loads(aws.gg.get_component(arn=aws.component_arn("fanwatch.EdgeFilter", "1.0.0"))["recipe"])
    (digest,) = {a["Digest"] for m in recipe["Manifests"] for a in m["Artifacts"]}
    now = aws.s3.get_object(Bucket=aws.bucket, Key="fanwatch.EdgeFilter/1.0.0/fanwatch_edgefilter.zip")[
        "Body"
    ].read()
    assert base64.b64encode(hashlib.sha256(now).digest()).decode() != digest  # devices would refuse it
