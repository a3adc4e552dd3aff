"""SoundFont rendering in worker processes, beside the composing (numpy-free apart from the caller).

rustysynth holds the interpreter lock while it renders, so a render in a thread stops the
melody and harmony models from composing the next bars, and two renders in two threads take
as long as one after the other. Worker processes do not share the lock: the server composes
bar N+1 while a worker renders the block before it, and with two workers two blocks render
at once. Workers are started on first use in the background; until they are ready a block
renders in the caller's thread, so no request waits for a process to start. A block's audio
is the same bytes either way (the same call on the same bank), and the performer adds the
blocks in order, so where a block was rendered never changes the output.

``MUSEFORGE_RENDER_PROCESSES``: the number of worker processes (default: 2, at most the CPU
count); 0 renders every block in the caller's thread.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

from .soundfont import SoundFont, render_wav

ENV = "MUSEFORGE_RENDER_PROCESSES"
DEFAULT_PROCESSES = 2
log = logging.getLogger(__name__)


def processes() -> int:
    """Worker processes to render in, from ``MUSEFORGE_RENDER_PROCESSES`` (a bad value: the default)."""
    value = os.environ.get(ENV, "").strip()
    if value:
        try:
            return max(0, int(value))
        except ValueError:
            log.warning("%s=%r is not a number of processes; using %d", ENV, value, DEFAULT_PROCESSES)
    return min(DEFAULT_PROCESSES, os.cpu_count() or 1)


def _ready() -> int:
    return os.getpid()


class Rendering:
    """One block's render: in a worker (``future``) or, lazily, in the thread that asks for it."""

    def __init__(self, owner: RenderPool, pool: ProcessPoolExecutor | None, future: Future[bytes] | None,
                 args: tuple[str, int, bytes]) -> None:
        self._owner, self._pool, self._future, self._args = owner, pool, future, args

    def done(self) -> bool:
        return self._future is None or self._future.done()

    def result(self) -> bytes:
        """The WAV bytes; a render a dead worker lost is done again here (the same bytes)."""
        if self._future is not None:
            try:
                return self._future.result()
            except BrokenProcessPool:
                log.warning("a SoundFont render process died; rendering its block in-thread")
                if self._pool is not None:
                    self._owner._discard(self._pool)
        return render_wav(*self._args)


class RenderPool:
    """Renders MIDI blocks in worker processes once they have started, in the caller's thread before."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._ready = threading.Event()

    def submit(self, font: SoundFont, midi: bytes) -> Rendering:
        """``midi`` played through ``font``: WAV bytes to come (already there when rendered here)."""
        args = (str(font.path), font.path.stat().st_mtime_ns, midi)
        pool = self._started()
        if pool is not None:
            try:
                return Rendering(self, pool, pool.submit(render_wav, *args), args)
            except (BrokenProcessPool, RuntimeError):  # a worker died or the pool was shut down
                self._discard(pool)
        return Rendering(self, None, None, args)

    def _started(self) -> ProcessPoolExecutor | None:
        """The pool once its workers answer; starts them (in the background) on the first call."""
        if self.workers == 0:
            return None
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"))
                self._ready.clear()
                threading.Thread(target=self._warm, args=(self._pool,), name="render-pool-start",
                                 daemon=True).start()
            return self._pool if self._ready.is_set() else None

    def _warm(self, pool: ProcessPoolExecutor) -> None:
        try:
            for future in [pool.submit(_ready) for _ in range(self.workers)]:
                future.result(timeout=120)
        except Exception as error:  # no processes here (a sandbox, a limit): keep rendering in-thread
            log.warning("SoundFont render processes did not start (%s); rendering in the server's threads",
                        error)
            self.workers = 0
            return
        self._ready.set()

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


_shared: RenderPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> RenderPool:
    """The process's render pool, sized by ``MUSEFORGE_RENDER_PROCESSES`` when first asked for."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = RenderPool(processes())
        return _shared
