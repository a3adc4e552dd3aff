"""``inference.GRPCInferenceService``: every loaded ONNX model as a raw tensor model.

Triton and KServe clients (and their load tools) work against museforge unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import grpc
import numpy as np

from .. import __version__
from ..ascii_numbers import ascii_number
from ..engine.catalogue import Engine
from ..engine.errors import (
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    RequestError,
    ResourceExhausted,
    Unavailable,
)
from ..inference import grpc_service_pb2 as pb
from ..inference import grpc_service_pb2_grpc as pb_grpc
from ..near_names import did_you_mean
from ..runtime.batcher import BatcherClosed, QueueFull
from ..runtime.model_checks import check_range
from ..runtime.sessions import InputError, LoadedModel, ModelRefused
from ..runtime.statistics import Duration
from .museforge_service import abort_with, correlated
from .oip_datatypes import TensorError, TensorSpec, per_item_scalars, spec_from_onnx, triton_data_type
from .oip_decode import decode_admitted, decode_raw
from .oip_encode import encode_outputs
from .oip_limits import check_batch, check_size, header_shapes, wanted_outputs
from .oip_policy import version_policy_message
from .oip_repository import RepositoryMethods

log = logging.getLogger("museforge.oip")

T = TypeVar("T")
M = TypeVar("M", pb.ModelInput, pb.ModelOutput)

PLATFORM = "onnxruntime_onnx"
# Tensors up to this many elements (all inputs, or all outputs, together) are decoded and
# encoded on the event loop: well under a millisecond, less than a thread hand-off.
INLINE_ELEMENTS = 16_384
# binary_tensor_data is the HTTP gateway's (Triton lists its extensions once, for both fronts).
EXTENSIONS = ["binary_tensor_data", "model_configuration", "model_repository", "statistics"]

Context = grpc.aio.ServicerContext[Any, Any]


def tensor_specs(model: LoadedModel, which: str) -> list[TensorSpec]:
    assert model.session is not None
    args = model.session.get_inputs() if which == "inputs" else model.session.get_outputs()
    return [spec_from_onnx(a.name, a.type, a.shape) for a in args]


HeaderKey = tuple[tuple[tuple[str, str, tuple[int, ...]], ...], tuple[str, ...], int]
Shapes = tuple[tuple[int, ...], ...]
MAX_REMEMBERED = 256  # request headers remembered per model (tiny clients send the same few)


def header_key(request: pb.ModelInferRequest) -> HeaderKey:
    """Everything the header checks read: input names, datatypes and shapes, outputs, raw count."""
    return (tuple((t.name, t.datatype, tuple(t.shape)) for t in request.inputs),
            tuple(o.name for o in request.outputs), len(request.raw_input_contents))


class Admission(NamedTuple):
    """What the header checks found, remembered per header: the outputs wanted, whether the
    inputs are big, each input's shape as the model takes it (request order: a reshaped
    input's [B, 1] is [B] here) and the wanted outputs to report as [B, 1] (reshaped ones)."""

    wanted: list[str]
    big: bool
    shapes: Shapes
    expand: tuple[str, ...]


@dataclass(frozen=True)
class ModelPlan:
    """A loaded model's tensors as the protocol names them, read once per session (asking the
    session builds them anew each time, which cost a tiny request more than its decoding).

    Per-item scalars are in Triton's form (``per_item_scalars``). It also remembers request
    headers that passed every check that reads only headers (``admitted``) and, of those, the
    raw-form ones whose decoding passed the shape and dtype checks too (``decodable``): a
    client sending the same shapes again is checked only for what its data may break
    (buffer sizes, declared value ranges).
    """

    session: object
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    output_names: tuple[str, ...]
    admitted: dict[HeaderKey, Admission] = field(default_factory=dict, compare=False)
    decodable: set[HeaderKey] = field(default_factory=set, compare=False)

    @classmethod
    def of(cls, model: LoadedModel) -> ModelPlan:
        batched = model.max_batch_size > 0
        inputs = per_item_scalars(tensor_specs(model, "inputs"), batched)
        outputs = per_item_scalars(tensor_specs(model, "outputs"), batched)
        return cls(model.session, inputs, outputs, tuple(o.name for o in outputs))


def decode_known(request: pb.ModelInferRequest, model: LoadedModel, shapes: Shapes) -> dict[str, np.ndarray]:
    """Decode raw inputs whose headers already decoded and checked once (see ModelPlan): what
    ``decode_admitted`` and ``check_inputs`` would say about their data, in the same order."""
    arrays: dict[str, np.ndarray] = {}
    raw = request.raw_input_contents
    for i, (tensor, shape) in enumerate(zip(request.inputs, shapes, strict=True)):
        if tensor.contents.ListFields():
            raise TensorError(f"inputs[{i}].contents", "must not be set when raw_input_contents is used")
        arrays[tensor.name] = decode_raw(raw[i], tensor.datatype, shape, f"raw_input_contents[{i}]")
    for spec in model.inputs:
        if spec.range is not None:
            check_range(spec.name, arrays[spec.name], spec.range)
    return arrays


