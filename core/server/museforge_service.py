"""The ``museforge.v1.Museforge`` gRPC service."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import grpc

from ..engine.catalogue import Artifact, EffectInput, Engine, PreparedRequest
from ..engine.effect import Effect
from ..engine.errors import (
    MAX_MESSAGE_BYTES,
    DeadlineExceeded,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    RequestError,
    clip,
    new_correlation,
)
from ..engine.generator import MODALITIES, Chunk, Generator, Progress
from ..v1 import museforge_pb2 as pb
from ..v1 import museforge_pb2_grpc as pb_grpc
from .call_pool import CallPool, Run
from .caller import caller_key
from .interception import answer, forget_frames
from .message_fields import message_from
from .statistics_message import model_statistics
from .status import to_status
from .structs import struct_to_dict
from .thread_bridge import Deadline, call_in_thread, iterate_in_thread

log = logging.getLogger("museforge.service")
Collected = tuple[int, list[pb.Artifact]]  # a unary call's seed and artifacts
Request = pb.GenerateRequest | pb.ApplyEffectRequest
Reply = TypeVar("Reply", pb.GenerateResponse, pb.ApplyEffectResponse)
Event = TypeVar("Event", pb.GenerateEvent, pb.ApplyEffectEvent)


def artifact_message(artifact: Artifact) -> pb.Artifact:
    return message_from(pb.Artifact, artifact, ("data", "media_type", "format", "index", "filename"),
                        metadata=dict(artifact.metadata))


def progress_message(progress: Progress) -> pb.Progress:
    return message_from(pb.Progress, progress, ("completed", "total", "stage", "message"))


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], error: RequestError) -> None:
    """Raise grpc's AbortError with ``error``'s status (``fail`` answers without raising)."""
    status = to_status(error)
    await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)


async def check_modality(context: grpc.aio.ServicerContext[Any, Any], modality: str) -> None:
    """A listing's filter names a modality there is: "music" or "IMAGE" listed nothing, with OK."""
    if modality and modality not in MODALITIES:
        message = f"unknown modality {clip(modality, 64)!r}: one of {', '.join(MODALITIES)}, or empty for all"
        refusal = InvalidArgument(f"modality: {message}", [FieldViolation("modality", message)])
        await abort_with(context, refusal)


def correlated(error: RequestError, what: str, request_id: str = "") -> RequestError:
    """A server-side failure gets an id that is in its message and in the server log (with the
    caller's own x-request-id, if it sent one): the id its traceback was logged under, if it was."""
    if not isinstance(error, (Internal, DeadlineExceeded)):
        return error  # the caller's own mistake (or overload): nothing to look up in the log
    correlation = error.correlation or new_correlation()
    theirs = f" (x-request-id {clip(request_id, 128)!r})" if request_id else ""
    log.error("correlation id %s%s: %s: %s", correlation, theirs, what, error.message)
    suffix = f" (correlation id {correlation})"
    # Cut the message, not the id, when it is too long for a status.
    error.message = clip(error.message, MAX_MESSAGE_BYTES - len(suffix)) + suffix
    return error


def fail(context: grpc.aio.ServicerContext[Any, Any], error: Exception, what: str) -> None:
    """Answer the call with ``error`` by setting its status: nothing raised, nothing kept.

    A RequestError is the answer itself; anything else is the server's own fault, INTERNAL
    with a correlation id. Either way the error's traceback (and with it every frame that
    held the request) is dropped at once.
    """
    if isinstance(error, RequestError):
        known = error.detached()
    else:
        known = Internal(f"{what} failed: {type(error).__name__}")
        known.correlation = new_correlation()
        log.error("correlation id %s: %s failed", known.correlation, what, exc_info=error)
        forget_frames(error)
    request_id = dict(context.invocation_metadata() or ()).get("x-request-id", "")
    answer(context, to_status(correlated(known, what, request_id)))


def _collect(events: Iterable[Progress | Artifact | Chunk], cancel: threading.Event,
             room: int, prepared: PreparedRequest) -> list[pb.Artifact]:
    """The artifacts of a run, as messages; stops early once the call has ended, and fails
    naming what to change once they would not fit in one reply of ``room`` bytes."""
    artifacts, size = [], 0
    for event in events:
        if cancel.is_set():
            break
        if isinstance(event, Artifact):
            artifacts.append(artifact_message(event))
            size += artifacts[-1].ByteSize()
            if size > room:
                raise too_big_a_reply(prepared, room)
    # In request order, whatever order they were made in (music pieces end as their bars run
    # out): a caller reads artifacts[0] as item 0, each item's parts (stems) right after it.
    artifacts.sort(key=lambda artifact: (artifact.index, "part" in artifact.metadata))
    return artifacts


