"""What the Python client sends, built and checked before any call: the seed, effect inputs,
the server's address, and feedback references."""

from __future__ import annotations

import enum
import hashlib
import json
import numbers
import operator
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from .config import DEFAULT_ADDRESS, port_problem
from .v1 import feedback_pb2 as fb
from .v1 import museforge_pb2 as pb

__all__ = ["CLIENT_TIMEOUT", "Inputs", "Timeout", "artifact_ref", "check_port", "counted", "deadline",
           "dial_target", "feedback_event", "media_inputs", "recommend_kind", "seconds", "seeded"]

Input = bytes | tuple[str, bytes] | str | os.PathLike[str]
Inputs = Input | Sequence[Input]  # one input given alone is taken as a list of one
RequestT = TypeVar("RequestT", pb.GenerateRequest, pb.ApplyEffectRequest)
BYTES = (bytes, bytearray, memoryview)
# Target forms gRPC reads itself (dns:///host:port, unix:/path ...): passed on as they are.
GRPC_SCHEMES = ("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "vsock:")
COUNT_MAX = 2**32 - 1  # GenerateRequest.count is a uint32
# gRPC holds a deadline as int64 nanoseconds since 1970: one much past 2200 wraps and fails at once.
TIMEOUT_MAX = 10**9
RECOMMEND_KINDS = ("generators", "presets", "artifacts")


def _enum_words(names: Sequence[str], prefix: str) -> tuple[str, ...]:
    """An enum's values as the client takes them (``FEEDBACK_KIND_PICK`` -> "pick"), UNSPECIFIED left out."""
    return tuple(name.removeprefix(prefix).lower() for name in names if not name.endswith("_UNSPECIFIED"))


FEEDBACK_KINDS = _enum_words(fb.FeedbackKind.keys(), "FEEDBACK_KIND_")
THUMBS = _enum_words(fb.Thumb.keys(), "THUMB_")


class ClientTimeout(enum.Enum):
    """The default ``timeout`` of a call: the client's own (an explicit None is no limit)."""

    CLIENT = "the client's timeout"


CLIENT_TIMEOUT = ClientTimeout.CLIENT
Timeout = float | None | ClientTimeout


def seeded(message: RequestT, seed: int | None) -> RequestT:
    """The request with its seed set; left unset, the server picks one and reports it."""
    if seed is not None:
        message.seed = whole_number(seed, "seed", 0, 2**64 - 1, "0 to 2**64 - 1")
    return message


def counted(count: int) -> int:
    """``count`` checked as ``seed`` is: 0 would quietly make one artifact, and a number out of the
    proto's uint32 would fail in protobuf naming no field."""
    return whole_number(count, "count", 1, COUNT_MAX, "1 to 2**32 - 1")


def whole_number(value: int, field: str, low: int, high: int, span: str) -> int:
    """``value`` as a plain int from ``low`` to ``high``: TypeError naming ``field`` for what is no
    whole number (a float, a bool; numpy integers are taken), ValueError for one out of range."""
    try:
        if isinstance(value, bool):
            raise TypeError
        whole = operator.index(value)
    except TypeError:
        raise TypeError(f"{field}: a whole number, got {type(value).__name__}") from None
    if not low <= whole <= high:
        raise ValueError(f"{field}: {span}, got {whole}")
    return whole


def seconds(timeout: float | None) -> float | None:
    """``timeout`` checked: seconds above 0 (up to TIMEOUT_MAX), or None for no limit; ValueError
    otherwise, as text or a bool would fail later in gRPC naming no field, and -1 as an expired call."""
    if timeout is None:
        return None
    if isinstance(timeout, numbers.Real) and not isinstance(timeout, bool) and 0 < timeout <= TIMEOUT_MAX:
        return float(timeout)
    raise ValueError(f"timeout: seconds above 0 (at most {TIMEOUT_MAX:,}), or None for no limit; "
                     f"got {timeout!r}")


def deadline(timeout: Timeout, default: float | None) -> float | None:
    """A call's ``timeout`` as gRPC takes it: CLIENT_TIMEOUT is the client's own (``default``), any
    other value is checked by ``seconds``. One rule for every call of the client."""
    return default if timeout is CLIENT_TIMEOUT else seconds(timeout)


def recommend_kind(kind: str) -> int:
    """The RecommendKind of "generators", "presets" or "artifacts" (the singular too, as one says
    "recommend an artifact"); ValueError listing the kinds for any other."""
    if not isinstance(kind, str):
        raise TypeError(f"kind: text, one of {', '.join(RECOMMEND_KINDS)}; got {type(kind).__name__}")
    word = kind.strip().lower().removeprefix("recommend_kind_")
    plural = word if word.endswith("s") else f"{word}s"
    if plural not in RECOMMEND_KINDS:
        raise ValueError(f"kind: one of {', '.join(RECOMMEND_KINDS)} (or the singular); got {kind!r}")
    return int(fb.RecommendKind.Value(f"RECOMMEND_KIND_{plural.upper()}"))


def artifact_ref(artifact: pb.Artifact | bytes,
                 provenance: Mapping[str, str] | None = None) -> fb.ArtifactRef:
    """The feedback reference of an artifact: the sha256 of its bytes and its provenance.

    Pass a ``pb.Artifact`` as Generate returned it (its metadata is the provenance), or a
    file's bytes and the provenance read from it (e.g. ``read_png_provenance``).
    """
    data = artifact.data if isinstance(artifact, pb.Artifact) else artifact
    record = dict(artifact.metadata) if isinstance(artifact, pb.Artifact) else dict(provenance or {})
    models = json.loads(record.get("models") or "[]")
    ref = fb.ArtifactRef(sha256=hashlib.sha256(data).hexdigest(), generator=record.get("generator", ""),
                         effect=record.get("effect", ""), seed=int(record.get("seed") or 0),
                         model_version=str(models[0].get("version", "")) if models else "",
                         index=int(record.get("index") or 0))
    ref.parameters.update(json.loads(record.get("parameters") or "{}"))
    return ref


def feedback_event(kind: str, artifact: fb.ArtifactRef | None = None, *, user: str = "", thumb: str = "",
                   stars: int = 0, candidates: Sequence[fb.ArtifactRef] = ()) -> fb.FeedbackEvent:
    """An event to record: ``kind`` is thumbs, stars, pick, keep or shown; ``thumb`` up or down.

    A pick's ``artifact`` is the chosen one of its ``candidates``.
    """
    named = f"THUMB_{_word('thumb', thumb, THUMBS)}" if thumb else None
    event = fb.FeedbackEvent(user=user, kind=f"FEEDBACK_KIND_{_word('kind', kind, FEEDBACK_KINDS)}",
                             stars=_stars(stars), thumb=named, candidates=list(candidates))
    if artifact is not None:
        event.artifact.CopyFrom(artifact)
    return event


def _word(name: str, value: object, allowed: Sequence[str]) -> str:
    """``value`` (any case) upper-cased as its enum spells it, or an error naming argument ``name``
    and what it takes (protobuf's own "unknown enum label" names neither)."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: text, one of {', '.join(allowed)}; got {type(value).__name__}")
    if value.strip().lower() not in allowed:
        raise ValueError(f"{name}: one of {', '.join(allowed)}; got {value!r}")
    return value.strip().upper()


def _stars(stars: object) -> int:
    """``stars`` as the uint32 the event carries; the server says which counts are allowed (1 to 5)."""
    if isinstance(stars, bool) or not isinstance(stars, numbers.Integral):
        raise TypeError(f"stars: a whole number, 1 to 5; got {type(stars).__name__} {stars!r}")
    if not 0 <= int(stars) <= COUNT_MAX:
        raise ValueError(f"stars: 1 to 5; got {stars}")
    return int(stars)


def check_port(address: str) -> None:
    """ValueError for a HOST:PORT whose port gRPC would not dial as written (``port_problem``), or
    for a URL, which gRPC would try to resolve as a host name."""
    if not isinstance(address, str):
        raise TypeError(f"the server's address is HOST:PORT text, got {type(address).__name__}")
    if address.lower().startswith(("http://", "https://", "grpc://")):
        raise ValueError(f"give the server as HOST:PORT (its gRPC port, e.g. 127.0.0.1:50051), not a URL: "
                         f"{address[:80]!r}")
    if not address.lower().startswith(GRPC_SCHEMES) and ":" in address:
        host, _, port = address.rpartition(":")
        if not host.strip("[]"):
            raise ValueError(f"give a host before the port, e.g. 127.0.0.1{address[:12]}")
        if not (port.isascii() and port.isdigit()) and not host.endswith(":"):  # not a bare IPv6 address
            raise ValueError(f"the port is a number, got {port[:12]!r} in {address[:80]!r}")
    problem = port_problem(address, lowest=1)
    if problem:
        raise ValueError(problem)


def dial_target(address: str) -> str:
    """``address`` as gRPC dials it: a bare host name gets museforge's port (gRPC would take 443)."""
    check_port(address)
    bare = ":" not in address and "/" not in address and address.strip() != ""
    return f"{address}:{DEFAULT_ADDRESS.rpartition(':')[2]}" if bare else address


def media_inputs(inputs: Inputs) -> list[pb.MediaInput]:
    """File bytes, (name, bytes) pairs, or paths (read here, named by their file name); one path or
    one file's bytes given alone is one input (a str or bytes is no list of inputs to iterate)."""
    if isinstance(inputs, (str, os.PathLike, *BYTES)):
        inputs = [inputs]  # type: ignore[list-item]  # a bytearray or memoryview is read below
    elif not isinstance(inputs, Iterable) or isinstance(inputs, Mapping):
        raise TypeError(f"inputs: a list of file bytes, (name, bytes) pairs or paths, or one of them; "
                        f"got {type(inputs).__name__}")
    media = []
    for place, item in enumerate(inputs):
        if isinstance(item, (str, os.PathLike)):
            path = Path(item)
            media.append(pb.MediaInput(name=path.name, data=path.read_bytes()))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], BYTES):
            media.append(pb.MediaInput(name=str(item[0]), data=bytes(item[1])))
        elif isinstance(item, BYTES):
            media.append(pb.MediaInput(data=bytes(item)))
        else:
            raise TypeError(f"inputs[{place}]: a file's bytes, a (name, bytes) pair or a path, "
                            f"got {type(item).__name__}")
    return media
