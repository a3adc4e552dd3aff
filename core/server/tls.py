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
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=ca, require_client_auth=ca is not None
    )