def with_reshape(message: M, spec: TensorSpec, skip: int) -> M:
    """A ModelConfig input or output, with Triton's reshape when its spec has one (like
    ``dims``, without the batch axis when the model batches: a per-item scalar's is [])."""
    if spec.reshape is not None:
        message.reshape.SetInParent()  # present even when the shape is []
        message.reshape.shape.extend(spec.reshape[skip:])
    return message


def tensor_error(exc: TensorError) -> InvalidArgument:
    return InvalidArgument(str(exc), [FieldViolation(exc.field, exc.message)])


def input_error(exc: InputError, order: list[str]) -> InvalidArgument:
    """The runtime's refusal of named inputs, as violations of the request's ``inputs[i]``."""
    names = exc.fields if isinstance(exc, ModelRefused) else (exc.field,)
    fields = [f"inputs[{order.index(n)}]" if n in order else "inputs" for n in names]
    return InvalidArgument(f"{', '.join(repr(n) for n in names)}: {exc.message}",
                           [FieldViolation(f, f"input {n!r}: {exc.message}")
                            for f, n in zip(fields, names, strict=True)])


def reply_message(model: LoadedModel, request: pb.ModelInferRequest,
                  outputs: dict[str, np.ndarray]) -> pb.ModelInferResponse:
    """The response, built off the event loop (encoding copies every output once)."""
    tensors, raw = encode_outputs(outputs, raw=bool(request.raw_input_contents))
    return pb.ModelInferResponse(model_name=model.name, model_version=str(model.version), id=request.id,
                                 outputs=tensors, raw_output_contents=raw)


