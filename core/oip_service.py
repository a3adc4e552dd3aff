"""``inference.GRPCInferenceService``: every loaded ONNX model as a raw tensor model.

Triton and KServe clients (and their load tools) work against museforge unchanged.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import grpc

from . import __version__
from .batcher import QueueFull
from .engine import Engine
from .errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    RequestError,
    ResourceExhausted,
    Unavailable,
)
from .inference import grpc_service_pb2 as pb
from .inference import grpc_service_pb2_grpc as pb_grpc
from .oip_tensors import (
    TensorError,
    TensorSpec,
    check_against_metadata,
    decode_inputs,
    encode_outputs,
    spec_from_onnx,
    triton_data_type,
)
from .runtime import InputError, LoadedModel
from .service import abort_with
from .statistics import Duration

PLATFORM = "onnxruntime_onnx"
EXTENSIONS = ["model_configuration", "statistics"]

Context = grpc.aio.ServicerContext[Any, Any]


def tensor_specs(model: LoadedModel, which: str) -> list[TensorSpec]:
    assert model.session is not None
    args = model.session.get_inputs() if which == "inputs" else model.session.get_outputs()
    return [spec_from_onnx(a.name, a.type, a.shape) for a in args]


def tensor_error(exc: TensorError) -> InvalidArgument:
    return InvalidArgument(str(exc), [FieldViolation(exc.field, exc.message)])


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, engine: Engine, executor: Executor) -> None:
        self.engine = engine
        self.executor = executor

    def _model(self, name: str, version: str) -> LoadedModel:
        model = self.engine.runtime.models.get(name)
        if model is None:
            known = ", ".join(sorted(self.engine.runtime.models)) or "none"
            raise NotFound(f"unknown model {name!r}; models: {known}")
        if version and version != str(model.version):
            raise NotFound(f"model {name!r} has no version {version!r}; it has {model.version}")
        if not model.ready:
            raise Unavailable(f"model {name!r} is not ready: {model.error}")
        return model

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: Context
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.engine.started)

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Context) -> pb.ModelReadyResponse:
        model = self.engine.runtime.models.get(request.name)
        ready = bool(
            model and model.ready and (not request.version or request.version == str(model.version))
        )
        return pb.ModelReadyResponse(ready=ready)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Context
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name="museforge", version=__version__, extensions=EXTENSIONS)

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Context
    ) -> pb.ModelMetadataResponse:
        try:
            model = self._model(request.name, request.version)
        except RequestError as exc:
            await abort_with(context, exc)
            raise

        def meta(spec: TensorSpec) -> pb.ModelMetadataResponse.TensorMetadata:
            return pb.ModelMetadataResponse.TensorMetadata(
                name=spec.name, datatype=spec.datatype, shape=list(spec.shape)
            )

        return pb.ModelMetadataResponse(
            name=model.name,
            versions=[str(model.version)],
            platform=PLATFORM,
            inputs=[meta(s) for s in tensor_specs(model, "inputs")],
            outputs=[meta(s) for s in tensor_specs(model, "outputs")],
        )

    async def ModelConfig(self, request: pb.ModelConfigRequest, context: Context) -> pb.ModelConfigResponse:
        try:
            model = self._model(request.name, request.version)
        except RequestError as exc:
            await abort_with(context, exc)
            raise
        batch = model.max_batch_size  # Triton's convention: 0 when there is no batch axis
        skip = 1 if batch > 0 else 0  # with batching, Triton's dims leave out the batch axis
        config = pb.ModelConfig(
            name=model.name,
            platform=PLATFORM,
            backend="onnxruntime",
            max_batch_size=batch,
            input=[
                pb.ModelInput(name=s.name, data_type=triton_data_type(s.datatype),  # type: ignore[arg-type]
                              dims=list(s.shape[skip:]))
                for s in tensor_specs(model, "inputs")
            ],
            output=[
                pb.ModelOutput(name=s.name, data_type=triton_data_type(s.datatype),  # type: ignore[arg-type]
                               dims=list(s.shape[skip:]))
                for s in tensor_specs(model, "outputs")
            ],
            default_model_filename="model.onnx",
            dynamic_batching=pb.ModelDynamicBatching(
                max_queue_delay_microseconds=model.batching.max_queue_delay_us
            ) if model.batching else None,
            instance_group=[pb.ModelInstanceGroup(
                count=1,
                kind=pb.ModelInstanceGroup.KIND_GPU if "CUDA" in model.provider
                else pb.ModelInstanceGroup.KIND_CPU,
            )],
        )
        return pb.ModelConfigResponse(config=config)

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Context) -> pb.ModelInferResponse:
        try:
            model = self._model(request.model_name, request.model_version)
            inputs, wanted = self._checked(model, request)
            outputs = await self.engine.runtime.infer_async(model.name, inputs, self.executor)
        except InputError as exc:
            await abort_with(context, InvalidArgument(str(exc), [FieldViolation("inputs", str(exc))]))
            raise
        except QueueFull as exc:
            await abort_with(context, ResourceExhausted(str(exc), retry_after=0.1))
            raise
        except RequestError as exc:
            await abort_with(context, exc)
            raise
        selected = {name: outputs[name] for name in wanted}
        tensors, raw = encode_outputs(selected, raw=bool(request.raw_input_contents))
        return pb.ModelInferResponse(
            model_name=model.name,
            model_version=str(model.version),
            id=request.id,
            outputs=tensors,
            raw_output_contents=raw,
        )

    def _checked(
        self, model: LoadedModel, request: pb.ModelInferRequest
    ) -> tuple[dict[str, Any], list[str]]:
        """Decode and check everything before inference, so bad input never reaches the model."""
        expected = tensor_specs(model, "inputs")
        try:
            inputs = decode_inputs(request)
            check_against_metadata(inputs, expected)
        except TensorError as exc:
            raise tensor_error(exc) from None
        missing = [s.name for s in expected if s.name not in inputs]
        if missing:
            raise InvalidArgument(
                f"missing inputs {missing}", [FieldViolation("inputs", f"missing input {n!r}")
                                              for n in missing]
            )
        batch = model.max_batch_size
        sizes = {a.shape[0] for a in inputs.values() if a.ndim}
        if batch and len(sizes) > 1:
            raise InvalidArgument("inputs disagree on the batch size",
                                  [FieldViolation("inputs", f"batch sizes {sorted(sizes)} differ")])
        if batch and sizes and max(sizes) > batch:
            raise InvalidArgument(
                "batch too large", [FieldViolation("inputs[0].shape",
                                                   f"batch {max(sizes)} exceeds max_batch_size {batch}")]
            )
        names = [o.name for o in tensor_specs(model, "outputs")]
        wanted = [o.name for o in request.outputs] or names
        for i, name in enumerate(wanted):
            if name not in names:
                raise InvalidArgument(
                    f"unknown output {name!r}",
                    [FieldViolation(f"outputs[{i}].name", f"model outputs are {names}")],
                )
        return inputs, wanted

    async def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, context: Context
    ) -> pb.ModelStatisticsResponse:
        models = self.engine.runtime.models
        if request.name:
            try:
                chosen = [self._model(request.name, request.version)]
            except RequestError as exc:
                await abort_with(context, exc)
                raise
        else:
            chosen = [m for m in models.values() if m.ready]
        return pb.ModelStatisticsResponse(model_stats=[statistics_message(m) for m in chosen])


def duration(d: Duration) -> pb.StatisticDuration:
    return pb.StatisticDuration(count=d.count, ns=d.ns)


def statistics_message(model: LoadedModel) -> pb.ModelStatistics:
    s = model.stats.snapshot()
    return pb.ModelStatistics(
        name=model.name,
        version=str(model.version),
        last_inference=s.last_inference_ms,
        inference_count=s.inference_count,
        execution_count=s.execution_count,
        inference_stats=pb.InferStatistics(
            success=duration(s.success), fail=duration(s.fail), queue=duration(s.queue),
            compute_input=duration(s.compute_input), compute_infer=duration(s.compute_infer),
            compute_output=duration(s.compute_output),
        ),
        batch_stats=[
            pb.InferBatchStatistics(
                batch_size=size, compute_input=duration(f.compute_input),
                compute_infer=duration(f.compute_infer), compute_output=duration(f.compute_output),
            )
            for size, f in sorted(s.batches.items())
        ],
    )
