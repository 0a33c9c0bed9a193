"""TLS contexts for the links Vigil serves and dials itself (HL7 over MLLP); the others take
their TLS from their own libraries (gunicorn, librdkafka, redis-py, libpq)."""

from __future__ import annotations

import ssl
from pathlib import Path

# What every current peer speaks; older versions are what an attacker downgrades to.
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


def server_context(
    cert_file: Path, key_file: Path, client_ca_file: Path | None = None
) -> ssl.SSLContext:
    """A listener's context: its certificate and key (PEM); TLS 1.2 at least. With
    `client_ca_file`, every client must show a certificate that CA signed (mutual TLS)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = MINIMUM_VERSION
    context.load_cert_chain(cert_file, key_file)
    if client_ca_file is not None:
        context.load_verify_locations(client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(
    ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """A client's context: the server's certificate checked against `ca_file` (else the
    system's CAs), and its name against the host dialled; TLS 1.2 at least. With `cert_file`
    and `key_file`, the certificate it shows a server that asks (mutual TLS)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = MINIMUM_VERSION
    if cert_file is not None:
        context.load_cert_chain(cert_file, key_file)
    return context
