"""API keys: created once and shown once, stored only as sha256 digests, each with scopes.

A key looks like ``mf_<id>_<secret>``: the id is public (it names the key in listings,
logs and rate limits), the secret is 32 random bytes. The keys file holds, per key,
its id, a name, its scopes and the sha256 of the whole key, never the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not on Windows: one command at a time there
    fcntl = None

SCOPES = ("read", "generate", "infer", "jobs", "admin")
PREFIX = "mf_"


def bearer_token(header: str) -> str:
    """The key in an ``authorization: Bearer <key>`` value; empty when there is none."""
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


class KeyError_(ValueError):
    """A keys file or a scope that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    sha256: str
    created: float

    def allows(self, scope: str) -> bool:
        """admin allows everything; any valid key may read (list, metadata, statistics)."""
        return scope == "read" or "admin" in self.scopes or scope in self.scopes


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_scopes(scopes: list[str]) -> tuple[str, ...]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise KeyError_(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
    return tuple(dict.fromkeys(scopes))


# Control and format characters, line and paragraph separators: in a listing they would break a row,
# send the terminal escape sequences or reorder the text around them (bidirectional overrides).
HIDDEN = ("Cc", "Cf", "Zl", "Zp")


def shown_name(name: str) -> str:
    """``name`` with each hidden character written as its escape (\\n, \\x1b, \\u202e), to print."""
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in HIDDEN else c
                   for c in name)


def check_name(name: str) -> str:
    if shown_name(name) != name:
        raise KeyError_("a key's name cannot hold control characters (line breaks, tabs, terminal escapes, "
                        f"direction overrides): got {name!r}")
    return name


class KeyFile:
    """The keys file (JSON), read once per server start and rewritten atomically by the CLI."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[ApiKey]:
        if not self.path.exists():
            return []
        try:
            document = json.loads(self.path.read_text("utf-8"))
            return [
                ApiKey(
                    k["id"],
                    k.get("name", ""),
                    check_scopes(list(k["scopes"])),
                    k["sha256"],
                    float(k.get("created", 0)),
                )
                for k in document.get("keys", [])
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyError_(f"keys file {self.path} is unreadable: {exc}") from exc

    def save(self, keys: list[ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {"keys": [{**asdict(k), "scopes": list(k.scopes)} for k in keys]}
        fd, temp = tempfile.mkstemp(prefix=".keys-", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
        os.chmod(temp, 0o600)  # digests only, but nobody else needs to read them
        os.replace(temp, self.path)

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Held across a read, change and rewrite: two commands at once (a create beside a
        revoke) would each write back what they read, losing a key or bringing a revoked one back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing lets the lock go

    def create(self, name: str, scopes: list[str]) -> tuple[str, ApiKey]:
        """A new key (returned once, in clear) and its stored record."""
        check_name(name)
        with self._changing():
            existing = self.load()
            taken = {k.id for k in existing}
            key_id = secrets.token_hex(4)
            while key_id in taken:  # ids name keys in listings, logs and revoke: keep them unique
                key_id = secrets.token_hex(4)
            key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            record = ApiKey(key_id, name, check_scopes(scopes), digest(key), time.time())
            self.save([*existing, record])
        return key, record

    def revoke(self, key_id: str) -> bool:
        with self._changing():
            keys = self.load()
            kept = [k for k in keys if k.id != key_id]
            if len(kept) == len(keys):
                return False
            self.save(kept)
        return True


class KeyRing:
    """The server's view of the keys: constant-time lookup of a presented key."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self.by_id = {k.id: k for k in keys}

    def find(self, presented: str) -> ApiKey | None:
        if not presented.startswith(PREFIX):
            return None
        key_id = presented[len(PREFIX) :].split("_", 1)[0]
        record = self.by_id.get(key_id)
        if record is None:
            return None
        return record if hmac.compare_digest(record.sha256, digest(presented)) else None
