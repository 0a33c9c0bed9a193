"""Throwaway TLS certificates for the tests and local servers: a CA of their own and a
server certificate it signs, for 127.0.0.1 and localhost unless told other names.

Nothing here is for a hospital's deployment: the CA's key is thrown away once it has signed.
The tests' certificates last a day; `python -m devserver.tls` makes the reference analyser's
in docker-compose.yml, and keeps them while they have long to run.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# P-256: a key in a millisecond, where RSA takes a tenth of a second or more.
CURVE = ec.SECP256R1()
LIFETIME = timedelta(days=1)
# docker-compose.yml's: each `up` makes new ones once less than RENEW_BEFORE is left.
SERVICE_LIFETIME = timedelta(days=90)
RENEW_BEFORE = timedelta(days=30)
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """PEM files: the CA to trust, and the server's certificate and private key."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    # A client's certificate from the same CA, for mutual TLS, when one was asked for.
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    def keystore(self) -> Path:
        """One PEM file holding the key, then the certificate: what Kafka's PEM keystore and
        other servers that take a single file want (mode 0600, beside the key)."""
        path = self.key_file.with_name("keystore.pem")
        with open(path, "wb", opener=lambda p, flags: os.open(p, flags, 0o600)) as file:
            file.write(self.key_file.read_bytes() + self.cert_file.read_bytes())
        return path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _subject_names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    # Servers (PostgreSQL among them) refuse a key that others may read.
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with open(path, "wb", opener=lambda p, flags: os.open(p, flags, 0o600)) as file:
        file.write(pem)


def make_server_certificate(
    folder: Path,
    hosts: tuple[str, ...] = LOOPBACK_NAMES,
    ca_name: str = "Vigil test CA",
    lifetime: timedelta = LIFETIME,
    ca_folder: Path | None = None,
    client: str | None = None,
) -> ServerCertificate:
    """A new CA and a certificate it signs for `hosts`, written to `folder` (created); the
    CA's certificate to `ca_folder` if given, for those who only verify. With `client`, also
    a client certificate of that name from the same CA."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(CURVE)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + lifetime)
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
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = ServerCertificate(
        ca_file=(ca_folder or folder) / "ca.pem",
        cert_file=folder / "server.pem",
        key_file=folder / "server-key.pem",
        client_cert_file=None if client is None else folder / "client.pem",
        client_key_file=None if client is None else folder / "client-key.pem",
    )
    files.ca_file.parent.mkdir(parents=True, exist_ok=True)
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leaves = [(files.cert_file, files.key_file, hosts[0], hosts, ExtendedKeyUsageOID.SERVER_AUTH)]
    if client is not None:
        leaves.append(
            (
                files.client_cert_file,
                files.client_key_file,
                client,
                (),
                ExtendedKeyUsageOID.CLIENT_AUTH,
            )
        )
    for cert_file, key_file, name, names, usage in leaves:
        key = ec.generate_private_key(CURVE)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(_subject_names(names)), critical=False
            )
        cert_file.write_bytes(
            builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        )
        _write_private_key(key_file, key)
    return files


def main(argv: list[str]) -> int:
    """`python -m devserver.tls FOLDER CA_FOLDER --host NAME...`: a server certificate and key
    in FOLDER, its CA's certificate in CA_FOLDER; those there are kept while they have more
    than RENEW_BEFORE to run."""
    parser = argparse.ArgumentParser(prog="python -m devserver.tls", description=main.__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("ca_folder", type=Path)
    parser.add_argument("--host", action="append", required=True, help="a name or address")
    args = parser.parse_args(argv)
    cert_file = args.folder / "server.pem"
    if cert_file.exists() and (args.ca_folder / "ca.pem").exists():
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        if certificate.not_valid_after_utc - datetime.now(UTC) > RENEW_BEFORE:
            print(f"kept the certificate in {args.folder}")
            return 0
    make_server_certificate(
        args.folder,
        tuple(args.host),
        ca_name="Vigil compose CA",
        lifetime=SERVICE_LIFETIME,
        ca_folder=args.ca_folder,
    )
    print(f"made a certificate for {', '.join(args.host)} in {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
