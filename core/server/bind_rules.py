"""The safe-bind rule: which addresses the server may listen on with the settings it has."""

from __future__ import annotations

import ipaddress
import socket

from ..config import Settings
from .tls import tls_enabled
from .unsafe_setup import UnsafeSetup

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, host: str, what: str = "") -> None:
    """Refuse a non-loopback address without TLS and API keys, unless told to allow it; ``what``
    names the listener when it is not the gRPC one (its setting, so the message says which)."""
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
        where = f"{what} on {host}" if what else f"on {host}"
        raise UnsafeSetup(
            f"refusing to serve {where} without {' and '.join(missing)}: anyone who can reach the "
            "port could run your models. Configure them (see docs/security.md), bind 127.0.0.1, or "
            "pass --insecure if a trusted network already protects this port."
        )


def check_free(host: str, port: int) -> None:
    """OSError when ``host:port`` is taken (port 0 is always free). Each address the host names is
    bound alone, without SO_REUSEPORT, so a server already listening there refuses it; said
    before any model loads."""
    if not port:
        return
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:  # gRPC could not bind it either
        raise OSError(f"{host} names no address here ({exc.strerror})") from None
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
