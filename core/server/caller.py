"""Who is calling: the id of the API key the guard accepted, for handlers that keep data per caller.

The guard sets it when a call starts, in the call's own task (grpc runs a unary call's
behaviour, and an in-process gateway call, in the coroutine that awaited the guard), so
each call sees only its own key. None: the server has no auth (or the service is open).
"""

from __future__ import annotations

import contextvars

_KEY_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("museforge_caller_key", default=None)
_ADMIN: contextvars.ContextVar[bool] = contextvars.ContextVar("museforge_caller_admin", default=False)


def set_caller(key_id: str | None, admin: bool = False) -> None:
    _KEY_ID.set(key_id)
    _ADMIN.set(admin)


def caller_key() -> str | None:
    """The calling key's id, or None when no key was checked."""
    return _KEY_ID.get()


def caller_is_admin() -> bool:
    """Whether the calling key has the admin scope (which sees every key's jobs)."""
    return _ADMIN.get()
