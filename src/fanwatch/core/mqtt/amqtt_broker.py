"""The embedded broker: amqtt (pure Python, MQTT 3.1.1), so that a core needs nothing but pip.

It has no TLS client authentication and no ACLs (amqtt's TLS listener does not enforce client
certificates), so it listens in plain TCP on the loopback address only; use
:class:`~fanwatch.core.mqtt.mosquitto_broker.MosquittoBroker` to test mTLS and per-thing isolation.
Run as ``python -m fanwatch.core.mqtt.amqtt_broker HOST PORT``, which is what :class:`AmqttBroker` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import signal
import sys
from typing import Final

from fanwatch.core.mqtt.broker import LocalBroker
from fanwatch.core.mqtt.endpoint import BrokerEndpoint
from fanwatch.core.mqtt.topics import check_thing_name

__all__ = ["AmqttBroker"]

_READY: Final = "amqtt broker ready"
#: How long a stopping broker may spend saying goodbye to its clients before the process just exits.
_SHUTDOWN_GRACE_S: Final = 2.0


class AmqttBroker(LocalBroker):
    """amqtt on the loopback address: it lets any client in as anything, so only this machine may reach it."""

    name = "amqtt"
    ready_line = re.compile(re.escape(_READY))

    def __init__(self, directory: str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0) -> None:
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ValueError(
                f"the embedded broker has no authentication and listens on the loopback address only, "
                f"not {host!r}; use MosquittoBroker (mutual TLS) for anything wider"
            )
        super().__init__(directory, host=host, port=port)

    def _command(self) -> list[str]:
        return [sys.executable, "-m", __name__, self.host, str(self.port)]

    def endpoint_for(self, thing_name: str) -> BrokerEndpoint:
        check_thing_name(thing_name)
        return BrokerEndpoint(self.host, self.port)

    def observer_endpoint(self) -> BrokerEndpoint:
        return BrokerEndpoint(self.host, self.port)


async def _serve(host: str, port: int) -> None:
    from amqtt.broker import Broker  # only in the child: the parent never needs amqtt loaded

    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # the parent holds our stdin open; end-of-file means it died without stopping us
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 1024) else None)
    await broker.start()
    print(f"{_READY} on {host}:{port}", flush=True)
    await stop.wait()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(broker.shutdown(), _SHUTDOWN_GRACE_S)


def main(argv: list[str]) -> int:
    host, port = argv
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(host, int(port)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
