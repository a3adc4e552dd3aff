"""What the runtime is configured with: server-wide options and per-model overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .versions import VersionPolicy


@dataclass(frozen=True)
class ModelOverrides:
    """Per-model settings that win over the server-wide ones."""

    batching: bool | None = None
    max_batch_size: int | None = None
    max_queue_delay_us: int | None = None
    instances: int | None = None
    intra_op_threads: int | None = None
    version_policy: VersionPolicy | None = None  # None: latest (or the version a generator pins)


@dataclass(frozen=True)
class RuntimeOptions:
    providers: tuple[str, ...] = ("CUDAExecutionProvider", "CPUExecutionProvider")
    intra_op_threads: int = 0  # 0: ONNX Runtime's default (one per physical core)
    inter_op_threads: int = 0
    graph_optimization: str = "all"
    spinning: bool = False  # ORT worker threads busy-wait between runs (burns a core idle)
    batching: bool = True
    max_queue_delay_us: int = 0  # Triton's default: batch what is queued, never wait
    default_max_batch_size: int = 64  # for models whose manifest gives none
    instances: int = 1
    max_queue_size: int = 0  # per model, requests waiting or running; 0: no bound
    overrides: Mapping[str, ModelOverrides] = field(default_factory=dict)
    # Models without a plugin (``museforge models add``): <name>/<version>/model.onnx; None: none.
    model_repository: Path | None = None
