"""One item of a job: read a frame, run the effect chain on it, write the result atomically.

Shared by every executor (the local one here, a cluster's workers elsewhere), so a
frame comes out byte-identical whichever ran it, and however often it was retried.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..engine.catalogue import Artifact, EffectInput, Engine
from ..engine.codecs.decoders import sniff
from ..engine.effect import Effect, Picture
from ..engine.errors import RequestError, ResourceExhausted
from ..engine.generator import SourceHeader
from ..file_modes import FILE_MODE
from .paths import PathRefused, Sandbox
from .store import ItemState

if TYPE_CHECKING:  # the plan's module imports this one's
    from .plan import Step

ABANDON_SECONDS = 5.0  # how long a halted item may take to notice before it is left running
OVERLOAD_RETRIES = 600  # with the queue's retry delay (0.1 s), about a minute of back-off
LOSSLESS_BETWEEN_STEPS = ("exr", "png16", "png")  # what one step hands the next, best first


log = logging.getLogger("museforge.jobs")
T = TypeVar("T")


@dataclass(frozen=True)
class FrameLimits:
    timeout_seconds: float = 600.0  # one frame, the whole chain
    max_input_bytes: int = 512 * 1024 * 1024


class ItemError(Exception):
    """This item cannot be done (missing or undecodable input, an effect failure)."""


class ItemCancelled(Exception):
    """The job was cancelled while this item ran; nothing was written."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a crash) never sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    discard_stale_writes_of([path])
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        # mkstemp makes the file 0600; a render is for the farm to read, as a file opened plainly is.
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def discard_stale_writes_of(paths: Iterable[Path]) -> None:
    """Remove the temporary files killed writers of ``paths`` left beside them (never the paths
    themselves): each folder is listed once, however many targets it holds."""
    by_folder: dict[Path, set[str]] = {}
    for path in paths:
        by_folder.setdefault(path.parent, set()).add(path.name)
    for folder, names in by_folder.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:  # gone, or never made: nothing was written there
            continue
        for entry in entries:
            # mkstemp names them ".<target>.<random>.part" (see write_atomic)
            if entry.name.startswith(".") and entry.name.endswith(".part"):
                target = entry.name[1:-len(".part")].rpartition(".")[0]
                if target in names:
                    Path(entry.path).unlink(missing_ok=True)


def intermediate_format(engine: Engine, effect: str, source_format: str) -> str:
    """A lossless format the step can write and the next read: EXR keeps float EXR frames float."""
    usable = [f for f in engine.effects[effect].formats if f in engine.encoders]
    preferred = ("exr",) if source_format == "exr" else ("png16", "png")
    return next((f for f in (*preferred, *LOSSLESS_BETWEEN_STEPS) if f in usable), (usable or [""])[0])


def formats_named(engine: Engine, effect: Effect, extension: str) -> list[str]:
    """The formats ``effect`` writes whose files end ``.extension``, the one so named first (.jpeg)."""
    writes = {n: engine.encoders[n].extension for n in effect.formats if n in engine.encoders}
    return [n for n in writes if n == extension] + [n for n, ext in writes.items() if ext == extension != n]


def final_format_of(engine: Engine, effect: str, source_format: str, extension: str) -> str:
    """With no format asked, what the last step writes: the input's own format when its files end
    ``.extension`` (a 16-bit PNG stays 16-bit), else the format the output's extension names, so a
    file holds what its name says whatever the input turned out to be (a JPEG named .exr)."""
    known = engine.effects.get(effect)
    if not extension or known is None:  # (an effect gone since submission: its step says so)
        return source_format
    named = formats_named(engine, known, extension)
    if not named:
        raise ItemError(f"the output ends .{extension}, which {effect} does not write")
    return source_format if source_format in named else named[0]


