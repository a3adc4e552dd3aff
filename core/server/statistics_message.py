"""A model's serving statistics as museforge.v1's ModelStatistics message."""

from __future__ import annotations

from ..runtime.sessions import LoadedModel
from ..runtime.statistics import Duration
from ..v1 import museforge_pb2 as pb


def model_statistics(model: LoadedModel) -> pb.ModelStatistics:
    s = model.stats.snapshot()

    def stage(d: Duration) -> pb.StageDuration:
        return pb.StageDuration(count=d.count, ns=d.ns)

    return pb.ModelStatistics(
        model=model.name,
        version=str(model.version),
        provider=model.provider,
        request_count=s.success.count,
        failure_count=s.fail.count,
        execution_count=s.execution_count,
        inference_count=s.inference_count,
        queue=stage(s.queue),
        compute_input=stage(s.compute_input),
        compute_infer=stage(s.compute_infer),
        compute_output=stage(s.compute_output),
        executions_by_batch_size={size: f.compute_infer.count for size, f in s.batches.items()},
        batching=model.batcher is not None,
        max_batch_size=model.max_batch_size,
        max_queue_delay_us=model.batching.max_queue_delay_us if model.batching else 0,
    )
