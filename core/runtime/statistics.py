"""Per-model statistics kept the way Triton keeps them (counts and cumulative nanoseconds)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += ns


@dataclass
class BatchFigures:
    """Executions of one batch size, with their time per stage."""

    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)


@dataclass
class ModelStatistics:
    """Triton's figures: a *request* is one caller's call, an *execution* one session run,
    and the *inference count* the number of batch items executed."""

    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    queue: Duration = field(default_factory=Duration)
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)
    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0
    batches: dict[int, BatchFigures] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record_execution(
        self, *, batch_size: int, requests: int, input_ns: int, infer_ns: int, output_ns: int
    ) -> None:
        with self.lock:
            self.execution_count += 1
            self.inference_count += batch_size
            self.last_inference_ms = int(time.time() * 1000)
            # Triton charges each request the full time of the execution it was part of.
            self.compute_input.add(input_ns * requests, requests)
            self.compute_infer.add(infer_ns * requests, requests)
            self.compute_output.add(output_ns * requests, requests)
            figures = self.batches.setdefault(batch_size, BatchFigures())
            figures.compute_input.add(input_ns)
            figures.compute_infer.add(infer_ns)
            figures.compute_output.add(output_ns)

    def record_request(self, *, ok: bool, total_ns: int, queue_ns: int) -> None:
        with self.lock:
            (self.success if ok else self.fail).add(total_ns)
            if ok:
                self.queue.add(queue_ns)

    def snapshot(self) -> ModelStatistics:
        with self.lock:
            copy = ModelStatistics(
                success=Duration(self.success.count, self.success.ns),
                fail=Duration(self.fail.count, self.fail.ns),
                queue=Duration(self.queue.count, self.queue.ns),
                compute_input=Duration(self.compute_input.count, self.compute_input.ns),
                compute_infer=Duration(self.compute_infer.count, self.compute_infer.ns),
                compute_output=Duration(self.compute_output.count, self.compute_output.ns),
                inference_count=self.inference_count,
                execution_count=self.execution_count,
                last_inference_ms=self.last_inference_ms,
            )
            copy.batches = {
                size: BatchFigures(
                    Duration(f.compute_input.count, f.compute_input.ns),
                    Duration(f.compute_infer.count, f.compute_infer.ns),
                    Duration(f.compute_output.count, f.compute_output.ns),
                )
                for size, f in self.batches.items()
            }
            return copy
