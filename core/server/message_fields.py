"""Protobuf messages filled from the same-named attributes of a record."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from google.protobuf.message import Message

M = TypeVar("M", bound=Message)


def message_from(message: type[M], source: object, names: Iterable[str], **converted: Any) -> M:
    """A ``message`` holding ``source``'s attributes ``names`` in the fields of the same names,
    plus the ``converted`` fields whose values the caller turned into the field's type."""
    return message(**{name: getattr(source, name) for name in names}, **converted)
