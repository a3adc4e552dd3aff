"""SoundFont rendering in worker processes, beside the composing.

rustysynth holds the interpreter lock while it renders, so a render in a thread stops the
melody and harmony models from composing the next bars, and two renders in two threads take
as long as one after the other. Worker processes do not share the lock: the server composes
bar N+1 while a worker renders the block before it, and with two workers two blocks render
at once. Each worker is a small process (:mod:`render_worker`, stdlib and midirenderer only)
fed over a pipe by a pool thread, which waits on the pipe without the lock. A block's audio
is the same bytes wherever it renders (the same call on the same bank), and the performer
adds blocks in order, so where a block was rendered never changes the output.

The processes start when the pool is made (the first piece), while its first bars are
composed. A process that dies, or answers nothing within ``RENDER_TIMEOUT_SECONDS``, is
killed and replaced, and its block renders again in a fresh process; a block that two
processes die on fails its request with a ValueError naming the bank (rendered in the
server's own thread, a native crash would end the server). If processes cannot start at all
(a sandbox, a missing library), the pool says why once and renders in the server's threads
from then on.

``MUSEFORGE_RENDER_PROCESSES``: the number of worker processes (default: 2, at most the CPU
count); 0 renders every block in the caller's thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from . import render_worker
from .midi_file import presets_played
from .soundfont import SoundFont, render_wav

ENV = "MUSEFORGE_RENDER_PROCESSES"
DEFAULT_PROCESSES = 2
RENDER_TIMEOUT_SECONDS = 120.0  # a 4 s block takes well under a second; a 470 MB bank's parse, ~1 s
START_FAILURES = 3  # processes in a row that die before answering: stop trying, render in-thread
WORKER = Path(render_worker.__file__)
log = logging.getLogger(__name__)


class WorkerLost(RuntimeError):
    """The render process exited, could not start, or stopped answering mid-block."""


def processes() -> int:
    """Worker processes to render in, from ``MUSEFORGE_RENDER_PROCESSES`` (a bad value: the default)."""
    cores = os.cpu_count() or 1
    default = min(DEFAULT_PROCESSES, cores)
    value = os.environ.get(ENV, "").strip()
    if not value:
        return default
    try:
        wanted = int(value)
    except ValueError:
        wanted = -1
    if wanted < 0:
        log.warning("%s=%r is not a number of processes (0 or more); using %d", ENV, value, default)
        return default
    if wanted > cores:  # each is a process of its own, started with the first piece
        log.warning("%s=%d is more than this machine's %d cores; using %d", ENV, wanted, cores, cores)
        return cores
    return wanted


class _Worker:
    """One render process, used by one pool thread at a time."""

    def __init__(self) -> None:
        # the worker's stderr, read back if it fails to start; closed in close()
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115
        self.answered = False  # it has said it is ready (midirenderer imported)
        # -P: the worker's folder (this package's) is not put on sys.path; PYTHONPATH is kept, so
        # the worker finds midirenderer wherever this process did.
        flags = ["-P"] if sys.version_info >= (3, 11) else []
        try:
            self.process = subprocess.Popen([sys.executable, *flags, str(WORKER)], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=self.errors)
        except OSError as error:
            self.errors.close()
            raise WorkerLost(f"could not start: {error}") from error

    def render(self, path: str, mtime_ns: int, midi: bytes, whole: bool = False) -> bytes:
        assert self.process.stdin is not None
        try:
            if not self.answered:
                self._receive(1)  # the ready byte
                self.answered = True
            presets = None if whole else presets_played(midi)  # read here: the worker is stdlib only
            header = json.dumps({"path": path, "mtime_ns": mtime_ns,
                                 "presets": None if presets is None else sorted(presets)}).encode()
            render_worker.write_frame(self.process.stdin, header)
            render_worker.write_frame(self.process.stdin, midi)
            self.process.stdin.flush()
            status = self._receive(1)[0]
            size = int.from_bytes(self._receive(4), "big")
            payload = self._receive(size)
        except (BrokenPipeError, OSError) as error:
            raise WorkerLost(str(error)) from error
        if status != 0:
            message = payload.decode(errors="replace")
            raise ValueError(f"SoundFont {Path(path).stem} could not be played: {message}")
        return payload

    def _receive(self, size: int) -> bytes:
        """Exactly ``size`` bytes from the worker, within the render timeout."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        parts, wanted = [], size
        deadline = time.monotonic() + RENDER_TIMEOUT_SECONDS
        while wanted:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise WorkerLost(f"no answer within {RENDER_TIMEOUT_SECONDS:.0f} s")
            part = os.read(fd, min(wanted, 1 << 20))
            if not part:
                raise WorkerLost(f"exited with code {self.process.poll()}{self.stderr_tail()}")
            parts.append(part)
            wanted -= len(part)
        return b"".join(parts)

    def stderr_tail(self) -> str:
        try:
            self.errors.seek(0)
            text = self.errors.read()[-400:].decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return f": {text}" if text else ""

    def close(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):  # end of input: the worker returns
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.errors.close()


