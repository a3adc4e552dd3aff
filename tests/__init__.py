"""The test suite. Imported before any test module, so the threads set here hold in every library.

The suite runs in two processes (``-n 2``) that share the machine's cores. An OpenMP pool sized
to every core (torch's intra-op threads, the BLAS under numpy) spins while it waits, against the
other process: with one thread each (unless the caller set OMP_NUM_THREADS) the training tests,
quick exports included, took 104 s instead of 185 s on 2 cores. The subprocesses the tests start
inherit it. The shipped models' figures come from ONNX Runtime, whose threads are its own.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
