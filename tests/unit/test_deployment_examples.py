"""The deployment documents the docs show are requests AWS accepts: botocore's model checks them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.validate import ParamValidator

from fanwatch.core.deployment import DeploymentDocument

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "core_deployment.json"


def _problems(request: dict) -> str:
    model = ServiceModel(Loader().load_service_model("greengrassv2", "service-2"), "greengrassv2")
    shape = model.operation_model("CreateDeployment").input_shape
    report = ParamValidator().validate(request, shape)
    return report.generate_report() if report.has_errors() else ""


def test_the_core_docs_example_is_a_create_deployment_request_and_a_local_deployment() -> None:
    document = json.loads(EXAMPLE.read_text())
    target = "arn:aws:iot:eu-west-1:111122223333:thinggroup/fanwatch-fleet"
    assert _problems({"targetArn": target, **document}) == ""
    parsed = DeploymentDocument.parse(document)  # what `fanwatch core deploy FILE` reads
    assert parsed.components["fanwatch.Tachometer"].update.merge == {"backend": "simulated"}
    core_md = (REPO / "docs" / "core.md").read_text()
    (block,) = re.findall(r"^```json\n(.*?)^```", core_md, flags=re.M | re.S)
    assert block == EXAMPLE.read_text()


def test_an_object_merge_is_what_botocore_refuses() -> None:
    document = json.loads(EXAMPLE.read_text())
    document["components"]["fanwatch.Tachometer"]["configurationUpdate"]["merge"] = {"backend": "simulated"}
    target = "arn:aws:iot:eu-west-1:111122223333:thinggroup/fanwatch-fleet"
    assert "components.fanwatch.Tachometer.configurationUpdate.merge" in _problems(
        {"targetArn": target, **document}
    )
