"""mosquitto as IoT Core: mutual TLS, the certificate's CN as identity, and a per-thing topic ACL.

Each thing connects with its own certificate (CN = thing name). ``use_identity_as_username`` makes
that CN the MQTT user name, and the ACL pattern ``fanwatch/%u/#`` lets a thing publish and subscribe
only under its own topics. ``%u`` and not ``%c``: the client id is whatever the client says it is,
so an ACL on it would let one certificate act as any thing. ``use_username_as_clientid`` then makes
the CN the client id too, whatever the client asked for, as IoT Core's policies tie the client id to
the thing: one thing's certificate cannot take over another thing's session and knock its core off.
So each reader of the topics (:class:`~fanwatch.core.mqtt.broker.Observer`) has an identity of its own.

mosquitto answers a denied QoS 1 publish with a PUBACK and drops the message silently, so a denial
cannot be seen by the publisher, only by a subscriber that never receives it.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
from collections.abc import Sequence
from typing import Final

from fanwatch.core.mqtt.broker import BrokerError, LocalBroker, Observer
from fanwatch.core.mqtt.certs import CertificateAuthority
from fanwatch.core.mqtt.endpoint import BrokerEndpoint
from fanwatch.core.mqtt.topics import check_thing_name
from fanwatch.telemetry import TOPIC_ROOT

__all__ = ["DEFAULT_ACL", "MosquittoBroker"]

#: Each thing may publish and subscribe under its own ``fanwatch/<thing>/`` topics only (the root is
#: telemetry's, as in the IoT policy the stack grants).
DEFAULT_ACL: Final = (f"{TOPIC_ROOT}/%u/#",)
#: Debian installs the broker in /usr/sbin, which is not on every user's PATH.
_SEARCH_PATH: Final = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])


class MosquittoBroker(LocalBroker):
    """mosquitto with mTLS (``require_certificate``) and a per-thing ACL; its CA is in ``<directory>/ca``."""

    name = "mosquitto"
    ready_line = re.compile(r"mosquitto version \S+ running")

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        acl: Sequence[str] = DEFAULT_ACL,
        observer_topics: str | Sequence[str] = f"{TOPIC_ROOT}/#",
    ) -> None:
        super().__init__(directory, host=host, port=port)
        readable = [observer_topics] if isinstance(observer_topics, str) else list(observer_topics)
        binary = self.find_binary()
        if binary is None:
            raise BrokerError("mosquitto is not installed (apt-get install -y mosquitto)")
        self.binary = binary
        self.ca = CertificateAuthority(self.directory / "ca")
        server = self.ca.issue_server(hosts=[host, "localhost"] if host != "localhost" else [host])
        acl_file = self.directory / "acl"
        acl_file.write_text(
            "# written by fanwatch: what each certificate's identity (its CN) may do\n"
            + "".join(f"pattern readwrite {pattern}\n" for pattern in acl)
            + "".join(
                f"\nuser {observer}\n" + "".join(f"topic read {t}\n" for t in readable)
                for observer in Observer
            )
        )
        self.config_file = self.directory / "mosquitto.conf"
        self.config_file.write_text(
            "\n".join(
                [
                    "# written by fanwatch: a local stand-in for AWS IoT Core",
                    # run as us: started as root, mosquitto would switch to a 'mosquitto' user that
                    # cannot read our private key and ACL (they are readable by their owner only)
                    f"user {pwd.getpwuid(os.getuid()).pw_name}",
                    "persistence false",
                    "log_dest stderr",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    "connection_messages true",
                    "per_listener_settings false",
                    "set_tcp_nodelay true",  # no Nagle delay on its small packets (PUBACKs)
                    "allow_anonymous false",
                    f"acl_file {acl_file}",
                    f"listener {self.port} {host}",
                    f"cafile {self.ca.cert_file}",
                    f"certfile {server.cert_file}",
                    f"keyfile {server.key_file}",
                    "require_certificate true",
                    "use_identity_as_username true",
                    "use_username_as_clientid true",  # the CN is the client id: no one takes another's
                    "tls_version tlsv1.2",  # the minimum; IoT Core also refuses anything older
                    "",
                ]
            )
        )

    @staticmethod
    def find_binary() -> str | None:
        """The mosquitto executable, or None where it is not installed."""
        return shutil.which("mosquitto", path=_SEARCH_PATH)

    def _command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_file)]

    def endpoint_for(self, thing_name: str) -> BrokerEndpoint:
        """``thing_name``'s own certificate (issued on first use) and the CA to trust the broker by."""
        check_thing_name(thing_name)
        return BrokerEndpoint(self.host, self.port, self.ca.cert_file, self.ca.issue_client(thing_name))

    def observer_endpoint(self, observer: Observer = Observer.DEFAULT) -> BrokerEndpoint:
        return BrokerEndpoint(self.host, self.port, self.ca.cert_file, self.ca.issue_client(observer))