def run_chain(
    engine: Engine,
    steps: Sequence[Step],
    data: bytes,
    name: str,
    final_format: str,
    seed: int,
    cancel: threading.Event | None = None,
    extension: str = "",
) -> bytes:
    """The frame after every step; the last step writes ``final_format`` or, when that is empty, the
    format the output's ``extension`` names (the input's own when it is one of those)."""
    if not data:
        raise ItemError(f"{name} is empty (0 bytes)")
    source_format = sniff(data)
    if source_format is None:
        raise ItemError(f"{name} is not a PNG, JPEG, WebP or OpenEXR file")
    if source_format == "png" and _is_16_bit_png(data):
        source_format = "png16"
    written = final_format or final_format_of(engine, steps[-1].effect, source_format, extension)
    original: SourceHeader | None = None  # the frame's own header: the last step's result keeps it
    for number, step in enumerate(steps):
        last = number == len(steps) - 1
        fmt = written if last else intermediate_format(engine, step.effect, source_format)
        try:
            artifacts, original = _run_step(engine, step, data, name, seed, fmt, cancel, original, last)
        except RequestError as exc:
            detail = "; ".join(f"{v.field}: {v.description}" for v in exc.violations) or exc.message
            raise ItemError(f"step {number} ({step.effect}): {detail}") from exc
        if cancel is not None and cancel.is_set():
            raise ItemCancelled(name)
        if len(artifacts) != 1:
            raise ItemError(f"step {number} ({step.effect}) gave {len(artifacts)} results, expected 1")
        data = artifacts[0].data
    return data


def _run_step(
    engine: Engine, step: Step, data: bytes, name: str, seed: int, fmt: str, cancel: threading.Event | None,
    original: SourceHeader | None, last: bool,
) -> tuple[list[Artifact], SourceHeader | None]:
    """The step's results, and the frame's own header (read from the first step's input).

    Between steps a frame travels losslessly (an EXR as float, ZIP), keeping the header's other
    attributes; the last step writes what the frame was (its half floats, its compression), so a
    half DWAA plate is rounded and compressed once, not after every step."""
    found = [original]

    def once() -> list[Artifact]:
        prepared = engine.prepare_effect(step.effect, step.parameters, [EffectInput(data, name)], seed, fmt)
        picture = prepared.inputs[0] if len(prepared.inputs) == 1 else None
        if isinstance(picture, Picture):
            found[0] = found[0] or picture.source
            keep = found[0] if last else lossless(found[0])
            prepared = replace(prepared, inputs=(replace(picture, source=keep),))
        with closing(engine.run(prepared, cancel)) as run:  # ended here even when a step fails
            return [e for e in run if isinstance(e, Artifact)]

    return retry_overloaded(once, step.effect, cancel) or [], found[0]


def lossless(header: SourceHeader | None) -> SourceHeader | None:
    """The header without what loses pixels (half floats, a lossy or any chosen compression)."""
    if header is None:
        return None
    kept = {k: v for k, v in header.attributes.items() if k not in ("compression", "dwaCompressionLevel")}
    return replace(header, attributes=kept, half=False)


def retry_overloaded(call: Callable[[], T], effect: str, cancel: threading.Event | None) -> T | None:
    """``call()``; when the models are overloaded (interactive calls fill their queues), wait the
    advised delay and try again. None when cancelled while waiting (the caller sees the flag)."""
    for _ in range(OVERLOAD_RETRIES):
        try:
            return call()
        except ResourceExhausted as exc:
            if cancel is not None and cancel.wait(exc.retry_after):
                return None
            if cancel is None:
                time.sleep(exc.retry_after)
    raise ItemError(f"{effect}: the models stayed overloaded through {OVERLOAD_RETRIES} retries")


def _is_16_bit_png(data: bytes) -> bool:
    return len(data) > 24 and data[24] == 16  # IHDR bit depth, right after width and height


