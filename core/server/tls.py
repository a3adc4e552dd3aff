"""What the server exposes and how: TLS credentials, the interceptor, the safe-bind rule."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import grpc

from ..config import Settings, keys_path
from .auth import KeyError_, KeyFile, KeyRing
from .guard import Guard, Limits

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


class UnsafeSetup(ValueError):
    """The settings would expose the server unsafely, or cannot be used; the message says how to fix it."""


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, host: str) -> None:
    """Refuse a non-loopback address without TLS and API keys, unless told to allow it."""
    if is_loopback(host) or settings.allow_insecure:
        return
    missing = [
        what
        for what, ok in (
            ("TLS (tls_cert, tls_key)", tls_enabled(settings)),
            ("authentication (auth = true)", settings.auth),
        )
        if not ok
    ]
    if missing:
        raise UnsafeSetup(
            f"refusing to serve on {host} without {' and '.join(missing)}: anyone who can reach the "
            "port could run your models. Configure them (see docs/security.md), bind 127.0.0.1, or "
            "pass --insecure if a trusted network already protects this port."
        )


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


def build_guard(settings: Settings) -> Guard:
    ring = None
    if settings.auth:
        try:
            keys = KeyFile(keys_path(settings)).load()
        except KeyError_ as exc:
            raise UnsafeSetup(str(exc)) from exc
        if not keys:
            raise UnsafeSetup(
                f"auth is on but {keys_path(settings)} holds no API key; create one with "
                "`museforge keys create --scopes generate,jobs`"
            )
        ring = KeyRing(keys)
    limits = Limits(settings.max_concurrent_per_key, settings.requests_per_second_per_key,
                    request_bytes=settings.max_request_bytes_in_flight,
                    open_streams=settings.max_open_streams)
    return Guard(ring, set(settings.open_services), limits)
