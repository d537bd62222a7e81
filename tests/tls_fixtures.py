"""Fixtures: a private certificate authority and a mosquitto running the project's own TLS + ACL config
(etc/mosquitto/)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kartud.room.sim_room import PrivateBroker

REPO = Path(__file__).resolve().parent.parent


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


class CertificateAuthority:
    """An EC P-256 CA that issues the broker's and clients' certificates into ``directory``."""

    def __init__(self, directory: Path):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(_name("kartud test CA")).issuer_name(_name("kartud test CA"))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.ca_file = directory / "ca.crt"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, cn: str, server: bool = False) -> tuple[str, str]:
        """A certificate and key for ``cn``; returns their file paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2)))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = self.dir / f"{cn}.crt", self.dir / f"{cn}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        return str(cert_path), str(key_path)


def secure_broker(directory: Path, ca: CertificateAuthority) -> PrivateBroker:
    """A mosquitto whose config is the shipped etc/mosquitto/kartud.conf, with this test's port and paths."""
    broker = PrivateBroker(str(directory))
    cert, key = ca.issue("broker", server=True)
    shipped = (REPO / "etc" / "mosquitto" / "kartud.conf").read_text()
    acl = directory / "kartud.acl"
    acl.write_text((REPO / "etc" / "mosquitto" / "kartud.acl").read_text())
    text = (shipped.replace("listener 8883", f"listener {broker.port} 127.0.0.1")
            .replace("/etc/mosquitto/certs/ca.crt", str(ca.ca_file))
            .replace("/etc/mosquitto/certs/broker.crt", cert)
            .replace("/etc/mosquitto/certs/broker.key", key)
            .replace("/etc/mosquitto/kartud.acl", str(acl))
            .replace("/var/lib/mosquitto/", f"{directory}/"))
    assert text.count(str(directory)) >= 2, "the shipped config changed shape; update this fixture"
    extra = "user root\n" if os.geteuid() == 0 else ""
    Path(broker.conf).write_text(text + f"\nlog_dest file {directory}/mosquitto.log\n" + extra)
    return broker.start()


@pytest.fixture
def ca(tmp_path):
    return CertificateAuthority(tmp_path / "pki")


@pytest.fixture
def tls_broker(tmp_path, ca):
    broker = secure_broker(tmp_path / "tls-broker", ca)
    yield broker
    broker.stop()
