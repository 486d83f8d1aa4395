"""A component for the local fleet's tests: telemetry a test can account for, and a threshold it follows.

It publishes ``{"thing", "boot", "seq", "at", "version", "threshold"}`` to ``fanwatch/<thing>/telemetry``
through the real awsiotsdk IPC client every ``intervalSeconds``: ``boot`` changes when the process
restarts, ``seq`` counts up within one boot, so a gap, a restart or a lost reading shows. The version
is the folder the nucleus unpacked it into (``.../artifacts/<name>/<version>/``), and ``threshold``
follows configuration updates without a restart, as the real components' alert thresholds do.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import QOS


def main() -> None:
    client = GreengrassCoreIPCClientV2()
    thing = os.environ["AWS_IOT_THING_NAME"]
    version = Path(__file__).resolve().parent.name
    boot = uuid.uuid4().hex[:8]
    settings = dict(client.get_configuration().value)
    lock = threading.Lock()

    def on_update(event: object) -> None:
        fresh = client.get_configuration().value
        with lock:
            settings.update(fresh)

    client.subscribe_to_configuration_update(on_stream_event=on_update)
    topic = f"fanwatch/{thing}/telemetry"
    seq = 0
    while True:
        with lock:
            threshold, interval = settings.get("threshold"), float(settings.get("intervalSeconds", 0.5))
        reading = {"thing": thing, "boot": boot, "seq": seq, "at": time.time()}
        reading.update(version=version, threshold=threshold)
        client.publish_to_iot_core(
            topic_name=topic, qos=QOS.AT_LEAST_ONCE, payload=json.dumps(reading).encode()
        )
        seq += 1
        time.sleep(interval)


if __name__ == "__main__":
    main()
