"""The deployment files in ``deployments/`` are requests AWS accepts and configurations the components take.

Checked against botocore's model of CreateDeployment (with the service's constraints), and each
fanwatch component's configuration, as a device would resolve it (its recipe's defaults, then the
file's MERGE), is parsed by the component's own configuration parser: a typo in a pin or a threshold
fails here, not on a thousand Pis.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fanwatch.core.deployment import DeploymentDocument
from fanwatch.core.deployment.configuration_update import resolve_configuration
from fanwatch.edge.config import parse_filter_config, parse_tach_config
from fanwatch.fleet.deployment_file import DEFAULT_JOB, DeploymentFile, DeploymentFileError

REPO = Path(__file__).resolve().parents[3]
FILES = sorted((REPO / "deployments").glob("*.json"))
PARSERS = {"fanwatch.Tachometer": parse_tach_config, "fanwatch.EdgeFilter": parse_filter_config}


def _defaults(name: str) -> dict:
    recipe = yaml.safe_load((REPO / "recipes" / f"{name}.yaml").read_text())
    return dict(recipe["ComponentConfiguration"]["DefaultConfiguration"])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_is_a_request_aws_accepts_and_components_take(path: Path) -> None:
    file = DeploymentFile.load(path)
    document = DeploymentDocument.parse(dict(file.content))
    assert set(PARSERS) <= set(document.components)
    for name, parse in PARSERS.items():
        parse(resolve_configuration(None, _defaults(name), document.components[name].update))
    nucleus = document.components["aws.greengrass.Nucleus"].update.merge
    assert nucleus["interpolateComponentConfiguration"] is True  # the recipes' {iot:thingName} needs it
    assert nucleus["mqtt"]["spooler"]["storageType"] == "Disk"  # readings survive a reboot while offline
    request = file.request("arn:aws:iot:eu-west-1:111122223333:thinggroup/fanwatch-fleet")
    assert request["deploymentPolicies"]["failureHandlingPolicy"] == "ROLLBACK"
    assert request["iotJobConfiguration"] == DEFAULT_JOB and request["tags"]["fanwatch:file"] == path.name


def test_the_gpio_file_names_real_pins() -> None:
    file = DeploymentFile.load(REPO / "deployments" / "fanwatch-gpio.json")
    merge = json.loads(file.components["fanwatch.Tachometer"]["configurationUpdate"]["merge"])
    config = parse_tach_config({**_defaults("fanwatch.Tachometer"), **merge})
    assert config.backend == "gpio"
    assert [(f.pin, f.pulses_per_rev) for f in config.fans] == [(17, 2), (27, 2)]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[1, 2]", "a deployment file is a JSON object"),
        ('{"components": {}}', "names no component"),
        ('{"components": {"x": {"componentVersion": "1.0.0"}}, "targetArn": "t"}', "unknown key 'targetArn'"),
        (
            '{"components": {"x": {"configurationUpdate": {}}}}',
            "'components.x.componentVersion' must not be null",
        ),
        (
            '{"components": {"x": {"componentVersion": "1.0.0", "configurationUpdate": {"merge": "{"}}}}',
            "not valid JSON",
        ),
        (
            '{"components": {"x": {"componentVersion": "1.0.0", "configurationUpdate": {"merge": "[1]"}}}}',
            "JSON object",
        ),
        (
            '{"components": {"x": {"componentVersion": "1.0.0"}}, '
            '"deploymentPolicies": {"failureHandlingPolicy": "NO"}}',
            "enum value set: [ROLLBACK, DO_NOTHING]",
        ),
        ("{not json", "not a JSON deployment file"),
    ],
)
def test_files_aws_would_refuse(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DeploymentFileError) as caught:
        DeploymentFile.load(path)
    assert words in str(caught.value) and str(path) in str(caught.value)
