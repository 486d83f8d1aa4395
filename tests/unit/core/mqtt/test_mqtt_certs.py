"""The local CA issues what mosquitto and awscrt need: a server certificate for the loopback address
and one client certificate per thing whose CN is the thing name."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fanwatch.core.mqtt.certs import CertificateAuthority
from fanwatch.core.mqtt.endpoint import BrokerEndpoint, KeyPair
from fanwatch.core.mqtt.topics import MqttRequestError


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_a_thing_certificate_names_the_thing_and_chains_to_the_ca(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    pair = ca.issue_client("fan-001")
    cert, root = load(pair.cert_file), load(ca.cert_file)
    cert.verify_directly_issued_by(root)
    assert common_name(cert) == "fan-001"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_server_certificate_covers_the_loopback_address_and_localhost(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    names = load(ca.issue_server().cert_file).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.value.get_values_for_type(x509.DNSName) == ["localhost"]


def test_private_keys_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca")
    for key in (tmp_path / "ca" / "ca.key", ca.issue_server().key_file, ca.issue_client("fan-001").key_file):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_the_ca_and_thing_certificates_are_reused(tmp_path: Path) -> None:
    first = CertificateAuthority(tmp_path)
    pair = first.issue_client("fan-001")
    again = CertificateAuthority(tmp_path)
    assert again.cert_file.read_bytes() == first.cert_file.read_bytes()
    assert again.issue_client("fan-001") == pair
    load(again.issue_client("fan-002").cert_file).verify_directly_issued_by(load(first.cert_file))


def test_a_service_identity_has_a_dot_no_thing_name_can_have(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path)
    assert common_name(load(ca.issue_client("fanwatch.observer").cert_file)) == "fanwatch.observer"
    with pytest.raises(MqttRequestError, match="thing name"):
        ca.issue_client("fan/#")


def test_an_endpoint_refuses_a_client_certificate_without_tls(tmp_path: Path) -> None:
    pair = KeyPair(tmp_path / "c.pem", tmp_path / "c.key")
    with pytest.raises(ValueError, match="needs TLS"):
        BrokerEndpoint("127.0.0.1", 8883, client=pair)
    with pytest.raises(ValueError, match="not a TCP port"):
        BrokerEndpoint("127.0.0.1", 0)
    assert BrokerEndpoint("127.0.0.1", 8883, tmp_path / "ca.pem", pair).url == "mqtts://127.0.0.1:8883"
