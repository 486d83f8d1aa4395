"""A tiny Greengrass component for the runtime's tests, speaking the real awsiotsdk IPC client.

It reads its configuration, publishes ``{"n": <count>, "tag": <configuration tag>}`` to IoT Core on
its ``topic`` every ``intervalS`` seconds, tries one publish on ``deniedTopic`` (which its
accessControl does not allow) and records what the core answered, follows configuration updates, and
can report its own state. Everything it observes goes, one JSON object per line, to ``probe.jsonl``
in its work folder (its current directory, as the nucleus sets it).
"""

from __future__ import annotations

import json
import os
import sys
import threading

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import QOS, ReportedLifecycleState


def note(**fields: object) -> None:
    with open("probe.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps({"pid": os.getpid(), **fields}) + "\n")


def main() -> int:
    client = GreengrassCoreIPCClientV2()
    config = client.get_configuration().value
    note(event="started", config=config, argv=sys.argv[1:], thing=os.environ.get("AWS_IOT_THING_NAME"))
    changed = threading.Event()

    def on_update(event: object) -> None:
        update = event.configuration_update_event  # type: ignore[attr-defined]
        fresh = client.get_configuration().value
        note(event="update", key_path=update.key_path, config=fresh)
        changed.set()

    client.subscribe_to_configuration_update(on_stream_event=on_update)
    denied = config.get("deniedTopic")
    if denied:
        try:
            client.publish_to_iot_core(topic_name=denied, qos=QOS.AT_LEAST_ONCE, payload=b"{}")
            note(event="denied-publish", result="allowed")
        except Exception as exc:  # the answer is what we record
            note(event="denied-publish", result=type(exc).__name__, message=str(exc))
    if config.get("reportRunning"):
        client.update_state(state=ReportedLifecycleState.RUNNING)
    count = 0
    while count < int(config.get("count", 1_000_000)):
        tag = client.get_configuration(key_path=["tag"]).value.get("tag")
        payload = json.dumps({"n": count, "tag": tag}).encode()
        client.publish_to_iot_core(topic_name=config["topic"], qos=QOS.AT_LEAST_ONCE, payload=payload)
        count += 1
        changed.wait(float(config.get("intervalS", 0.2)))
        changed.clear()
    note(event="done", count=count)
    return int(config.get("exitCode", 0))


if __name__ == "__main__":
    sys.exit(main())
