"""Synthesize the cloud stack once per session (about 5 s) and share the template with every test."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

STACK_DIR = Path(__file__).resolve().parents[3] / "cloud-stack"
sys.path.insert(0, str(STACK_DIR))

import fanwatch_stack  # noqa: E402,F401  (before aws_cdk: chooses the Node.js jsii runs on)


def _synth(outdir: Path, context: dict[str, Any] | None = None) -> dict[str, Any]:
    from fanwatch_stack.application import build_app

    assembly = build_app(outdir=str(outdir), context=context).synth()  # raises on cdk-nag findings
    (stack,) = assembly.stacks
    return json.loads((outdir / stack.template_file).read_text())


@pytest.fixture(scope="session")
def template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("cdk.out")
    _synth(outdir)
    return outdir / "fanwatch-cloud.template.json"


@pytest.fixture(scope="session")
def template(template_path: Path) -> dict[str, Any]:
    return json.loads(template_path.read_text())


@pytest.fixture(scope="session")
def plain_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The template for plain CloudFormation, with assets in the operator's own bucket."""
    return _synth(
        tmp_path_factory.mktemp("cdk.out.plain"), {"assetsBucket": "my-deploy-bucket", "prefix": "fw-lab"}
    )
