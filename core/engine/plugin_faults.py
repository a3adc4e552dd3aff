"""A plugin's code failing for one request, said as INTERNAL naming the generator or effect,
the exception's type and its message (``Internal`` keeps the server's own paths out).

``SystemExit`` (an argparse inside a plugin) and a ``KeyboardInterrupt`` raised in a worker
thread are faults like any other: let through, they would end the whole server. A
KeyboardInterrupt in the main thread is the operator's Ctrl-C (``generate --local``) and goes
on; ``GeneratorExit`` is Python closing a generator, no fault at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .errors import FieldViolation, Internal, InvalidArgument, RequestError, new_correlation, request_field
from .generator import Cancelled, LimitExceeded, OutputEstimate

log = logging.getLogger("museforge.engine")


def is_plugin_fault(exc: BaseException) -> bool:
    """Whether ``exc``, raised by plugin code, fails the request rather than the process."""
    if isinstance(exc, (Exception, SystemExit)):
        return True
    return isinstance(exc, KeyboardInterrupt) and threading.current_thread() is not threading.main_thread()


def plugin_failed(what: str, exc: BaseException, where: str = "") -> Internal:
    """``<what> failed: <type>: <message>``, logged with its traceback; ``where`` says in which of
    the plugin's callables when it was not the run itself."""
    place = f" (in {where})" if where else ""
    error = Internal(f"{what} failed: {type(exc).__name__}: {exc}{place}")
    error.correlation = new_correlation()
    log.error("correlation id %s: %s failed%s", error.correlation, what, place, exc_info=exc)
    return error


def limit_exceeded(what: str, exc: LimitExceeded) -> InvalidArgument:
    """A request the plugin found it cannot do: the caller's to change, naming the field."""
    field = request_field(exc.fields[0]) if exc.fields else "parameters"
    return InvalidArgument(f"{what}: {exc.message}", [FieldViolation(field, exc.message)])


@contextmanager
def plugin_code(what: str, where: str) -> Iterator[None]:
    """Around a plugin's callable outside its run (its parameter model, ``check``, ``estimate``):
    a request error it raises is its answer, LimitExceeded names its field, the rest is its fault."""
    try:
        yield
    except (RequestError, Cancelled):  # its answer, or the call ended: neither is a fault
        raise
    except LimitExceeded as exc:
        raise limit_exceeded(what, exc) from None
    except BaseException as exc:
        if not is_plugin_fault(exc):
            raise
        raise plugin_failed(what, exc, where) from exc


def checked(what: str, check: Callable[..., Any], *args: Any) -> list[FieldViolation]:
    """A plugin's ``check(...)``: the problems it finds, each (field, problem), as request paths."""
    with plugin_code(what, "its check"):
        found = check(*args)
        if not isinstance(found, (list, tuple)) or not all(
                isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, str) for t in pair)
                for pair in found):
            raise TypeError(f"check returned {_shown(found)}, not a list of (field, problem) pairs")
        return [FieldViolation(request_field(field), problem) for field, problem in found]


def sized(what: str, output_size: Callable[..., Any], params: Any, inputs: Any) -> tuple[int, int]:
    """An effect's ``output_size(params, inputs)``, which must be two whole numbers."""
    with plugin_code(what, "its output_size"):
        found = output_size(params, inputs)
        if not (isinstance(found, (list, tuple)) and len(found) == 2 and all(
                isinstance(side, int) and not isinstance(side, bool) and side >= 0 for side in found)):
            raise TypeError(f"output_size returned {_shown(found)}, not (width, height) in whole numbers")
        return int(found[0]), int(found[1])


def estimated(what: str, estimate: Callable[[Any, int], Any], params: Any, count: int) -> OutputEstimate:
    """A generator's ``estimate(params, count)``, which must be an OutputEstimate."""
    with plugin_code(what, "its estimate"):
        found = estimate(params, count)
        if not isinstance(found, OutputEstimate):
            raise TypeError(f"estimate returned {_shown(found)}, not an OutputEstimate")
        if not isinstance(found.bytes, int) or isinstance(found.bytes, bool) or found.bytes < 0:
            raise TypeError(f"estimate returned bytes={_shown(found.bytes)}, not a whole number of 0 or more")
        if isinstance(found.fields, str) or not all(isinstance(field, str) for field in found.fields):
            raise TypeError(f"estimate returned fields={_shown(found.fields)}, not a tuple of field names")
        return found


def _shown(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"
