"""Settings checks that config.py's model calls on: browser origins written as browsers send them,
and ``MUSEFORGE_*`` environment variables that set nothing (a typo would otherwise be ignored)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from .near_names import nearest

# MUSEFORGE_* variables read outside the settings: not typos of a setting.
NOT_SETTINGS = frozenset({
    "MUSEFORGE_CONFIG",  # the settings file itself
    "MUSEFORGE_API_KEY",  # the key client commands send
    "MUSEFORGE_SOUNDFONT_PATH", "MUSEFORGE_RENDER_PROCESSES",  # the music plugin
    "MUSEFORGE_SOAK_SECONDS", "MUSEFORGE_REQUIRE_BROWSER",  # the test suite
})
DEFAULT_PORTS = {"http": 80, "https": 443}  # a browser's Origin never writes these


def browser_origin(entry: str) -> str:
    """``entry`` as a browser's Origin header writes it: scheme and host in lower case, no default
    port, no trailing "/"; ValueError for what no Origin can be (a path, query, user or fragment).
    An origin is compared as a string, so ``http://Example.com/`` would never match otherwise."""
    if entry == "*":
        return entry
    shape = "an origin is SCHEME://HOST[:PORT], as a browser's Origin header sends it (e.g. " \
            "'https://tools.example.com'), or '*'"
    try:
        parts = urlsplit(entry.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{entry[:200]!r}: {exc}; {shape}") from None
    if not parts.scheme or not parts.hostname:
        raise ValueError(f"{entry[:200]!r} has no scheme or host: {shape}")
    path = parts.path[:-1] if parts.path.endswith("/") else parts.path
    extra = [what for what, there in (("a path", path), ("a query", parts.query), ("a fragment",
             parts.fragment), ("a user", parts.username is not None)) if there]
    if extra:
        raise ValueError(f"{entry[:200]!r} has {' and '.join(extra)}: {shape}")
    host = parts.hostname  # lower case already
    if not host.isascii():
        raise ValueError(f"{entry[:200]!r}: write a non-ASCII host as browsers send it, in punycode "
                         f"({host.encode('idna').decode()!r})")
    scheme = parts.scheme.lower()
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and DEFAULT_PORTS.get(scheme) != port:
        netloc += f":{port}"
    return f"{scheme}://{netloc}"


def stray_variables(environ: Mapping[str, str], prefix: str, settings: Iterable[str]) -> list[str]:
    """A warning for each ``prefix`` variable that is neither a setting nor read elsewhere, with the
    setting's variable it likely misspells."""
    known = {prefix + name.upper() for name in settings} | NOT_SETTINGS
    suffixes = sorted(name[len(prefix):] for name in known)
    warnings = []
    for name in sorted(environ):
        if not name.upper().startswith(prefix) or name in known:
            continue
        # Matched without the prefix, which every candidate shares and would make all look close.
        close = nearest(name[len(prefix):].upper(), suffixes)
        hint = f"did you mean {prefix}{close}?" if close else \
            "the settings are listed in README.md under Configuration"
        warnings.append(f"environment variable {name[:80]} is not a setting and is ignored ({hint})")
    return warnings
