"""The embedded broker: amqtt (pure Python, MQTT 3.1.1), so that a core needs nothing but pip.

It has no TLS client authentication and no ACLs (amqtt's TLS listener does not enforce client
certificates), so it listens in plain TCP on the loopback address only; use
:class:`~fanwatch.core.mqtt.mosquitto_broker.MosquittoBroker` to test mTLS and per-thing isolation.
By default it lets any local process in anonymously; with a :class:`Login` it admits that user name
and password only (amqtt's FileAuthPlugin, an Argon2 hash in a file only we can read): for a machine
others share. Everyone who has the login may still read and write every topic.
Run as ``python -m fanwatch.core.mqtt.amqtt_broker HOST PORT [PASSWORD_FILE]``, which is what
:class:`AmqttBroker` does.
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
from typing import Any, Final

from fanwatch.core.mqtt.broker import LocalBroker, Observer
from fanwatch.core.mqtt.endpoint import BrokerEndpoint, Login
from fanwatch.core.mqtt.topics import check_thing_name

__all__ = ["AmqttBroker"]

_READY: Final = "amqtt broker ready"
#: How long a stopping broker may spend saying goodbye to its clients before the process just exits.
_SHUTDOWN_GRACE_S: Final = 2.0


class AmqttBroker(LocalBroker):
    """amqtt on the loopback address: it lets any client in as anything (or, with ``login``, anyone who
    has that login), so only this machine may reach it."""

    name = "amqtt"
    ready_line = re.compile(re.escape(_READY))

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        login: Login | None = None,
    ) -> None:
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ValueError(
                f"the embedded broker has no TLS and listens on the loopback address only, "
                f"not {host!r}; use MosquittoBroker (mutual TLS) for anything wider"
            )
        super().__init__(directory, host=host, port=port)
        self.login = login
        self.password_file = self.directory / "passwd"

    def _command(self) -> list[str]:
        command = [sys.executable, "-m", __name__, self.host, str(self.port)]
        if self.login is None:
            self.password_file.unlink(missing_ok=True)
            return command
        from pwdlib import PasswordHash  # amqtt's own dependency; only needed with a login
        from pwdlib.hashers.argon2 import Argon2Hasher

        hashed = PasswordHash((Argon2Hasher(),)).hash(self.login.password)
        self.password_file.unlink(missing_ok=True)
        descriptor = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(f"{self.login.username}:{hashed}\n")
        return [*command, str(self.password_file)]

    def endpoint_for(self, thing_name: str) -> BrokerEndpoint:
        check_thing_name(thing_name)
        return BrokerEndpoint(self.host, self.port, login=self.login)

    def observer_endpoint(self, observer: Observer = Observer.DEFAULT) -> BrokerEndpoint:
        return BrokerEndpoint(self.host, self.port, login=self.login)  # one identity for all: the login


async def _serve(host: str, port: int, password_file: str | None) -> None:
    from amqtt.broker import Broker  # only in the child: the parent never needs amqtt loaded

    # FileAuthPlugin alone: it has no answer for a client without a user name, and amqtt refuses a
    # client that no plugin admits
    authentication: dict[str, Any] = (
        {"amqtt.plugins.authentication.FileAuthPlugin": {"password_file": password_file}}
        if password_file
        else {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
    )
    broker = Broker(
        {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}}, "plugins": authentication}
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
    """The broker process :class:`AmqttBroker` starts: serve on HOST PORT (admitting only the login in
    PASSWORD_FILE, when given) until SIGTERM, SIGINT or the parent closes our stdin."""
    host, port, *password_file = argv
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(host, int(port), password_file[0] if password_file else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
