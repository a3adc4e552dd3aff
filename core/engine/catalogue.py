"""The in-process heart of the server: catalogue, validation, models and generation.

Both the gRPC services and ``museforge generate --local`` drive this object.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel

from .. import __version__
from ..config import Settings
from ..runtime.batcher import QueueFull
from ..runtime.sessions import LoadedModel, ModelOverrides, Runtime, RuntimeOptions
from .codecs.decoders import DecodeCancelled, DecodeError, decode_image
from .codecs.encoders import Encoder
from .effect import Effect, Picture
from .errors import (
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from .generator import Cancelled, Chunk, Generator, Media, Progress
from .plugin_host import PluginHost, PluginRecord
from .validation import validate_parameters

log = logging.getLogger("museforge.engine")
T = TypeVar("T", Generator, Effect)

MAX_SEED = 2**64 - 1


@dataclass(frozen=True)
class Artifact:
    """An encoded output, as returned to the caller."""

    data: bytes
    media_type: str
    format: str
    index: int
    filename: str
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class PreparedRequest:
    """A request that passed validation; running it can only fail on the server's side."""

    generator: Generator
    params: BaseModel
    seed: int
    count: int
    encoder: Encoder
    parameters_json: str


@dataclass(frozen=True)
class EffectInput:
    """One input file of an effect request, as sent."""

    data: bytes
    name: str = ""  # the caller's name for it (a frame's file name), for provenance


@dataclass(frozen=True)
class PreparedEffect:
    """An effect request that passed validation, its inputs decoded."""

    effect: Effect
    params: BaseModel
    inputs: tuple[Picture, ...]
    seed: int
    encoder: Encoder
    parameters_json: str
    inputs_json: str  # name, format, size and sha256 of every input, for provenance


