"""A private certificate authority for the local broker: its server certificate and one per thing.

It mirrors how IoT Core identifies devices: each thing holds its own certificate and key, and the
certificate's common name is the thing name, which the broker uses as the client's identity (and
thus in its per-thing ACL). Keys are ECDSA P-256 (what IoT Core recommends for devices) and are
written readable by their owner only. Nothing here is a secret worth keeping: a new CA is made for
every test or demo run, and it is never committed.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fanwatch.core.mqtt.endpoint import KeyPair
from fanwatch.core.mqtt.topics import check_thing_name

__all__ = ["CertificateAuthority"]

_VALID_FOR: Final = datetime.timedelta(days=365)
_CLOCK_SKEW: Final = datetime.timedelta(hours=1)
_IDENTITY: Final = re.compile(r"[A-Za-z0-9:_.-]{1,128}")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class CertificateAuthority:
    """``ca.pem``/``ca.key`` in ``directory`` (made once, then reused) and the certificates it signs."""

    def __init__(self, directory: str | os.PathLike[str], *, name: str = "fanwatch local CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.cert_file = self.directory / "ca.pem"
        key_file = self.directory / "ca.key"
        if self.cert_file.exists() and key_file.exists():
            self._cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_file} is not an EC private key")
            self._key = loaded
            return
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + _VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        _write_private(key_file, _key_pem(self._key))
        self.cert_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def _issue(
        self, pair: KeyPair, common_name: str, usage: x509.ObjectIdentifier, names: Sequence[x509.GeneralName]
    ) -> KeyPair:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _CLOCK_SKEW)
            .not_valid_after(now + _VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        pair.key_file.parent.mkdir(mode=0o700, exist_ok=True)
        _write_private(pair.key_file, _key_pem(key))
        pair.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return pair

    def issue_server(self, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> KeyPair:
        """The broker's certificate, valid for ``hosts`` (IP addresses and DNS names)."""
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        pair = KeyPair(self.directory / "server.cert.pem", self.directory / "server.private.key")
        return self._issue(pair, hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, names)

    def issue_client(self, identity: str) -> KeyPair:
        """A client certificate whose CN is ``identity``: a thing name, or a service identity holding a
        dot (``fanwatch.observer``), which no thing name can contain. Issued once, then reused."""
        if not _IDENTITY.fullmatch(identity) or not identity.strip("."):
            check_thing_name(identity)  # explains what a valid name looks like
        clients = self.directory / "clients"  # apart from the server's files, whatever a thing is called
        pair = KeyPair(clients / f"{identity}.cert.pem", clients / f"{identity}.private.key")
        if pair.cert_file.exists() and pair.key_file.exists():
            return pair
        return self._issue(pair, identity, ExtendedKeyUsageOID.CLIENT_AUTH, ())