class InferenceService(RepositoryMethods, pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, engine: Engine, executor: Executor) -> None:
        self.engine = engine
        self.executor = executor
        self._plans: dict[tuple[str, int], ModelPlan] = {}

    def _plan(self, model: LoadedModel) -> ModelPlan:
        key = (model.name, model.version)
        plan = self._plans.get(key)
        if plan is None or plan.session is not model.session:  # first call, or the model was reloaded
            plan = self._plans[key] = ModelPlan.of(model)
        return plan

    def _model(self, name: str, version: str) -> LoadedModel:
        model = self.engine.runtime.models.get(name)
        if model is None:
            known = ", ".join(sorted(self.engine.runtime.models)) or "none"
            raise NotFound(f"unknown model {name!r}{did_you_mean(name, self.engine.runtime.models)}; "
                           f"models: {known}")
        if not model.ready:
            raise Unavailable(f"model {name!r} is not ready: {model.error}")
        if version and version != str(model.version):
            serving = self.engine.runtime.serving(name)
            number = ascii_number(version, 19)
            chosen = serving.get(number) if number is not None else None
            if chosen is None:
                policy = self.engine.runtime.policy(name, model.pinned)
                raise NotFound(f"model {name!r} is not serving version {version!r}; it serves "
                               f"{', '.join(map(str, sorted(serving)))} (version policy {policy})")
            return chosen
        return model

    async def ServerLive(self, request: pb.ServerLiveRequest, context: Context) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: Context
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.engine.started)

    async def ModelReady(self, request: pb.ModelReadyRequest, context: Context) -> pb.ModelReadyResponse:
        try:
            ready = self._model(request.name, request.version).ready
        except RequestError:
            ready = False
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
            versions=[str(v) for v in sorted(self.engine.runtime.serving(model.name))],
            platform=PLATFORM,
            inputs=[meta(s) for s in self._plan(model).inputs],
            outputs=[meta(s) for s in self._plan(model).outputs],
        )

    async def ModelConfig(self, request: pb.ModelConfigRequest, context: Context) -> pb.ModelConfigResponse:
        try:
            model = self._model(request.name, request.version)
        except RequestError as exc:
            await abort_with(context, exc)
            raise
        batch = model.max_batch_size  # Triton's convention: 0 when there is no batch axis
        skip = 1 if batch > 0 else 0  # with batching, Triton's dims leave out the batch axis
        plan = self._plan(model)  # per-item scalars: dims [1], reshape [] (never empty dims)
        config = pb.ModelConfig(
            name=model.name,
            platform=PLATFORM,
            backend="onnxruntime",
            version_policy=version_policy_message(self.engine.runtime.policy(model.name, model.pinned)),
            max_batch_size=batch,
            input=[with_reshape(pb.ModelInput(
                name=s.name, data_type=triton_data_type(s.datatype),  # type: ignore[arg-type]
                dims=list(s.shape[skip:])), s, skip) for s in plan.inputs],
            output=[with_reshape(pb.ModelOutput(
                name=s.name, data_type=triton_data_type(s.datatype),  # type: ignore[arg-type]
                dims=list(s.shape[skip:])), s, skip) for s in plan.outputs],
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
        what = f"ModelInfer {request.model_name}"
        try:
            model = self._model(request.model_name, request.model_version)
            (wanted, big, shapes, expand), key = self._admitted(model, request)
            inputs = await self._run(big, self._decoded, model, request, key, shapes)
            with self.engine.work.held():  # background renders of looks wait for it too
                outputs = await self.engine.runtime.infer_async(model.name, inputs, self.executor,
                                                                checked=True, model=model)
            selected = {name: outputs[name] for name in wanted}
            for name in expand:  # a per-item scalar output: [B] from the model, [B, 1] as Triton says
                selected[name] = selected[name][:, np.newaxis]
            big = sum(a.size for a in selected.values()) > INLINE_ELEMENTS or \
                any(a.dtype.kind == "O" for a in selected.values())
            return await self._run(big, reply_message, model, request, selected)
        except InputError as exc:
            error: RequestError = input_error(exc, [t.name for t in request.inputs])
        except QueueFull as exc:
            error = ResourceExhausted(str(exc), retry_after=0.1)
        except BatcherClosed:  # a reload or unload retired the model it took: ask the current one
            return await self.ModelInfer(request, context)
        except RequestError as exc:
            error = exc
        except Exception as exc:  # a fault of ours, not the caller's: logged under an id
            log.error("%s failed", what, exc_info=exc)
            error = Internal(f"model {request.model_name!r} failed: {type(exc).__name__}")
        await abort_with(context, correlated(error, what))
        raise AssertionError("unreachable: abort raises")

    async def _run(self, big: bool, work: Callable[..., T], *args: Any) -> T:
        """The loop only moves bytes: decoding and encoding a big tensor run in the worker
        executor, so health and every other call stay answered meanwhile. A small one costs
        less than the hand-off, and never waits behind long generator calls for a thread."""
        if not big:
            return work(*args)
        return await asyncio.get_running_loop().run_in_executor(self.executor, work, *args)

    def _admitted(self, model: LoadedModel, request: pb.ModelInferRequest
                  ) -> tuple[Admission, HeaderKey]:
        """What the tensor headers alone tell (see Admission): a request refused here costs
        no decoding, however big its tensors claim to be."""
        plan, key = self._plan(model), header_key(request)
        known = plan.admitted.get(key)
        if known is not None:
            return known, key
        try:
            shapes = header_shapes(request, plan.inputs)
            check_batch(model, shapes)
            wanted = wanted_outputs(request, plan.output_names)
            datatypes = {t.name: t.datatype for t in request.inputs}
            check_size(model, shapes, datatypes, self.engine.settings.max_message_bytes)
        except TensorError as exc:
            raise tensor_error(exc) from None
        big = sum(math.prod(s) for s in shapes.values()) > INLINE_ELEMENTS or "BYTES" in datatypes.values()
        reshaped = {s.name for s in plan.outputs if s.reshape is not None}
        admission = Admission(wanted, big, tuple(shapes.values()),
                              tuple(n for n in wanted if n in reshaped))
        if len(plan.admitted) < MAX_REMEMBERED:
            plan.admitted[key] = admission
        return admission, key

    def _decoded(self, model: LoadedModel, request: pb.ModelInferRequest, key: HeaderKey,
                 shapes: Shapes) -> dict[str, np.ndarray]:
        """Decode (to the shapes the model takes), then check the values (declared ranges):
        bad input never reaches the model."""
        plan = self._plan(model)
        try:
            if key in plan.decodable:
                return decode_known(request, model, shapes)
            inputs = decode_admitted(request, shapes)  # names and raw count: checked by header_shapes
        except TensorError as exc:
            raise tensor_error(exc) from None
        except InputError as exc:
            raise input_error(exc, [t.name for t in request.inputs]) from None
        try:
            self.engine.runtime.check_inputs(model, inputs)
        except InputError as exc:
            raise input_error(exc, [t.name for t in request.inputs]) from None
        if key[2] and len(plan.decodable) < MAX_REMEMBERED:  # raw form: decode_known can take it
            plan.decodable.add(key)
        return inputs

    async def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, context: Context
    ) -> pb.ModelStatisticsResponse:
        try:
            if request.name:
                self._model(request.name, request.version)  # unknown or not ready: said so
        except RequestError as exc:
            await abort_with(context, exc)
            raise
        # A model named without a version: each version it serves, as Triton answers.
        # "02" is version 2 here as in every other call.
        number = ascii_number(request.version, 19)
        version = request.version if number is None else str(number)
        chosen = [m for m in self.engine.runtime.every_version() if m.ready
                  and (not request.name or m.name == request.name)
                  and (not version or str(m.version) == version)]
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
