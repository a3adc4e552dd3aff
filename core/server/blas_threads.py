"""numpy's BLAS held to a few threads in a serving process.

OpenBLAS's worker threads keep spinning for a while after each call in case more work comes.
In a server that is CPU taken from ONNX Runtime and from the other requests: four concurrent
callers got 43-52 mesh.props meshes a second with numpy's default of two BLAS threads and
67-71 with one (CPU per mesh 36-45 ms against 24), and one matrix-vector product per block in
the music loudness meter once left a worker spinning through 170 ms of CPU per 30 s piece.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("museforge.server")

# Read by BLAS libraries when they load: scipy's own OpenBLAS loads after start-up (on first use).
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads(threads: int) -> None:
    """Hold the BLAS libraries loaded now, and those loaded later, to ``threads`` (0: leave them)."""
    if threads <= 0:
        return
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads, user_api="blas")  # kept for the process's life: no restore
    except Exception as error:  # a library threadpoolctl cannot drive costs CPU, never the server
        log.warning("could not limit BLAS threads to %d: %s", threads, error)