def too_big_a_reply(prepared: PreparedRequest, room: int) -> InvalidArgument:
    """A reply (or one streamed artifact) past max_message_bytes: grpc would refuse to send it with
    RESOURCE_EXHAUSTED, which callers read as "retry", and nothing naming the request."""
    many = prepared.kind == "generator" and prepared.count > 1
    advice = ("ask for fewer, or call StreamGenerate, which sends each artifact in a message of its own"
              if many else "ask for smaller output")
    return InvalidArgument("reply too large", [FieldViolation(
        "count" if many else "parameters",
        f"the artifacts of {prepared.declared.name} pass this server's {room:,} bytes per message "
        f"(max_message_bytes): {advice}")])


@dataclass(frozen=True)
class _Seed:
    """A streamed run's first event: the seed it runs with, known once the request is prepared."""

    seed: int


def chunk_message(chunk: Chunk) -> pb.Chunk:
    return pb.Chunk(index=chunk.index, data=chunk.data, media_type=chunk.media_type, offset=chunk.offset)


@dataclass(frozen=True)
class Route(Generic[Reply, Event]):
    """What a generator's calls and an effect's answer with; all else about them is shared."""

    method: str  # "Generate" or "ApplyEffect"; the streaming form is "Stream" + method
    kind: str  # "generator" or "effect": the catalogue the call's name is looked up in
    reply: type[Reply]
    event: type[Event]
    chunk: Callable[[Chunk], Event | None]  # None: the stream's messages carry no chunks

    def stream_event(self, event: Progress | Artifact | Chunk) -> Event | None:
        if isinstance(event, Artifact):
            return self.event(artifact=artifact_message(event))
        if isinstance(event, Progress):
            return self.event(progress=progress_message(event))
        return self.chunk(event)


# A reply's own fields beside its artifacts (seed, a stream event's framing): kept free.
REPLY_OVERHEAD = 4096
GENERATE = Route("Generate", "generator", pb.GenerateResponse, pb.GenerateEvent,
                 lambda chunk: pb.GenerateEvent(chunk=chunk_message(chunk)))
# ApplyEffectEvent has no chunk: an effect's stream carries whole artifacts.
APPLY_EFFECT = Route("ApplyEffect", "effect", pb.ApplyEffectResponse, pb.ApplyEffectEvent,
                     lambda chunk: None)


def declared_name(request: Request) -> str:
    """The generator or effect a call asks for."""
    return request.effect if isinstance(request, pb.ApplyEffectRequest) else request.generator