@dataclass
class GenerationState:
    """The per-request context handed to a generator (see GenerationContext)."""

    runtime: Runtime
    allowed: frozenset[str]
    cancel: threading.Event = field(default_factory=threading.Event)
    format: str = ""

    def infer(self, model: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_cancelled()
        if model not in self.allowed:
            raise KeyError(f"model {model!r} is not declared by this generator")
        try:
            return self.runtime.infer(model, inputs)
        except QueueFull as exc:
            raise ResourceExhausted(str(exc), retry_after=0.1) from exc

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()


class Engine:
    """Loads plugins and models once, then validates and runs requests."""

    def __init__(self, settings: Settings | None = None, host: PluginHost | None = None) -> None:
        self.settings = settings or Settings()
        self.host = host or PluginHost(
            allow=self.settings.plugins,
            load_entrypoints=self.settings.load_installed_plugins,
            trace=self.settings.trace_plugins,
        )
        self.runtime = Runtime(
            RuntimeOptions(
                providers=tuple(self.settings.providers),
                intra_op_threads=self.settings.intra_op_threads,
                inter_op_threads=self.settings.inter_op_threads,
                graph_optimization=self.settings.graph_optimization,
                spinning=self.settings.spinning,
                batching=self.settings.batching,
                max_queue_delay_us=self.settings.max_queue_delay_us,
                default_max_batch_size=self.settings.default_max_batch_size,
                instances=self.settings.model_instances,
                max_queue_size=self.settings.max_model_queue,
                overrides={
                    name: ModelOverrides(**own.model_dump())
                    for name, own in self.settings.models.items()
                },
            )
        )
        self.started = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Engine:
        if self.started:
            return self
        catalogue = self.host.load()
        declared: list[Generator | Effect] = [*catalogue.generators.values(), *catalogue.effects.values()]
        for item in declared:
            for source in item.models:
                self.runtime.load(source)
        self.started = True
        return self

    def close(self) -> None:
        self.runtime.close()

    # -- catalogue -------------------------------------------------------------------------

    @property
    def generators(self) -> dict[str, Generator]:
        return self.host.catalogue.generators

    @property
    def effects(self) -> dict[str, Effect]:
        return self.host.catalogue.effects

    @property
    def encoders(self) -> dict[str, Encoder]:
        return self.host.catalogue.encoders

    def plugins(self) -> list[PluginRecord]:
        return list(self.host.records.values())

    def plugin_of(self, generator: str, kind: str = "generators") -> str:
        return self.host.catalogue.owners.get(f"{kind}:{generator}", "")

    def models_of(self, generator: Generator | Effect) -> list[LoadedModel]:
        return [self.runtime.models[s.name] for s in generator.models if s.name in self.runtime.models]

    def available(self, generator: Generator | Effect) -> bool:
        return all(m.ready for m in self.models_of(generator))

    def max_count(self, generator: Generator) -> int:
        own = generator.max_count or self.settings.max_count
        return min(own, self.settings.max_count)

    def parameters_schema(self, generator: Generator) -> dict[str, Any]:
        return generator.parameters.model_json_schema()

    # -- requests --------------------------------------------------------------------------

    def _find(self, table: Mapping[str, T], kind: str, name: str) -> T:
        """A registered generator or effect whose models loaded (NOT_FOUND / UNAVAILABLE otherwise)."""
        found = table.get(name)
        if found is None:
            known = ", ".join(sorted(table)) or "none"
            raise NotFound(f"unknown {kind} {name!r}; known {kind}s: {known}")
        declared: Generator | Effect = found
        if not self.available(declared):
            reasons = "; ".join(m.error for m in self.models_of(declared) if not m.ready)
            raise Unavailable(f"{kind} {name} is unavailable: {reasons}")
        return found

    def _format_and_seed(self, name: str, formats: tuple[str, ...], fmt: str, seed: int | None,
                         violations: list[FieldViolation]) -> tuple[str, int]:
        """The output format (checked against the declaration and the encoders) and the seed."""
        fmt = fmt.lower()
        if fmt not in formats or fmt not in self.encoders:
            violations.append(FieldViolation(
                "format", f"{fmt!r} is not supported by {name}; use one of {list(formats)}"))
        if seed is None:
            seed = secrets.randbits(63)
        elif not 0 <= seed <= MAX_SEED:
            violations.append(FieldViolation("seed", "must be between 0 and 2**64-1"))
        return fmt, seed

    def prepare(
        self,
        name: str,
        parameters: Mapping[str, Any] | None,
        seed: int | None,
        count: int,
        fmt: str,
    ) -> PreparedRequest:
        """Validate everything a client sent; raises a RequestError naming each bad field."""
        generator = self._find(self.generators, "generator", name)
        count = count or 1
        limit = self.max_count(generator)
        count_ok = 1 <= count <= limit
        # A count out of range is reported once, not again by every bound it takes part in.
        params, violations = validate_parameters(name, generator.parameters, parameters,
                                                  count if count_ok else 1)
        if not count_ok:
            violations.append(FieldViolation("count", f"must be between 1 and {limit}, got {count}"))
        elif params is not None:
            violations.extend(self._request_bounds(generator, params, count, violations))
        fmt, seed = self._format_and_seed(name, generator.formats, fmt or generator.formats[0], seed,
                                          violations)
        if violations or params is None:
            raise InvalidArgument(f"invalid request for {name}", violations)
        return PreparedRequest(
            generator=generator,
            params=params,
            seed=seed,
            count=count,
            encoder=self.encoders[fmt],
            parameters_json=json.dumps(params.model_dump(mode="json"), sort_keys=True),
        )

    def _request_bounds(self, generator: Generator, params: BaseModel, count: int,
                        found: list[FieldViolation]) -> list[FieldViolation]:
        """The generator's own cross-field checks, then the server's bound on the output's size."""
        checked = generator.check(params, count) if generator.check is not None else []
        problems = [FieldViolation(f, d) for f, d in checked]
        if generator.estimate is None or found or problems:
            return problems
        estimate = generator.estimate(params, count)
        if estimate.bytes > self.settings.max_output_bytes:
            fields = ", ".join(estimate.fields)
            problems.append(FieldViolation(
                estimate.fields[0] if estimate.fields else "count",
                f"{fields} ask for about {estimate.bytes:,} bytes of media; this server makes at most "
                f"{self.settings.max_output_bytes:,} per request (max_output_bytes)"))
        return problems

    def request_provenance(self, request: PreparedRequest) -> dict[str, str]:
        """What every artifact of a request shares (computed once per request)."""
        models = self.models_of(request.generator)
        return {
            "generator": request.generator.name,
            "seed": str(request.seed),
            "count": str(request.count),
            "parameters": request.parameters_json,
            "format": request.encoder.name,
            "museforge_version": __version__,
            "models": json.dumps(
                [{"name": m.name, "version": m.version, "sha256": m.sha256} for m in models]
            ),
        }

    def provenance(self, request: PreparedRequest, media: Media,
                   shared: Mapping[str, str] | None = None) -> dict[str, str]:
        record = dict(shared if shared is not None else self.request_provenance(request))
        record["index"] = str(media.index)
        record.update({f"x.{k}": str(v) for k, v in media.metadata.items()})
        return record

    def run(
        self, request: PreparedRequest, cancel: threading.Event | None = None
    ) -> Iterator[Progress | Artifact | Chunk]:
        """Run a prepared request (blocking; call from a worker thread)."""
        state = GenerationState(
            runtime=self.runtime,
            allowed=frozenset(s.name for s in request.generator.models),
            cancel=cancel or threading.Event(),
            format=request.encoder.name,
        )
        shared = self.request_provenance(request)
        prefix = f"{request.generator.name}-{request.seed}"
        yield from self._drive(
            state, lambda: request.generator.generate(state, request.params, request.seed, request.count),
            f"generator {request.generator.name}", request.encoder,
            lambda media: self.provenance(request, media, shared), prefix,
        )

    def _drive(
        self, state: GenerationState, start: Callable[[], Iterator[Progress | Media | Chunk]], what: str,
        encoder: Encoder, provenance: Callable[[Media], dict[str, str]], prefix: str,
    ) -> Iterator[Progress | Artifact | Chunk]:
        """Pass progress on, encode media as it comes; a plugin's failure fails this request only."""
        try:
            for event in start():
                state.check_cancelled()
                if isinstance(event, (Progress, Chunk)):
                    yield event
                elif isinstance(event, Media):
                    yield self._encode(encoder, event, provenance(event), prefix)
                else:
                    raise TypeError(f"yielded {type(event).__name__}, not Progress, Media or Chunk")
        except Cancelled:
            return
        except ResourceExhausted:
            raise  # overload, not the plugin's fault: the caller retries
        except Exception as exc:  # the plugin's fault fails this request alone
            log.exception("%s failed", what)
            raise Internal(f"{what} failed: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _encode(encoder: Encoder, media: Media, metadata: dict[str, str], prefix: str) -> Artifact:
        if media.kind != encoder.modality:
            raise TypeError(f"produced {media.kind} media, but {encoder.name} encodes {encoder.modality}")
        return Artifact(
            data=encoder.encode(media, metadata),
            media_type=encoder.media_type,
            format=encoder.name,
            index=media.index,
            filename=f"{prefix}-{media.index:04d}.{encoder.extension}",
            metadata=metadata,
        )

    # -- effects ---------------------------------------------------------------------------

    def check_effect(
        self, name: str, parameters: Mapping[str, Any] | None
    ) -> tuple[Effect, list[FieldViolation]]:
        """The effect and its parameter problems (``parameters.<field>``), without any input."""
        effect = self._find(self.effects, "effect", name)
        return effect, validate_parameters(name, effect.parameters, parameters)[1]

    def prepare_effect(
        self,
        name: str,
        parameters: Mapping[str, Any] | None,
        inputs: Sequence[EffectInput],
        seed: int | None = None,
        fmt: str = "",
        cancel: threading.Event | None = None,
    ) -> PreparedEffect:
        """Validate an effect request and decode its inputs; raises naming each bad field.

        Once ``cancel`` is set (the call was cancelled or ran out of time) decoding stops at
        its next check and :class:`Cancelled` is raised.
        """
        effect = self._find(self.effects, "effect", name)
        params, violations = validate_parameters(name, effect.parameters, parameters)
        pictures: list[Picture] = []
        if not effect.min_inputs <= len(inputs) <= effect.max_inputs:
            wanted = (str(effect.min_inputs) if effect.min_inputs == effect.max_inputs
                      else f"{effect.min_inputs} to {effect.max_inputs}")
            violations.append(FieldViolation("inputs", f"{name} takes {wanted} input(s), got {len(inputs)}"))
        else:
            pictures = self._decode_inputs(effect, inputs, violations, cancel)
        if params is not None and effect.check is not None and len(pictures) == len(inputs) and pictures:
            violations.extend(FieldViolation(f, d) for f, d in effect.check(params, pictures))
        default = pictures[0].format if pictures else effect.formats[0]
        fmt, seed = self._format_and_seed(
            name, effect.formats, fmt or (default if default in effect.formats else effect.formats[0]),
            seed, violations)
        if violations or params is None:
            raise InvalidArgument(f"invalid request for {name}", violations)
        described = [
            {"name": item.name, "format": pic.format, "width": pic.width, "height": pic.height,
             "sha256": hashlib.sha256(item.data).hexdigest()}
            for item, pic in zip(inputs, pictures, strict=True)
        ]
        return PreparedEffect(
            effect=effect, params=params, inputs=tuple(pictures), seed=seed,
            encoder=self.encoders[fmt],
            parameters_json=json.dumps(params.model_dump(mode="json"), sort_keys=True),
            inputs_json=json.dumps(described),
        )

    def _decode_inputs(self, effect: Effect, inputs: Sequence[EffectInput], violations: list[FieldViolation],
                       cancel: threading.Event | None) -> list[Picture]:
        pictures: list[Picture] = []
        for i, item in enumerate(inputs):
            try:
                pictures.append(decode_image(item.data, self.settings.max_input_pixels, item.name,
                                             effect.input_formats, cancel=cancel))
            except DecodeCancelled:
                raise Cancelled() from None
            except DecodeError as exc:
                violations.append(FieldViolation(f"inputs[{i}]", str(exc)))
            if cancel is not None and cancel.is_set():
                raise Cancelled()
        return pictures

    def run_effect(
        self, request: PreparedEffect, cancel: threading.Event | None = None
    ) -> Iterator[Progress | Artifact | Chunk]:
        """Run a prepared effect (blocking; call from a worker thread)."""
        effect = request.effect
        state = GenerationState(runtime=self.runtime, allowed=frozenset(s.name for s in effect.models),
                                cancel=cancel or threading.Event(), format=request.encoder.name)
        models = self.models_of(effect)
        shared = {
            "effect": effect.name,
            "seed": str(request.seed),
            "parameters": request.parameters_json,
            "inputs": request.inputs_json,
            "format": request.encoder.name,
            "museforge_version": __version__,
            "models": json.dumps([{"name": m.name, "version": m.version, "sha256": m.sha256}
                                  for m in models]),
        }

        def provenance(media: Media) -> dict[str, str]:
            record = {**shared, "index": str(media.index)}
            record.update({f"x.{k}": str(v) for k, v in media.metadata.items()})
            return record

        stem = Path(request.inputs[0].name).stem if request.inputs[0].name else str(request.seed)
        yield from self._drive(
            state, lambda: effect.apply(state, request.params, request.inputs, request.seed),
            f"effect {effect.name}", request.encoder, provenance, f"{effect.name}-{stem}",
        )

    def apply_effect(
        self,
        name: str,
        parameters: Mapping[str, Any] | None,
        inputs: Sequence[EffectInput],
        *,
        seed: int | None = None,
        fmt: str = "",
    ) -> list[Artifact]:
        """Validate and run in the calling thread; the artifacts in order."""
        request = self.prepare_effect(name, parameters, inputs, seed, fmt)
        return [e for e in self.run_effect(request) if isinstance(e, Artifact)]

    def generate(
        self,
        name: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
        count: int = 1,
        fmt: str = "",
    ) -> list[Artifact]:
        """Validate and run in the calling thread; the artifacts in order."""
        request = self.prepare(name, parameters, seed, count, fmt)
        return [e for e in self.run(request) if isinstance(e, Artifact)]
