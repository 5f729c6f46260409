"""A test CA and certificates, made at test time with ``cryptography``: a server certificate
for 127.0.0.1 and localhost, a client certificate, and a second CA that signed neither."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    """PEM files: ``ca``; ``server_cert``/``server_key``; ``client_cert``/``client_key``;
    ``other_ca``, a CA that signed none of them."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def _cert(subject: str, key, issuer: str, issuer_key, *, ca: bool = False,
          usage=None, names=()) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(folder: Path) -> Pki:
    def pem(cert: x509.Certificate, name: str) -> Path:
        path = folder / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    ca_key, other_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1())
                                                 for _ in range(4))
    ca = _cert("pdserving test CA", ca_key, "pdserving test CA", ca_key, ca=True)
    other = _cert("another CA", other_key, "another CA", other_key, ca=True)
    server = _cert("127.0.0.1", server_key, "pdserving test CA", ca_key,
                   usage=ExtendedKeyUsageOID.SERVER_AUTH,
                   names=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                          x509.DNSName("localhost")])
    client = _cert("a client", client_key, "pdserving test CA", ca_key,
                   usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return Pki(pem(ca, "ca.pem"), pem(server, "server.pem"),
               _write_key(server_key, folder / "server.key"), pem(client, "client.pem"),
               _write_key(client_key, folder / "client.key"), pem(other, "other-ca.pem"))
