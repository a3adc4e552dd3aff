"""Server logging: readable lines by default, or one JSON object per line for log pipelines."""

from __future__ import annotations

import contextlib
import json
import logging
import sys


class JsonFormatter(logging.Formatter):
    """time, level, logger, message (and the traceback, when there is one) as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def banner(text: str) -> None:
    """The line scripts wait for, on stdout; a terminal that hung up while it was written (EIO)
    leaves the server serving, and its SIGHUP drains it."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


def models_said(ready: int, failed: int) -> str:
    """The banner's count of models: a failed one is said, not only missing from the ready."""
    return f"{ready} models ready" + (f", {failed} failed (museforge models list says why)" if failed else "")


def announce(fmt: str, text: str, level: int = logging.INFO) -> None:
    """A line of the server's own to its operator (where it listens, that it drains, why it cannot
    start: ``level`` ERROR) on stderr: "museforge: <text>", or with ``fmt`` json a JSON object as the
    log's, whatever the log level."""
    if fmt == "json":
        record = logging.LogRecord("museforge.server", level, __file__, 0, text, None, None)
        line = JsonFormatter().format(record)
    else:
        line = f"museforge: {text}"
    with contextlib.suppress(OSError):  # a terminal that hung up (EIO): the drain goes on regardless
        print(line, file=sys.stderr, flush=True)


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)


class EndedWrites(logging.Filter):
    """grpc logs an ERROR with a traceback for every message a stream could not write because its
    client had cancelled or gone: an ordinary end of a call, which any client could otherwise
    use to fill the log and set off alerts. Said at DEBUG in one line instead."""

    PREFIX = "ExecuteBatchError raised in core by servicer method"

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.PREFIX):
            return True
        if not logging.getLogger("museforge").isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg, record.args, record.exc_info, record.exc_text = (
            "a stream's client had ended the call before a write: %s", (record.getMessage(),), None, None)
        return True


def quiet_ended_writes() -> None:
    """Install ``EndedWrites`` on grpc's logger, once."""
    grpc_log = logging.getLogger("grpc._cython.cygrpc")
    if not any(isinstance(f, EndedWrites) for f in grpc_log.filters):
        grpc_log.addFilter(EndedWrites())
