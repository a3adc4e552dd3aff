"""TLS: the server's credentials from the PEM files the settings name."""

from __future__ import annotations

from pathlib import Path

import grpc

from ..config import Settings
from .unsafe_setup import UnsafeSetup


def tls_enabled(settings: Settings) -> bool:
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise UnsafeSetup("tls_cert and tls_key go together: give both or neither")
    if settings.tls_client_ca and not settings.tls_cert:
        raise UnsafeSetup("tls_client_ca (mutual TLS) needs tls_cert and tls_key too")
    return bool(settings.tls_cert)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise UnsafeSetup(f"cannot read {what} {path}: {exc.strerror}") from exc


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the PEM files (client certificates required with tls_client_ca)."""
    if not tls_enabled(settings):
        return None
    chain = _read(settings.tls_cert, "tls_cert")
    key = _read(settings.tls_key, "tls_key")
    ca = _read(settings.tls_client_ca, "tls_client_ca") if settings.tls_client_ca else None
    _check_pair(settings.tls_cert, settings.tls_key)
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=ca, require_client_auth=ca is not None
    )


def _check_pair(cert: str, key: str) -> None:
    """Refuse a certificate and key that do not load as a pair, naming them: gRPC would only
    fail to bind, as if the port were taken."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # An empty passphrase: OpenSSL would otherwise ask for one on the terminal, and wait.
        context.load_cert_chain(Path(cert).expanduser(), Path(key).expanduser(), password=lambda: b"")
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UnsafeSetup(f"tls_cert {cert} and tls_key {key} are not a PEM certificate chain and its "
                          f"unencrypted private key ({reason})") from exc
