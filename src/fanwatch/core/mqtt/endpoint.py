"""Where a core's MQTT connection goes, and with which credentials."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fanwatch.environment import BROKER_PASSWORD_VARIABLE, BROKER_USERNAME_VARIABLE

__all__ = ["BrokerEndpoint", "KeyPair", "Login"]


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A PEM certificate and its PEM private key, as files (what awscrt and mosquitto read)."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class Login:
    """An MQTT user name and password (the embedded broker's, for a machine that others share)."""

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.username or not self.password:
            raise ValueError("a broker login needs both a user name and a password")
        if any(c in self.username for c in ":\r\n") or any(c in self.password for c in "\r\n"):
            raise ValueError("a broker user name may not hold ':' or a line break, a password no line break")

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> Login | None:
        """The login in ``FANWATCH_BROKER_USERNAME``/``_PASSWORD``; None when neither is set."""
        username, password = env.get(BROKER_USERNAME_VARIABLE, ""), env.get(BROKER_PASSWORD_VARIABLE, "")
        if not username and not password:
            return None
        if not username or not password:
            both = f"{BROKER_USERNAME_VARIABLE} and {BROKER_PASSWORD_VARIABLE}"
            raise ValueError(f"set both {both}, or neither")
        return cls(username, password)


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    """A broker's address; with ``ca_file`` the link speaks TLS, with ``client`` it proves who it is by
    certificate, with ``login`` by user name and password."""

    host: str
    port: int
    ca_file: Path | None = None
    client: KeyPair | None = None
    login: Login | None = None

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not a TCP port")
        if self.client is not None and self.ca_file is None:
            raise ValueError(
                "a client certificate needs TLS: give the CA that signed the broker's certificate"
            )

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.ca_file else 'mqtt'}://{self.host}:{self.port}"