def run_frame(
    engine: Engine,
    sandbox: Sandbox,
    steps: Sequence[Step],
    source_name: str,
    target_name: str,
    fmt: str,
    seed: int,
    halt: threading.Event,
    limits: FrameLimits,
) -> tuple[ItemState | None, str]:
    """One item, start to finish: read, run the chain, write atomically, under the frame's time limit.

    Returns DONE, or FAILED with the reason, or None when ``halt`` was set by the caller
    (a cancel or a shutdown): nothing was written and the item stays pending. Every
    executor runs frames through here, so they agree on outcomes byte for byte.
    """

    def work() -> None:
        source = sandbox.input_path(source_name)
        target = sandbox.output_path(target_name)
        if source.is_dir():
            raise ItemError(f"input {source_name} is a directory, not a file")
        if not source.is_file():
            raise ItemError(f"input {source_name} not found")
        if source.stat().st_size > limits.max_input_bytes:
            raise ItemError(f"input {source_name} is larger than {limits.max_input_bytes} bytes")
        data = run_chain(engine, steps, source.read_bytes(), source_name, fmt, seed, halt,
                         extension=target.suffix.lower().lstrip("."))
        if halt.is_set():  # given up meanwhile (a frame left running writes nothing late)
            raise ItemCancelled(source_name)
        write_atomic(target, data)

    return item_outcome(work, source_name, halt, limits.timeout_seconds, "per frame")


class FramesLeftRunning:
    """How many frames given up on are still running in this process (their threads cannot be ended)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def began(self) -> None:
        with self._lock:
            self.count += 1

    def ended(self) -> None:
        with self._lock:
            self.count -= 1


# Past this many, frames are failed at once rather than started: each one left running holds a
# thread, a core's share and its frame's memory, and would pile up over a long sequence.
MAX_LEFT_RUNNING = 8
LEFT_RUNNING = FramesLeftRunning()


def item_outcome(
    work: Callable[[], None], name: str, halt: threading.Event, seconds: float, limit: str
) -> tuple[ItemState | None, str]:
    """Run an item's ``work`` under a time limit of ``seconds`` (which sets ``halt``): DONE, FAILED
    with the reason, or None when the caller set ``halt`` (nothing written, still pending).

    The work runs in a thread of its own: an effect that never looks at its cancel flag cannot be
    stopped, so past ``halt`` and ABANDON_SECONDS more it is left running (its late result is
    never written: the chain checks ``halt`` before writing), and the job and the server go on.
    """
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        halt.set()

    if LEFT_RUNNING.count >= MAX_LEFT_RUNNING:
        return ItemState.FAILED, (f"not started: {LEFT_RUNNING.count} frames whose effects ignored the "
                                  "request to stop are still running on this server")
    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    outcome: list[BaseException | None] = []
    finished = threading.Event()
    given_up = threading.Lock()  # orders "left running" against the work's own end
    left = False

    def run() -> None:
        try:
            work()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
        finally:
            with given_up:
                finished.set()
                if left:
                    LEFT_RUNNING.ended()

    threading.Thread(target=run, name=f"museforge-item-{name}"[:60], daemon=True).start()
    try:
        while not finished.wait(0.25):
            if halt.is_set() and not finished.wait(ABANDON_SECONDS):
                with given_up:
                    if not finished.is_set():
                        left = True
                        LEFT_RUNNING.began()
                if not left:
                    continue  # it ended just now after all
                log.warning("item %s: its effect ignored the request to stop; left running", name)
                if expired.is_set():
                    return ItemState.FAILED, (f"ran past the {seconds:g} s time limit {limit}, and its "
                                              "effect ignored the request to stop")
                return None, ""
        failure = outcome[0] if outcome else None
        if failure is None:
            return ItemState.DONE, ""
        raise failure
    except ItemCancelled:
        if expired.is_set():
            return ItemState.FAILED, f"ran past the {seconds:g} s time limit {limit}"
        return None, ""
    except (ItemError, PathRefused, OSError) as exc:
        return ItemState.FAILED, str(exc)
    except Exception as exc:  # an effect's own bug fails this item alone
        log.exception("item %s failed", name)
        return ItemState.FAILED, f"{type(exc).__name__}: {exc}"
    finally:
        timer.cancel()
