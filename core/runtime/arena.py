"""When to hand a big run's working memory back to the OS.

ONNX Runtime's CPU arena keeps its high-water mark for the life of the session: a single
2048-px texture would pin gigabytes in a server that otherwise serves 256-px ones.
Shrinking after every run is no answer either (the next run page-faults the memory back
in: ~9 ms per small texture here). So a run is shrunk only when its inputs are well
above what this model usually gets; a model whose requests are all alike (an effect's
fixed tiles) keeps its arena warm.
"""

from __future__ import annotations

import threading

import onnxruntime as ort

_SHRINK_KEY = "memory.enable_memory_arena_shrinkage"
OUTLIER_WEIGHT = 0.1  # how much a run far above the average moves it, against a usual run


class ArenaPolicy:
    """Per model: an average of recent input sizes, and run options for outliers."""

    def __init__(self, factor: float = 4.0, floor_bytes: int = 256 * 1024, smoothing: float = 0.1,
                 device: str = "cpu:0") -> None:
        self.factor = factor
        self.floor_bytes = floor_bytes  # below this a run never shrinks: too small to matter
        self.smoothing = smoothing
        self.typical = 0.0  # moving average of input bytes per run
        self._lock = threading.Lock()
        self.shrink_entries = {_SHRINK_KEY: device}  # the run options that ask for the shrink
        self._shrink = ort.RunOptions()
        self._shrink.log_severity_level = 4  # as every run: its failure is reported by the caller
        self._shrink.add_run_config_entry(_SHRINK_KEY, device)

    def run_options(self, nbytes: int) -> ort.RunOptions | None:
        """Options for a run with ``nbytes`` of inputs (None: keep the arena as it is)."""
        return self._shrink if self.outlier(nbytes) else None

    def outlier(self, nbytes: int) -> bool:
        """Whether a run with ``nbytes`` of inputs should shrink the arena after it (and count it)."""
        with self._lock:
            big = nbytes >= self.floor_bytes and nbytes > self.factor * self.typical
            # An outlier moves the average a tenth as fast: at full weight, the four runs of one
            # count-4 request of 2048-px textures made the fourth "usual" and left 2.4 GB held.
            # A stream of big requests still becomes usual, after a few dozen.
            self.typical += self.smoothing * (OUTLIER_WEIGHT if big else 1.0) * (nbytes - self.typical)
        return big
