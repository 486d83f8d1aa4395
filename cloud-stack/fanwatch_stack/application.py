"""Build the CDK app: the stack, cdk-nag's AwsSolutions checks, and the asset synthesizer.

Context (``cdk synth -c key=value``, or ``cdk.json``): ``prefix`` names everything (default
``fanwatch``); ``region`` and ``account`` pin the environment (default: environment-agnostic, the
template works in any region); ``assetsBucket`` synthesizes a template for plain CloudFormation whose
Lambda assets are read from that bucket instead of the CDK bootstrap bucket.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from fanwatch_stack.stack import FanwatchCloudStack

__all__ = ["build_app"]


CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"


def build_app(outdir: str | None = None, context: dict[str, Any] | None = None) -> cdk.App:
    """The app; ``cdk.json``'s context (feature flags, defaults) applies under ``python app.py`` too."""
    defaults = json.loads(CDK_JSON.read_text())["context"]
    app = cdk.App(outdir=outdir, context={**defaults, **(context or {})})
    get = app.node.try_get_context
    prefix = get("prefix") or "fanwatch"
    account, region, assets_bucket = get("account"), get("region"), get("assetsBucket")
    synthesizer: cdk.IStackSynthesizer | None = None
    if assets_bucket:
        synthesizer = cdk.CliCredentialsStackSynthesizer(
            file_assets_bucket_name=assets_bucket, bucket_prefix=f"{prefix}/assets/"
        )
    FanwatchCloudStack(
        app,
        f"{prefix}-cloud".replace("_", "-"),
        prefix=prefix,
        synthesizer=synthesizer,
        env=cdk.Environment(account=account, region=region) if (account or region) else None,
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