class MuseforgeService(pb_grpc.MuseforgeServicer):
    def __init__(self, engine: Engine, pool: CallPool) -> None:
        self.engine = engine
        self.pool = pool

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
        await check_modality(context, request.modality)
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
                training_data=[pb.TrainingData(**t.model_dump()) for t in
                               (m.manifest.training_data if m.manifest else ())],
            )
            for m in self.engine.models_of(declared)
        ]

    async def ListEffects(
        self, request: pb.ListEffectsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListEffectsResponse:
        await check_modality(context, request.modality)
        return pb.ListEffectsResponse(
            effects=[
                pb.EffectInfo(
                    name=name,
                    modality=effect.modality,
                    description=effect.description,
                    parameters_schema=json.dumps(self.engine.parameters_schema(effect)),
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

    # -- the request path -------------------------------------------------------------------
    # The event loop only moves bytes: converting and validating parameters, decoding inputs
    # and running happen in the worker threads. Errors answer the call by setting its status
    # (see ``fail``), so a failed call's request is freed as soon as the call ends.

    def _limit(self, declared: float | None) -> float:
        return min(
            declared or self.engine.settings.generator_timeout_seconds,
            self.engine.settings.generator_timeout_seconds,
        )

    def _deadline(self, kind: str, name: str) -> Deadline:
        table: Mapping[str, Generator | Effect] = (
            self.engine.generators if kind == "generator" else self.engine.effects)
        declared = table.get(name)
        seconds = self._limit(declared.timeout if declared is not None else None)
        return Deadline(seconds, f"{kind} {clip(name, 200)}", plugin=self.engine.plugin_of(name, f"{kind}s"))

    @asynccontextmanager
    async def _slot(self, deadline: Deadline) -> AsyncIterator[Run]:
        """A place in the call pool, waited for within the call's time."""
        try:
            async with self.pool.slot(deadline.what, deadline.remaining(), deadline.plugin) as run:
                yield run
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"{deadline.what}: every worker thread stayed busy for its "
                                   f"{deadline.seconds:g} s limit") from None

    def _prepare(self, request: Request, owner: str, cancel: threading.Event) -> PreparedRequest:
        parameters = struct_to_dict(request.parameters)
        seed = request.seed if request.HasField("seed") else None
        if isinstance(request, pb.ApplyEffectRequest):
            inputs = [EffectInput(i.data, i.name) for i in request.inputs]
            return self.engine.prepare_effect(request.effect, parameters, inputs, seed, request.format,
                                              cancel)
        return self.engine.prepare(request.generator, parameters, seed, request.count, request.format, owner,
                                   cancel)

    # A unary call runs start to finish in one worker thread: its events never cross to the
    # loop one by one (each crossing is a wake-up and a timer), and its messages are built
    # there too. Only streaming calls hand their events to the loop as they come.

    def _collected(self, request: Request, owner: str, cancel: threading.Event) -> Collected:
        prepared = self._prepare(request, owner, cancel)
        room = self.engine.settings.max_message_bytes - REPLY_OVERHEAD
        with closing(self.engine.run(prepared, cancel)) as run:  # a run left early ends now, not at GC
            return prepared.seed, _collect(run, cancel, room, prepared)

    async def _unary(self, route: Route[Reply, Any], request: Request,
                     context: grpc.aio.ServicerContext[Any, Any]) -> Reply:
        """Generate or ApplyEffect: the seed and every artifact in one reply."""
        name = declared_name(request)
        what = f"{route.method} {clip(name, 200)}"
        deadline = self._deadline(route.kind, name)
        try:
            # The caller's key is read here: worker threads do not see the call's context.
            work = partial(self._collected, request, caller_key() or "")
            async with self._slot(deadline) as run:
                seed, artifacts = await call_in_thread(work, self.pool.executor, deadline, run)
        except Exception as exc:
            fail(context, exc, what)
            return route.reply()
        return route.reply(artifacts=artifacts, seed=seed)

    async def _stream(self, route: Route[Any, Event], request: Request,
                      context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Event]:
        """StreamGenerate or StreamApplyEffect: the seed first, then events as the run makes them."""
        name = declared_name(request)
        what = f"Stream{route.method} {clip(name, 200)}"
        deadline = self._deadline(route.kind, name)
        try:
            work = partial(self._prepared_run, request, caller_key() or "")
            async with self._slot(deadline) as run:
                async for event in iterate_in_thread(work, self.pool.executor, run, deadline):
                    if isinstance(event, _Seed):
                        yield route.event(seed=event.seed)
                        continue
                    message = route.stream_event(event)
                    if message is not None:
                        yield message
        except Exception as exc:
            fail(context, exc, what)

    def _prepared_run(self, request: Request, owner: str,
                      cancel: threading.Event) -> Iterator[_Seed | Progress | Artifact | Chunk]:
        """Prepare and run in one worker thread: a live caller (a pen on a canvas) waits for one
        hand-off to the thread, not one for preparing and another for running."""
        prepared = self._prepare(request, owner, cancel)
        yield _Seed(prepared.seed)
        room = self.engine.settings.max_message_bytes - REPLY_OVERHEAD
        with closing(self.engine.run(prepared, cancel)) as run:
            for event in run:
                if isinstance(event, Artifact) and len(event.data) > room:
                    raise too_big_a_reply(prepared, room)
                yield event

    async def Generate(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GenerateResponse:
        return await self._unary(GENERATE, request, context)

    async def StreamGenerate(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.GenerateEvent]:
        async for message in self._stream(GENERATE, request, context):
            yield message

    async def ApplyEffect(
        self, request: pb.ApplyEffectRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ApplyEffectResponse:
        return await self._unary(APPLY_EFFECT, request, context)

    async def StreamApplyEffect(
        self, request: pb.ApplyEffectRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.ApplyEffectEvent]:
        async for message in self._stream(APPLY_EFFECT, request, context):
            yield message

    async def GetModelStatistics(
        self, request: pb.GetModelStatisticsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetModelStatisticsResponse:
        models = self.engine.runtime.models
        if request.model and request.model not in models:
            known = ", ".join(sorted(models)) or "none"
            answer(context, to_status(NotFound(f"unknown model {request.model!r}; models: {known}")))
            return pb.GetModelStatisticsResponse()
        chosen = [models[request.model]] if request.model else list(models.values())
        return pb.GetModelStatisticsResponse(models=[model_statistics(m) for m in chosen])
