"""The ``museforge.v1.Museforge`` gRPC service."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from typing import Any, TypeVar

import grpc

from .bridge import iterate_in_thread
from .effect import Effect
from .engine import Artifact, EffectInput, Engine, PreparedEffect, PreparedRequest
from .errors import DeadlineExceeded, Internal, NotFound, RequestError
from .generator import Chunk, Generator, Progress
from .runtime import LoadedModel
from .statistics import Duration
from .structs import struct_to_dict
from .v1 import museforge_pb2 as pb
from .v1 import museforge_pb2_grpc as pb_grpc

log = logging.getLogger("museforge.service")
T = TypeVar("T")


def artifact_message(artifact: Artifact) -> pb.Artifact:
    return pb.Artifact(
        data=artifact.data,
        media_type=artifact.media_type,
        format=artifact.format,
        index=artifact.index,
        filename=artifact.filename,
        metadata=dict(artifact.metadata),
    )


def progress_message(progress: Progress) -> pb.Progress:
    return pb.Progress(
        completed=progress.completed,
        total=progress.total,
        stage=progress.stage,
        message=progress.message,
    )


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: RequestError) -> None:
    status = error.to_status()
    await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)


def correlated(error: RequestError, what: str) -> RequestError:
    """A server-side failure gets an id that is in its message and in the server log."""
    if not isinstance(error, (Internal, DeadlineExceeded)):
        return error  # the caller's own mistake (or overload): nothing to look up in the log
    correlation = uuid.uuid4().hex[:12]
    log.error("correlation id %s: %s: %s", correlation, what, error.message)
    error.message = f"{error.message} (correlation id {correlation})"
    return error


async def within(events: AsyncIterator[T], seconds: float, what: str) -> AsyncIterator[T]:
    """The events, or DeadlineExceeded once ``seconds`` have passed (the work is then cancelled)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    iterator = events.__aiter__()
    try:
        while True:
            try:
                item = await asyncio.wait_for(iterator.__anext__(), max(0.0, deadline - loop.time()))
            except StopAsyncIteration:
                return
            except asyncio.TimeoutError:
                raise DeadlineExceeded(f"{what} ran past its {seconds:g} s limit and was stopped") from None
            yield item
    finally:
        await iterator.aclose()  # type: ignore[attr-defined]


