#!/usr/bin/env python3
"""Synthesize the fanwatch cloud stack: ``python app.py`` (what ``make synth`` and ``cdk synth`` run).

The CloudFormation template lands in ``cdk.out/``; cdk-nag findings that are not acknowledged make the
synthesis fail and are listed in ``cdk.out/validation-report.json``.
"""

import os

import fanwatch_stack  # noqa: F401  (first: chooses the Node.js that jsii runs on)
from fanwatch_stack.application import build_app

if __name__ == "__main__":
    build_app(outdir=os.environ.get("CDK_OUTDIR", "cdk.out")).synth()
