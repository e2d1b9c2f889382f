"""The development certificate: made once, private, reused, renewed when broken."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509

from semantik_runner.tls import CERT_NAME, KEY_NAME, ensure_dev_certificate


def test_made_once_private_and_reused(tmp_path: Path) -> None:
    directory = tmp_path / "secrets"
    cert, key = ensure_dev_certificate(directory)
    assert (cert, key) == (directory / CERT_NAME, directory / KEY_NAME)
    assert key.stat().st_mode & 0o777 == 0o600
    assert directory.stat().st_mode & 0o777 == 0o700
    first = cert.read_bytes(), key.read_bytes()
    assert ensure_dev_certificate(directory) == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == first


def test_names_localhost_and_loopback_addresses(tmp_path: Path) -> None:
    cert_path, key_path = ensure_dev_certificate(tmp_path)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC) + datetime.timedelta(
        days=300
    )
    # Usable as a server certificate and, by itself, as the client's trust anchor.
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_path, key_path)
    ssl.create_default_context(cafile=str(cert_path))


def test_broken_or_mismatched_files_are_replaced(tmp_path: Path) -> None:
    cert, key = ensure_dev_certificate(tmp_path / "a")
    other_cert, _ = ensure_dev_certificate(tmp_path / "b")
    cert.write_bytes(other_cert.read_bytes())  # a certificate for another key
    new_cert, _ = ensure_dev_certificate(tmp_path / "a")
    assert new_cert.read_bytes() != other_cert.read_bytes()
    key.write_text("not a key")
    ensure_dev_certificate(tmp_path / "a")
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert key.stat().st_mode & 0o777 == 0o600
