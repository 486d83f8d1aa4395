"""``fanwatch stack package --bucket B``: the cloud stack, ready for plain CloudFormation.

``aws cloudformation deploy`` cannot take the synthesized template as it is: the template is larger
than the 51,200 bytes CloudFormation accepts inline (so ``--s3-bucket`` is needed), and its Lambda
functions and layer read their code from zips that must be in S3 first. This synthesizes the stack with
``assetsBucket=B`` (the functions read their code from ``s3://B/<prefix>/assets/``), zips each Lambda
asset under the key the template names, checks that every code reference of the template is one of
those zips and that each zip holds its handler's module (the layer: numpy), and writes ``deploy.sh``:
the ``aws s3 cp`` of each zip, then ``aws cloudformation deploy --s3-bucket B``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import fanwatch
from fanwatch.errors import FanwatchError

__all__ = ["CLOUDFORMATION_INLINE_LIMIT", "Package", "PackageError", "package", "run_package"]

#: The largest template ``aws cloudformation deploy`` sends inline (TemplateBody); larger ones go by S3.
CLOUDFORMATION_INLINE_LIMIT: Final = 51_200
#: The cloud stack's CDK app, in a clone of the repository.
CLOUD_STACK: Final = Path(fanwatch.__file__).resolve().parents[2] / "cloud-stack"
#: A fixed time for every zip entry, so the same code gives the same zip (and the same upload).
_ZIP_TIME: Final = (2020, 1, 1, 0, 0, 0)


class PackageError(FanwatchError):
    """The stack could not be packaged, or the package would not deploy; the message says which part."""


@dataclass(frozen=True, slots=True)
class Upload:
    """A zipped Lambda asset and the S3 object the template reads it from (what ``deploy.sh`` copies)."""

    file: Path
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class Package:
    """What ``fanwatch stack package`` made: the stack's name and bucket, the template, the zips to upload
    and ``deploy.sh``."""

    stack: str
    bucket: str
    template: Path
    uploads: tuple[Upload, ...]
    script: Path

    def deploy_command(self, prefix: str) -> list[str]:
        return [
            "aws",
            "cloudformation",
            "deploy",
            "--stack-name",
            self.stack,
            "--template-file",
            self.template.name,
            "--s3-bucket",
            self.bucket,
            "--s3-prefix",
            f"{prefix}/templates",
            "--capabilities",
            "CAPABILITY_IAM",
            "CAPABILITY_NAMED_IAM",
        ]


def synthesize(out: Path, *, bucket: str, prefix: str, region: str | None) -> Path:
    """Run the CDK app (``cloud-stack/app.py``) with ``assetsBucket``; the folder it wrote."""
    if not (CLOUD_STACK / "app.py").exists():
        raise PackageError(f"no CDK app at {CLOUD_STACK}: run this from a clone of the fanwatch repository")
    context = {"assetsBucket": bucket, "prefix": prefix, **({"region": region} if region else {})}
    env = {**os.environ, "CDK_OUTDIR": str(out.resolve()), "CDK_CONTEXT_JSON": json.dumps(context)}
    done = subprocess.run(
        [sys.executable, "app.py"], cwd=CLOUD_STACK, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise PackageError(f"the CDK app failed (make synth installs what it needs):\n{tail}")
    return out


def _zip_folder(folder: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            entry = zipfile.ZipInfo(str(path.relative_to(folder)), _ZIP_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, path.read_bytes())
    partial.replace(target)


def _code_references(template: dict[str, Any]) -> dict[str, tuple[str, str, str | None]]:
    """logical id -> (bucket, key, handler) of every Lambda function and layer."""
    refs: dict[str, tuple[str, str, str | None]] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function":
            code = props.get("Code", {})
            refs[logical_id] = (code.get("S3Bucket"), code.get("S3Key"), props.get("Handler"))
        elif resource["Type"] == "AWS::Lambda::LayerVersion":
            content = props.get("Content", {})
            refs[logical_id] = (content.get("S3Bucket"), content.get("S3Key"), None)
    return refs


def verify(template: dict[str, Any], uploads: tuple[Upload, ...]) -> None:
    """Every code reference of ``template`` is an upload, and each zip holds what it must."""
    by_url = {upload.url: upload for upload in uploads}
    refs = _code_references(template)
    if not refs:
        raise PackageError("the template has no Lambda code to package")
    for logical_id, (bucket, key, handler) in refs.items():
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise PackageError(
                f"{logical_id}: its code is not a plain S3 bucket and key ({bucket!r}, {key!r})"
            )
        upload = by_url.get(f"s3://{bucket}/{key}")
        if upload is None:
            raise PackageError(f"{logical_id}: s3://{bucket}/{key} is not among the packaged zips")
        with zipfile.ZipFile(upload.file) as archive:
            names = set(archive.namelist())
        wanted = (
            handler.rsplit(".", 1)[0].replace(".", "/") + ".py" if handler else "python/numpy/__init__.py"
        )
        if wanted not in names:
            raise PackageError(f"{logical_id}: {upload.file.name} has no {wanted}")


def package(
    out: Path,
    *,
    bucket: str,
    prefix: str = "fanwatch",
    region: str | None = None,
    synthesis: Path | None = None,
) -> Package:
    """Synthesize (or read ``synthesis``), zip the assets into ``out``, verify, write ``deploy.sh``."""
    stack = f"{prefix}-cloud".replace("_", "-")
    cdk_out = synthesis or synthesize(out / "cdk.out", bucket=bucket, prefix=prefix, region=region)
    manifest_file = cdk_out / f"{stack}.assets.json"
    try:
        manifest = json.loads(manifest_file.read_text())
        template = json.loads((cdk_out / f"{stack}.template.json").read_text())
    except (OSError, ValueError) as exc:
        raise PackageError(f"cannot read the synthesis in {cdk_out}: {exc}") from None
    uploads: list[Upload] = []
    for asset in manifest.get("files", {}).values():
        source = asset["source"]
        if source.get("packaging") != "zip":
            continue  # the template itself: aws cloudformation deploy uploads it
        (destination,) = asset["destinations"].values()
        if destination["bucketName"] != bucket:
            raise PackageError(
                f"{manifest_file} uploads to {destination['bucketName']}, not {bucket}: "
                f"synthesize with -c assetsBucket={bucket}"
            )
        target = out / "assets" / destination["objectKey"]
        _zip_folder(cdk_out / source["path"], target)
        uploads.append(Upload(target, bucket, destination["objectKey"]))
    template_file = out / f"{stack}.template.json"
    template_file.write_text(json.dumps(template, indent=1))
    verify(template, tuple(uploads))
    result = Package(stack, bucket, template_file, tuple(uploads), out / "deploy.sh")
    _write_script(result, out, prefix)
    return result


def _write_script(result: Package, out: Path, prefix: str) -> None:
    lines = [
        "#!/bin/sh",
        "# Written by fanwatch stack package: upload the Lambda code, then deploy the template with",
        "# CloudFormation. Extra options go to the deploy: sh deploy.sh --parameter-overrides ScoreFloor=2.8",
        "set -e",
        'cd "$(dirname "$0")"',
    ]
    for upload in result.uploads:
        lines.append(shlex.join(["aws", "s3", "cp", str(upload.file.relative_to(out)), upload.url]))
    lines.append(shlex.join(result.deploy_command(prefix)) + ' "$@"')
    result.script.write_text("\n".join(lines) + "\n")
    result.script.chmod(0o755)


def run_package(args: argparse.Namespace) -> int:
    """``fanwatch stack package``: package the stack into ``--out`` and say what it made and how to deploy
    it."""
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    print(f"synthesizing {args.prefix}-cloud with its Lambda code in s3://{args.bucket}/ ...", flush=True)
    result = package(
        out, bucket=args.bucket, prefix=args.prefix, region=args.region, synthesis=args.template_dir
    )
    size = result.template.stat().st_size
    print(
        f"template: {result.template} ({size:,} bytes; "
        f"CloudFormation takes {CLOUDFORMATION_INLINE_LIMIT:,} inline)"
    )
    for upload in result.uploads:
        print(f"asset:    {upload.file} ({upload.file.stat().st_size / 1e6:.1f} MB) -> {upload.url}")
    print(
        "\nEvery function's code is one of these zips and holds its handler. "
        f"To deploy:\n  sh {result.script}"
    )
    print("which runs:")
    print(
        "\n".join(f"  {line}" for line in result.script.read_text().splitlines() if line.startswith("aws "))
    )
    return 0
