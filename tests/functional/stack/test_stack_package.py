"""``fanwatch stack package``: the template synthesized against the user's bucket, the Lambda zips under
the keys it names, each holding its handler, and the upload commands of deploy.sh that put them there
(run with the AWS CLI against moto where the CLI is installed)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from fanwatch.stack.package import CLOUDFORMATION_INLINE_LIMIT, Package, PackageError, package, verify
from fanwatch.standin import AwsEndpoint

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

BUCKET = "fanwatch-deploy-test"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Package:
    return package(tmp_path_factory.mktemp("package"), bucket=BUCKET)  # one synthesis (~20 s)


def code_references(template: dict) -> dict[str, tuple[str, str, str | None]]:  # type: ignore[type-arg]
    out = {}
    for logical_id, resource in template["Resources"].items():
        props = resource["Properties"]
        if resource["Type"] == "AWS::Lambda::Function":
            out[logical_id] = (props["Code"]["S3Bucket"], props["Code"]["S3Key"], props["Handler"])
        elif resource["Type"] == "AWS::Lambda::LayerVersion":
            out[logical_id] = (props["Content"]["S3Bucket"], props["Content"]["S3Key"], None)
    return out


def test_the_template_reads_every_function_from_a_packaged_zip_that_holds_its_handler(
    packaged: Package,
) -> None:
    template = json.loads(packaged.template.read_text())
    assert packaged.template.stat().st_size > CLOUDFORMATION_INLINE_LIMIT  # why deploy needs --s3-bucket
    refs = code_references(template)
    assert len([r for r in refs.values() if r[2]]) >= 4 and any(r[2] is None for r in refs.values())
    files = {f"s3://{u.bucket}/{u.key}": u.file for u in packaged.uploads}
    for bucket, key, handler in refs.values():
        assert bucket == BUCKET
        with zipfile.ZipFile(files[f"s3://{bucket}/{key}"]) as archive:
            names = set(archive.namelist())
        if handler:
            module, function = handler.rsplit(".", 1)
            assert f"{module.replace('.', '/')}.py" in names
            source = archive_text(files[f"s3://{bucket}/{key}"], f"{module.replace('.', '/')}.py")
            assert f"def {function}(" in source or f"{function} =" in source, handler
        else:
            assert "python/numpy/__init__.py" in names and any(
                n.startswith("python/aws_lambda_powertools/") for n in names
            )


def archive_text(path: Path, name: str) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name).decode()


def test_deploy_sh_uploads_each_zip_where_the_template_reads_it_then_deploys_with_s3_bucket(
    packaged: Package, moto: AwsEndpoint
) -> None:
    script = packaged.script.read_text().splitlines()
    uploads = [shlex.split(line) for line in script if line.startswith("aws s3 cp ")]
    (deploy,) = [
        shlex.split(line.removesuffix(' "$@"')) for line in script if "cloudformation deploy" in line
    ]
    assert deploy[deploy.index("--s3-bucket") + 1] == BUCKET
    assert deploy[deploy.index("--template-file") + 1] == packaged.template.name
    assert {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"} <= set(deploy)
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    cli = shutil.which("aws")
    env = {**os.environ, **moto.environment()}
    for command in uploads:
        assert (packaged.script.parent / command[3]).is_file(), command
        if cli:  # as a user runs it
            subprocess.run(
                [cli, *command[1:], "--only-show-errors"], cwd=packaged.script.parent, env=env, check=True
            )
        else:
            bucket, _, key = command[4].removeprefix("s3://").partition("/")
            s3.upload_file(str(packaged.script.parent / command[3]), bucket, key)
    for bucket, key, _handler in code_references(json.loads(packaged.template.read_text())).values():
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    if cli:  # and without --s3-bucket the CLI refuses this template, as the docs say
        refused = subprocess.run(
            [cli, "cloudformation", "deploy", "--stack-name", "x", "--template-file", str(packaged.template)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert refused.returncode != 0 and "51,200 bytes" in refused.stderr


def test_a_zip_without_its_handler_is_refused(packaged: Package, tmp_path: Path) -> None:
    template = json.loads(packaged.template.read_text())
    code = next(u for u in packaged.uploads if u.file.stat().st_size < 5_000_000)
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(code.file) as source, zipfile.ZipFile(broken, "w") as target:
        for name in source.namelist():
            if not name.endswith("detector.py"):
                target.writestr(name, source.read(name))
    others = tuple(u for u in packaged.uploads if u is not code)
    with pytest.raises(PackageError, match=r"has no fanwatch/cloud/detector\.py"):
        verify(template, (*others, type(code)(broken, code.bucket, code.key)))
    with pytest.raises(PackageError, match="is not among the packaged zips"):
        verify(template, others)
