"""Where a core's MQTT connection goes, and with which credentials."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["BrokerEndpoint", "KeyPair"]


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A PEM certificate and its PEM private key, as files (what awscrt and mosquitto read)."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    """A broker's address; with ``ca_file`` the link speaks TLS, with ``client`` it proves who it is."""

    host: str
    port: int
    ca_file: Path | None = None
    client: KeyPair | None = None

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
