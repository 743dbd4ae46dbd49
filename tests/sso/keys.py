"""Signing keys for the test IdPs (and for attackers): RSA-2048 with a self-signed
certificate, generated fresh per test session; nothing is read from or written to the repo."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass
class KeyPair:
    key_pem: bytes
    cert_pem: bytes

    @property
    def cert_b64(self) -> str:
        """The certificate's DER in base64 on one line (what metadata and KeyInfo carry)."""
        body = self.cert_pem.decode().split("-----")[2]
        return "".join(body.split())


def make_key_pair(common_name: str) -> KeyPair:
    """A fresh RSA-2048 key and a self-signed certificate valid for a day around now."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyPair(key_pem=key_pem, cert_pem=cert.public_bytes(serialization.Encoding.PEM))