class Rendering:
    """One block's render: in a worker (``future``) or, when asked for, in the asking thread."""

    def __init__(self, future: Future[bytes] | None, args: tuple[str, int, bytes, bool]) -> None:
        self._future, self._args = future, args

    def done(self) -> bool:
        return self._future is None or self._future.done()

    def cancel(self) -> None:
        """Drop the render if no worker has started it (a cancelled request)."""
        if self._future is not None:
            self._future.cancel()

    def result(self) -> bytes:
        """The WAV bytes; a block a lost worker dropped is rendered again here (the same bytes)."""
        if self._future is not None:
            try:
                return self._future.result()
            except WorkerLost as error:
                log.warning("a SoundFont render process was lost (%s); rendering its block in-thread", error)
        return render_wav(*self._args)


class RenderPool:
    """Renders MIDI blocks in ``workers`` processes (0: in the thread that asks for the audio)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._lock = threading.Lock()
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._live: list[_Worker] = []
        self._failures = 0
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="soundfont-render") if workers \
            else None
        for _ in range(workers):  # started now: they import while the first bars are composed
            try:
                self._idle.put(self._start())
            except WorkerLost as error:
                self._give_up(error)
                break

    def submit(self, font: SoundFont, midi: bytes, whole: bool = False) -> Rendering:
        """``midi`` played through ``font`` (``whole``: every preset parsed, not a subset): WAV bytes
        to come."""
        args = (str(font.path), font.path.stat().st_mtime_ns, midi, whole)
        if self._threads is None or self.workers == 0:
            return Rendering(None, args)
        return Rendering(self._threads.submit(self._render, *args), args)

    def _start(self) -> _Worker:
        worker = _Worker()
        with self._lock:
            self._live.append(worker)
        return worker

    def _render(self, path: str, mtime_ns: int, midi: bytes, whole: bool = False) -> bytes:
        for attempt in range(2):
            worker = self._start() if attempt else self._idle_worker()  # a retry: a new process
            try:
                data = worker.render(path, mtime_ns, midi, whole)
            except WorkerLost as error:
                self._retire(worker, error)
                if not worker.answered:
                    raise  # processes do not start here: the block renders in the asking thread
                if attempt:
                    # Lost twice on this block: the renderer crashes on it. Rendering it in the server's
                    # own thread would take the server down with it.
                    raise ValueError(f"SoundFont {Path(path).stem} could not be played: the renderer "
                                     f"stopped on this block in two processes ({error})") from error
                continue  # once more in a fresh process: this one may have been killed, not crashed
            except ValueError:
                self._idle.put(worker)  # the bank, not the worker: it stays
                raise
            self._failures = 0
            self._idle.put(worker)
            return data
        raise AssertionError("unreachable")

    def _idle_worker(self) -> _Worker:
        """A waiting process that is still alive (one killed while idle is retired), else a new one."""
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return self._start()
            if worker.process.poll() is None:
                return worker
            self._retire(worker, WorkerLost(f"exited while idle, with code {worker.process.poll()}"))

    def _retire(self, worker: _Worker, error: WorkerLost) -> None:
        with self._lock:
            if worker in self._live:
                self._live.remove(worker)
        if worker.process.poll() is None:
            worker.process.kill()
        worker.close()
        if not worker.answered:
            self._failures += 1
            if self._failures >= START_FAILURES:
                self._give_up(error)

    def _give_up(self, error: Exception) -> None:
        if self.workers:
            log.error("SoundFont render processes do not start (%s); rendering in the server's threads",
                      error)
        self.workers = 0

    def pids(self) -> list[int]:
        """Process ids of the live render processes."""
        with self._lock:
            return [w.process.pid for w in self._live if w.process.poll() is None]

    def shutdown(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            live, self._live = self._live, []
        for worker in live:
            worker.close()


_shared: RenderPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> RenderPool:
    """The process's render pool, sized by ``MUSEFORGE_RENDER_PROCESSES`` when first asked for."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RenderPool(processes())
        return _shared
