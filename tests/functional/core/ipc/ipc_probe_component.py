"""A minimal Greengrass component for the tests: it connects from its environment as every component
does, reports RUNNING, watches its own configuration and prints each change as a JSON line.

It runs until its stdin closes, as a component runs until the nucleus stops it.
"""

from __future__ import annotations

import json
import sys

from awsiot.greengrasscoreipc import model
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2


def main() -> None:
    client = GreengrassCoreIPCClientV2()  # SVCUID and the socket path come from the environment

    def changed(event: model.ConfigurationUpdateEvents) -> None:
        key_path = event.configuration_update_event.key_path
        value = client.get_configuration(key_path=key_path).value  # callbacks run in the client's executor
        print(json.dumps({"keyPath": key_path, "value": value}), flush=True)

    client.subscribe_to_configuration_update(key_path=[], on_stream_event=changed)
    client.update_state(state=model.ReportedLifecycleState.RUNNING)
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.read()
    client.close()


if __name__ == "__main__":
    main()
