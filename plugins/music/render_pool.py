"""SoundFont rendering in worker processes, beside the composing.

rustysynth holds the interpreter lock while it renders, so a render in a thread stops the
melody and harmony models from composing the next bars, and two renders in two threads take
as long as one after the other. Worker processes do not share the lock: the server composes
bar N+1 while a worker renders the block before it, and with two workers two blocks render
at once. Each worker is a small process (:mod:`render_worker`, stdlib and midirenderer only)
fed over a pipe by a thread of its own, which waits on the pipe without the lock. A block's
audio is the same bytes wherever it renders (the same call on the same bank), and the
performer adds blocks in order, so where a block was rendered never changes the output.

``MUSEFORGE_RENDER_PROCESSES``: the number of worker processes (default: 2, at most the CPU
count); 0 renders every block in the caller's thread.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from . import render_worker
from .soundfont import SoundFont, render_wav

ENV = "MUSEFORGE_RENDER_PROCESSES"
DEFAULT_PROCESSES = 2
WORKER = Path(render_worker.__file__)
log = logging.getLogger(__name__)


class WorkerLost(RuntimeError):
    """The render process exited or stopped answering mid-block."""


def processes() -> int:
    """Worker processes to render in, from ``MUSEFORGE_RENDER_PROCESSES`` (a bad value: the default)."""
    value = os.environ.get(ENV, "").strip()
    if value:
        try:
            return max(0, int(value))
        except ValueError:
            log.warning("%s=%r is not a number of processes; using %d", ENV, value, DEFAULT_PROCESSES)
    return min(DEFAULT_PROCESSES, os.cpu_count() or 1)


class _Worker:
    """One render process, used by one pool thread at a time."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-I", str(WORKER)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def render(self, path: str, mtime_ns: int, midi: bytes) -> bytes:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            header = json.dumps({"path": path, "mtime_ns": mtime_ns}).encode()
            render_worker.write_frame(self.process.stdin, header)
            render_worker.write_frame(self.process.stdin, midi)
            self.process.stdin.flush()
            status = self.process.stdout.read(1)
            payload = render_worker.read_frame(self.process.stdout)
        except (BrokenPipeError, OSError) as error:
            raise WorkerLost(str(error)) from error
        if not status or payload is None:
            raise WorkerLost(f"exit code {self.process.poll()}")
        if status[0] != 0:
            message = payload.decode(errors="replace")
            raise ValueError(f"SoundFont {Path(path).stem} could not be played: {message}")
        return payload

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # end of input: the worker returns
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Rendering:
    """One block's render: in a worker (``future``) or, when asked for, in the asking thread."""

    def __init__(self, future: Future[bytes] | None, args: tuple[str, int, bytes]) -> None:
        self._future, self._args = future, args

    def done(self) -> bool:
        return self._future is None or self._future.done()

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
        self._local = threading.local()
        self._lock = threading.Lock()
        self._started: list[_Worker] = []
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="soundfont-render") if workers \
            else None

    def submit(self, font: SoundFont, midi: bytes) -> Rendering:
        """``midi`` played through ``font``: WAV bytes to come."""
        args = (str(font.path), font.path.stat().st_mtime_ns, midi)
        if self._threads is None:
            return Rendering(None, args)
        return Rendering(self._threads.submit(self._render, *args), args)

    def _render(self, path: str, mtime_ns: int, midi: bytes) -> bytes:
        worker: _Worker | None = getattr(self._local, "worker", None)
        if worker is None or worker.process.poll() is not None:
            worker = self._local.worker = _Worker()
            with self._lock:
                self._started.append(worker)
        try:
            return worker.render(path, mtime_ns, midi)
        except WorkerLost:
            self._local.worker = None
            worker.close()
            raise

    def pids(self) -> list[int]:
        """Process ids of the live render processes."""
        with self._lock:
            return [w.process.pid for w in self._started if w.process.poll() is None]

    def shutdown(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            started, self._started = self._started, []
        for worker in started:
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
