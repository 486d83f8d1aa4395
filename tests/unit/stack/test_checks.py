"""The offline checks: cfn-lint, cdk-nag acknowledgements, the plain-CloudFormation template and the
Lambda assets built without Docker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from fanwatch_stack import assets
from fanwatch_stack.nag import ACKNOWLEDGED


def test_cfn_lint_finds_no_errors(template_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cfnlint", "--format", "parseable", str(template_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ":E" in line.split(" ")[0] or ":E" in line]
    assert not errors, "\n".join(errors)
    assert result.returncode & 2 == 0, result.stdout + result.stderr  # bit 2: errors


def test_cdk_nag_passes_and_every_acknowledgement_says_why(template: dict[str, Any]) -> None:
    # the session's synthesis already ran AwsSolutionsChecks: an unacknowledged finding would have raised
    assert template["Resources"]
    for path, findings in ACKNOWLEDGED.items():
        rules = [rule for rule, _ in findings]
        assert len(rules) == len(set(rules)), path
        for rule, reason in findings:
            assert rule.startswith("AwsSolutions-"), rule
            assert len(reason) >= 60 and reason.endswith("."), (path, rule, reason)


def test_the_plain_cloudformation_template_reads_assets_from_the_operators_bucket(
    plain_template: dict[str, Any],
) -> None:
    assert "BootstrapVersion" not in plain_template.get("Parameters", {})
    assert "CheckBootstrapVersion" not in plain_template.get("Rules", {})
    codes = [
        r["Properties"]["Code"]
        for r in plain_template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    assert codes and all(
        c["S3Bucket"] == "my-deploy-bucket" and c["S3Key"].startswith("fw-lab/assets/") for c in codes
    )
    names = {
        r["Properties"].get("PolicyName")
        for r in plain_template["Resources"].values()
        if r["Type"] == "AWS::IoT::Policy"
    }
    assert names == {"fw-lab-core-device", "fw-lab-provisioning-claim"}


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_the_layer_holds_graviton_wheels_for_python_312_within_lambdas_limit() -> None:
    layer = assets.layer_dir()
    core = list((layer / "python" / "numpy" / "_core").glob("_multiarray_umath.*.so"))
    assert [p.name for p in core] == ["_multiarray_umath.cpython-312-aarch64-linux-gnu.so"]
    assert (layer / "python" / "aws_lambda_powertools").is_dir()
    code = assets.code_dir()
    total = _size(layer) + _size(code)
    assert total < 250 * 2**20, f"{total / 2**20:.0f} MB unzipped is over Lambda's 250 MB"
    assert assets.layer_dir() == layer  # cached: the second call builds nothing


def test_the_code_asset_has_what_the_handlers_import_and_nothing_else() -> None:
    code = assets.code_dir() / "fanwatch"
    assert (code / "telemetry.py").is_file() and (code / "cloud" / "detector.py").is_file()
    assert (code / "rcf" / "manager.py").is_file()
    assert not (code / "edge").exists() and not (code / "core").exists()
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import fanwatch.cloud.detector, fanwatch.cloud.notifier, fanwatch.cloud.lake, fanwatch.rcf; "
        "assert fanwatch.__file__.startswith(sys.argv[1]), fanwatch.__file__"
    )
    subprocess.run(
        [sys.executable, "-I", "-c", probe, str(code.parent)],
        check=True,
        env={"PYTHONPATH": ""},
        capture_output=True,
    )
