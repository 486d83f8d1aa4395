"""Two simulated things on local Greengrass cores: deploy a component, canary an upgrade, find a stale key.

The component is a real process using the real awsiotsdk IPC client; the cores publish to an embedded
MQTT broker standing in for AWS IoT Core.

Run: python docs/examples/core_fleet.py
"""

import asyncio
import sys
import tempfile
from pathlib import Path

import yaml

from fanwatch.core import Fleet
from fanwatch.core.links import broker_links

HELLO = """\
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import QOS
import os
ipc = GreengrassCoreIPCClientV2()
greeting = ipc.get_configuration(key_path=["greeting"]).value["greeting"]
topic = f"fanwatch/{os.environ['AWS_IOT_THING_NAME']}/hello"
ipc.publish_to_iot_core(topic_name=topic, qos=QOS.AT_LEAST_ONCE, payload=greeting.encode())
print(f"published {greeting!r} on {topic}")
"""


def build(folder: Path, version: str, defaults: dict) -> None:
    """Lay out a component version as ``gdk component build`` does: recipes/ and artifacts/."""
    recipe = {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": "example.Hello",
        "ComponentVersion": version,
        "ComponentConfiguration": {
            "DefaultConfiguration": {
                **defaults,
                "accessControl": {
                    "aws.greengrass.ipc.mqttproxy": {
                        "example.Hello:mqttproxy:1": {
                            "policyDescription": "say hello to IoT Core",
                            "operations": ["aws.greengrass#PublishToIoTCore"],
                            "resources": ["fanwatch/{iot:thingName}/hello"],
                        }
                    }
                },
            }
        },
        "Manifests": [
            {
                "Platform": {"os": "linux"},
                "Lifecycle": {"Run": f"{sys.executable} -u {{artifacts:path}}/hello.py"},
                "Artifacts": [{"URI": "s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/hello.py"}],
            }
        ],
    }
    (folder / "recipes").mkdir(parents=True, exist_ok=True)
    (folder / "recipes" / f"example.Hello-{version}.yaml").write_text(yaml.safe_dump(recipe))
    artifacts = folder / "artifacts" / "example.Hello" / version
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "hello.py").write_text(HELLO)


def deployment(version: str, **update: object) -> dict:
    return {
        "components": {
            # {iot:thingName} in accessControl needs this, on a device too
            "aws.greengrass.Nucleus": {
                "componentVersion": "2.15.0",
                "configurationUpdate": {"merge": {"interpolateComponentConfiguration": True}},
            },
            "example.Hello": {"componentVersion": version, "configurationUpdate": update},
        }
    }


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="fw-") as tmp:  # short: Unix socket paths are limited
        root = Path(tmp)
        build(root / "build", "1.0.0", {"greeting": "hello", "legacyTopic": "fans/old"})
        build(root / "build", "1.1.0", {"greeting": "hello again"})
        async with (
            broker_links("embedded", certs=None, root=root) as links,
            Fleet(root, Fleet.names(2), links=links, build_dirs=[root / "build"]) as fleet,
        ):
            for thing, result in (await fleet.deploy(deployment("1.0.0"))).items():
                print(f"{thing}: 1.0.0 {result.status}")
            canary = await fleet.deploy(deployment("1.1.0"), things=["fan-001"])
            print(f"fan-001: canary 1.1.0 {canary['fan-001'].status}")
            for thing, status in fleet.status().items():
                (hello,) = status["components"]
                print(f"{thing}: example.Hello {hello['version']} {hello['state']}")
                print(f"  greeting {hello['configuration']['greeting']!r}")  # running values survive upgrades
                for stale in hello["staleKeys"]:
                    pointer, value, remedy = stale["pointer"], stale["value"], stale["removeWith"]
                    print(f"  stale key {pointer} = {value!r}: remove with {remedy}")
            reset = deployment("1.1.0", reset=["/legacyTopic", "/greeting"])
            cleaned = await fleet.deploy(reset, things=["fan-001"])
            (hello,) = fleet.status()["fan-001"]["components"]
            greeting, stale_left = hello["configuration"]["greeting"], hello["staleKeys"]
            outcome = cleaned["fan-001"].status
            print(f"fan-001: reset {outcome}: greeting {greeting!r}, stale keys left: {stale_left}")
            log = fleet.cores["fan-002"].layout.log_path("example.Hello").read_text()
            print(
                "fan-002 said:", [line.split(": ", 1)[1] for line in log.splitlines() if "run.stdout" in line]
            )


asyncio.run(main())