class MuseforgeService(pb_grpc.MuseforgeServicer):
    def __init__(self, engine: Engine, executor: Executor) -> None:
        self.engine = engine
        self.executor = executor

    async def ListPlugins(
        self, request: pb.ListPluginsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListPluginsResponse:
        return pb.ListPluginsResponse(
            plugins=[
                pb.PluginInfo(
                    name=r.name,
                    version=r.version,
                    hooks=r.hooks,
                    error=r.error,
                    source=r.source,
                    generators=r.generators,
                    effects=r.effects,
                )
                for r in self.engine.plugins()
            ]
        )

    async def ListGenerators(
        self, request: pb.ListGeneratorsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListGeneratorsResponse:
        found = []
        for name, gen in sorted(self.engine.generators.items()):
            if request.modality and gen.modality != request.modality:
                continue
            models = self._model_infos(gen)
            found.append(
                pb.GeneratorInfo(
                    name=name,
                    modality=gen.modality,
                    description=gen.description,
                    parameters_schema=json.dumps(self.engine.parameters_schema(gen)),
                    formats=list(gen.formats),
                    models=models,
                    plugin=self.engine.plugin_of(name),
                    available=self.engine.available(gen),
                    max_count=self.engine.max_count(gen),
                )
            )
        return pb.ListGeneratorsResponse(generators=found)

    def _model_infos(self, declared: Generator | Effect) -> list[pb.ModelInfo]:
        return [
            pb.ModelInfo(
                name=m.name,
                version=str(m.version),
                provider=m.provider,
                sha256=m.sha256,
                ready=m.ready,
                error=m.error,
            )
            for m in self.engine.models_of(declared)
        ]

    async def ListEffects(
        self, request: pb.ListEffectsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListEffectsResponse:
        return pb.ListEffectsResponse(
            effects=[
                pb.EffectInfo(
                    name=name,
                    modality=effect.modality,
                    description=effect.description,
                    parameters_schema=json.dumps(effect.parameters.model_json_schema()),
                    formats=list(effect.formats),
                    input_formats=list(effect.input_formats),
                    models=self._model_infos(effect),
                    plugin=self.engine.plugin_of(name, "effects"),
                    available=self.engine.available(effect),
                    min_inputs=effect.min_inputs,
                    max_inputs=effect.max_inputs,
                )
                for name, effect in sorted(self.engine.effects.items())
                if not request.modality or effect.modality == request.modality
            ]
        )

    async def _prepare_effect(self, request: pb.ApplyEffectRequest) -> PreparedEffect:
        parameters = struct_to_dict(request.parameters)
        seed = request.seed if request.HasField("seed") else None
        inputs = [EffectInput(i.data, i.name) for i in request.inputs]
        # Decoding a film frame takes a while: never on the event loop.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor,
            lambda: self.engine.prepare_effect(request.effect, parameters, inputs, seed, request.format),
        )

    def _limit(self, declared: float | None) -> float:
        return min(
            declared or self.engine.settings.generator_timeout_seconds,
            self.engine.settings.generator_timeout_seconds,
        )

    async def _effect_events(self, prepared: PreparedEffect) -> AsyncIterator[Progress | Artifact | Chunk]:
        events = iterate_in_thread(lambda cancel: self.engine.run_effect(prepared, cancel), self.executor)
        async for event in within(
            events, self._limit(prepared.effect.timeout), f"effect {prepared.effect.name}"
        ):
            yield event

    async def ApplyEffect(
        self, request: pb.ApplyEffectRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ApplyEffectResponse:
        try:
            prepared = await self._prepare_effect(request)
            artifacts = [
                artifact_message(e) async for e in self._effect_events(prepared) if isinstance(e, Artifact)
            ]
        except RequestError as exc:
            await abort_with(context, correlated(exc, f"ApplyEffect {request.effect}"))
            raise  # unreachable: abort raises
        return pb.ApplyEffectResponse(artifacts=artifacts, seed=prepared.seed)

    async def StreamApplyEffect(
        self, request: pb.ApplyEffectRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.ApplyEffectEvent]:
        try:
            prepared = await self._prepare_effect(request)
            yield pb.ApplyEffectEvent(seed=prepared.seed)
            async for event in self._effect_events(prepared):
                if isinstance(event, Artifact):
                    yield pb.ApplyEffectEvent(artifact=artifact_message(event))
                elif isinstance(event, Progress):
                    yield pb.ApplyEffectEvent(progress=progress_message(event))
        except RequestError as exc:
            await abort_with(context, correlated(exc, f"StreamApplyEffect {request.effect}"))

    def _prepare(self, request: pb.GenerateRequest) -> PreparedRequest:
        parameters = struct_to_dict(request.parameters)
        seed = request.seed if request.HasField("seed") else None
        return self.engine.prepare(request.generator, parameters, seed, request.count, request.format)

    async def _events(self, prepared: PreparedRequest) -> AsyncIterator[Progress | Artifact | Chunk]:
        events = iterate_in_thread(lambda cancel: self.engine.run(prepared, cancel), self.executor)
        name = prepared.generator.name
        async for event in within(events, self._limit(prepared.generator.timeout), f"generator {name}"):
            yield event

    async def Generate(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GenerateResponse:
        try:
            prepared = self._prepare(request)
            artifacts = [artifact_message(e) async for e in self._events(prepared) if isinstance(e, Artifact)]
        except RequestError as exc:
            await abort_with(context, correlated(exc, f"Generate {request.generator}"))
            raise  # unreachable: abort raises
        return pb.GenerateResponse(artifacts=artifacts, seed=prepared.seed)

    async def StreamGenerate(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.GenerateEvent]:
        try:
            prepared = self._prepare(request)
            yield pb.GenerateEvent(seed=prepared.seed)
            async for event in self._events(prepared):
                if isinstance(event, Artifact):
                    yield pb.GenerateEvent(artifact=artifact_message(event))
                elif isinstance(event, Chunk):
                    yield pb.GenerateEvent(
                        chunk=pb.Chunk(
                            index=event.index,
                            data=event.data,
                            media_type=event.media_type,
                            offset=event.offset,
                        )
                    )
                else:
                    yield pb.GenerateEvent(progress=progress_message(event))
        except RequestError as exc:
            await abort_with(context, correlated(exc, f"StreamGenerate {request.generator}"))

    async def GetModelStatistics(
        self, request: pb.GetModelStatisticsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetModelStatisticsResponse:
        models = self.engine.runtime.models
        if request.model and request.model not in models:
            await abort_with(
                context,
                NotFound(f"unknown model {request.model!r}; models: {', '.join(sorted(models)) or 'none'}"),
            )
        chosen = [models[request.model]] if request.model else list(models.values())
        return pb.GetModelStatisticsResponse(models=[model_statistics(m) for m in chosen])


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
