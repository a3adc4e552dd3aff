"""The in-process heart of the server: catalogue, validation, models and generation.

Both the gRPC services and ``museforge generate --local`` drive this object. A generator's
request and an effect's differ only in how they are prepared; both then run through
:mod:`museforge.engine.pipeline`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Generator as Run
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel

from ..config import Settings, model_repository
from ..near_names import did_you_mean
from ..runtime.sessions import LoadedModel, ModelOverrides, Runtime, RuntimeOptions
from ..runtime.stop import StopSignal
from ..runtime.versions import VersionPolicy
from .codecs.audio_inputs import decode_sound, sniff_audio
from .codecs.decoders import DecodeCancelled, DecodeError, decode_image
from .codecs.encoders import Encoder
from .codecs.video_inputs import decode_clip, input_head, sniff_video
from .effect import AUDIO_INPUT_FORMATS, VIDEO_INPUT_FORMATS, Clip, DecodedInput, Effect
from .errors import FieldViolation, InvalidArgument, NotFound, Unavailable, request_field
from .generator import Cancelled, Chunk, Generator, Media, Progress
from .latent import Variations
from .pipeline import GenerationState, drive, events
from .plugin_faults import checked, estimated, plugin_code
from .plugin_host import PluginHost, PluginRecord
from .request import (
    Artifact,
    EffectInput,
    PreparedRequest,
    describe_inputs,
    media_provenance,
    shared_provenance,
)
from .steering import Steerer, models_served
from .validation import (
    check_format_and_seed,
    check_input_count,
    output_bounds,
    output_side_problem,
    validate_parameters,
)
from .video_through import OverVideo, over_video, takes_frames, video_encoders
from .work_count import WorkCount

log = logging.getLogger("museforge.engine")

T = TypeVar("T", Generator, Effect)


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
                model_repository=model_repository(self.settings),
                overrides={
                    name: ModelOverrides(**own.model_dump(exclude={"version_policy"}),
                                         version_policy=VersionPolicy.parse(own.version_policy)
                                         if own.version_policy else None)
                    for name, own in self.settings.models.items()
                },
            )
        )
        self.started = False
        self.work = WorkCount()  # requests under way: background renders wait for them
        # What answers ``preference`` (the server's feedback store); None: steering is refused.
        self.steerer: Steerer | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Engine:
        if self.started:
            return self
        catalogue = self.host.load()
        declared: list[Generator | Effect] = [*catalogue.generators.values(), *catalogue.effects.values()]
        for item in declared:
            for source in item.models:
                self.runtime.load(source, catalogue.recipe_for(source.name, source.directory))
        self.runtime.repository.load_added()
        unknown = sorted(set(self.settings.models) - set(self.runtime.models))
        if unknown:  # a misspelt [models."..."] table would otherwise change nothing without a word
            log.warning("settings for models not served: %s (served: %s)", ", ".join(map(repr, unknown)),
                        ", ".join(sorted(self.runtime.models)) or "none")
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

    @staticmethod
    def parameters_schema(item: Generator | Effect) -> dict[str, Any]:
        """The parameters' JSON schema, saying what validation does: a key it does not name is
        refused (``validate_parameters``), whatever the plugin's model allows."""
        return {**item.parameters.model_json_schema(), "additionalProperties": False}

    # -- requests --------------------------------------------------------------------------

    def _find(self, table: Mapping[str, T], kind: str, name: str) -> T:
        """A registered generator or effect whose models loaded (NOT_FOUND / UNAVAILABLE otherwise)."""
        found = table.get(name)
        if found is None:
            known = ", ".join(sorted(table)) or "none"
            raise NotFound(f"unknown {kind} {name!r}{did_you_mean(name, table)}; known {kind}s: {known}")
        declared: Generator | Effect = found
        if not self.available(declared):
            reasons = "; ".join(f"model {m.name}: {m.error}" for m in self.models_of(declared) if not m.ready)
            raise Unavailable(f"{kind} {name} is unavailable: {reasons}")
        return found

    def prepare(
        self,
        name: str,
        parameters: Mapping[str, Any] | None,
        seed: int | None,
        count: int,
        fmt: str,
        owner: str = "",
        cancel: threading.Event | None = None,
    ) -> PreparedRequest:
        """Validate everything a client sent; raises a RequestError naming each bad field.

        ``owner`` is whose users ``preference`` names (the calling API key's id, "" without auth).
        """
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
            violations.extend(self._request_bounds(generator, params, count, violations,
                                                   (fmt or generator.formats[0]).lower()))
        prepared = self._admit(generator, params, violations, fmt or generator.formats[0], seed, count=count)
        if isinstance(prepared.params, Variations) and prepared.params.preference is not None:
            return self._steered(prepared, owner, cancel)
        return prepared

    def _steered(self, request: PreparedRequest, owner: str,
                 cancel: threading.Event | None) -> PreparedRequest:
        """The request with the draws its ``preference`` chose, and a note of what chose them."""
        generator, params = request.generator, request.params
        assert isinstance(params, Variations)
        if generator.latent_shape is None:
            raise InvalidArgument(f"invalid request for {generator.name}", [FieldViolation(
                "parameters.preference", f"{generator.name} does not declare the shape of its latents, "
                "so it cannot be steered")])
        if self.steerer is None:
            raise InvalidArgument(f"invalid request for {generator.name}", [FieldViolation(
                "parameters.preference", "no feedback store to steer by here: a server keeps one, "
                "museforge generate --local does not")])
        state = self.state(generator, generator.formats[0], cancel)  # a cancelled call stops rendering
        served = models_served(self.models_of(generator))
        def render(drawn: BaseModel, count: int) -> list[Media]:
            return self.render(generator, drawn, count, state)

        with self.work.held(), plugin_code(f"generator {generator.name}", "steering"):  # renders draws
            steered = self.steerer.steer(owner, generator, params, request.seed, request.count, render,
                                         served)
        return replace(request, params=steered.params, steering=steered.note,
                       parameters_json=json.dumps(steered.params.model_dump(mode="json"), sort_keys=True))

    def _request_bounds(self, generator: Generator, params: BaseModel, count: int,
                        found: list[FieldViolation], fmt: str) -> list[FieldViolation]:
        """The generator's own cross-field checks, then the server's bound on the output's size
        (not for a format written without rendering any media, such as music's MIDI)."""
        what = f"generator {generator.name}"
        problems = checked(what, generator.check, params, count) if generator.check is not None else []
        problems.extend(output_bounds(what, generator.latent_shape, params, count, self.settings))
        if generator.estimate is None or found or problems or fmt in generator.unrendered_formats:
            return problems
        estimate = estimated(what, generator.estimate, params, count)
        if estimate.bytes > self.settings.max_output_bytes:
            named = [request_field(f) for f in estimate.fields] or ["count"]
            verb = "ask" if len(named) > 1 else "asks"
            problems.append(FieldViolation(
                named[0], f"{', '.join(named)} {verb} for about {estimate.bytes:,} bytes of media; this "
                f"server makes at most {self.settings.max_output_bytes:,} per request (max_output_bytes)"))
        return problems

    def state(self, declared: Generator | Effect, fmt: str,
              cancel: threading.Event | None = None) -> GenerationState:
        """The context a generator or effect runs in: its own models, the format asked for."""
        return GenerationState(runtime=self.runtime, allowed=frozenset(s.name for s in declared.models),
                               cancel=cancel or StopSignal(), format=fmt,
                               max_output_bytes=self.settings.max_output_bytes,
                               max_artifacts=self.settings.max_artifacts)

    def render(self, generator: Generator, params: BaseModel, count: int,
               state: GenerationState | None = None) -> list[Media]:
        """The raw media ``generator`` makes of ``params`` (whole artifacts, parts left out), in
        this thread and unvalidated: for a steerer judging candidate draws. ``state`` (default:
        a fresh one) is what the generator runs in: its cancel flag stops the rendering."""
        fmt = generator.formats[0]
        request = PreparedRequest(declared=generator, params=params, seed=0, count=count,
                                  encoder=self.encoders[fmt], parameters_json="")
        found = request.start(state or self.state(generator, fmt))
        return [event for event in found if isinstance(event, Media) and not event.part]

    def check_effect(
        self, name: str, parameters: Mapping[str, Any] | None
    ) -> tuple[Effect, list[FieldViolation]]:
        """The effect and its parameter problems (``parameters.<field>``), without any input."""
        effect = self._find(self.effects, "effect", name)
        return effect, validate_parameters(name, effect.parameters, parameters, kind="effect")[1]

    def prepare_effect(
        self,
        name: str,
        parameters: Mapping[str, Any] | None,
        inputs: Sequence[EffectInput],
        seed: int | None = None,
        fmt: str = "",
        cancel: threading.Event | None = None,
    ) -> PreparedRequest:
        """Validate an effect request and decode its inputs; raises naming each bad field.

        Once ``cancel`` is set (the call was cancelled or ran out of time) decoding stops at
        its next check and :class:`Cancelled` is raised.
        """
        effect = self._find(self.effects, "effect", name)
        if len(inputs) == 1 and takes_frames(effect) and sniff_video(input_head(inputs[0].data,
                                                                                 inputs[0].path)):
            effect = over_video(effect)  # a video through a frame-wise effect: a video back
        params, violations = validate_parameters(name, effect.parameters, parameters, kind="effect")
        pictures: list[DecodedInput] = []
        wrong_count = check_input_count(effect, len(inputs))
        if wrong_count is not None:
            violations.append(wrong_count)
        else:
            pictures = self._decode_inputs(effect, inputs, violations, cancel)
        if params is not None and effect.check is not None and len(pictures) == len(inputs) and pictures:
            violations.extend(checked(f"effect {name}", effect.check, params, pictures))
        default = pictures[0].format if pictures else effect.formats[0]
        fmt = fmt or (default if default in effect.formats else effect.formats[0])
        if not violations:
            violations.extend(output_side_problem(effect, params, pictures, fmt))
        return self._admit(effect, params, violations, fmt, seed, sources=inputs, pictures=pictures)

    def _decode_inputs(self, effect: Effect, inputs: Sequence[EffectInput], violations: list[FieldViolation],
                       cancel: threading.Event | None) -> list[DecodedInput]:
        pictures: list[DecodedInput] = []
        limit = min(self.settings.max_input_pixels, effect.max_input_pixels or self.settings.max_input_pixels)
        own = f"{effect.name}'s own limit" if limit < self.settings.max_input_pixels else ""
        for i, item in enumerate(inputs):
            try:
                head = input_head(item.data, item.path)
                takes_sound = any(f in AUDIO_INPUT_FORMATS for f in effect.input_formats)
                if takes_sound and sniff_audio(head) is not None:
                    pictures.append(decode_sound(item.data, item.path, item.name, effect.input_formats))
                    continue
                if item.path is not None or sniff_video(head) is not None:
                    pictures.append(self._clip(effect, item, f"inputs[{i}]"))
                    continue
                pictures.append(decode_image(item.data, limit, item.name, effect.input_formats,
                                             cancel=cancel, limit_of=own))
            except DecodeCancelled:
                raise Cancelled() from None
            except DecodeError as exc:
                violations.append(FieldViolation(f"inputs[{i}]", str(exc)))
            if cancel is not None and cancel.is_set():
                raise Cancelled()
        return pictures

    def _clip(self, effect: Effect, item: EffectInput, field: str) -> Clip:
        """A video input, probed but not decoded (an effect that takes video reads its frames)."""
        accepted = tuple(f for f in effect.input_formats if f in VIDEO_INPUT_FORMATS)
        if not accepted:
            raise DecodeError(f"{effect.name} takes images, not video files: send the frames "
                              "(museforge apply decodes a video for a frame-wise effect)")
        clip = decode_clip(item.data, item.path, item.name, accepted, self.settings.max_input_pixels)
        return replace(clip, field=field)

    def _admit(
        self, declared: Generator | Effect, params: BaseModel | None, violations: list[FieldViolation],
        fmt: str, seed: int | None, *, count: int = 1, sources: Sequence[EffectInput] = (),
        pictures: Sequence[DecodedInput] = (),
    ) -> PreparedRequest:
        """Format and seed checked last, then every problem found reported at once, or the request."""
        encoders = video_encoders() if isinstance(declared, OverVideo) else self.encoders
        fmt, seed = check_format_and_seed(declared.name, declared.formats, encoders, fmt, seed,
                                          violations)
        if violations or params is None:
            raise InvalidArgument(f"invalid request for {declared.name}", violations)
        return PreparedRequest(
            declared=declared, params=params, seed=seed, encoder=encoders[fmt],
            parameters_json=json.dumps(params.model_dump(mode="json"), sort_keys=True),
            count=count, inputs=tuple(pictures), inputs_json=describe_inputs(sources, pictures),
        )

    # -- running ---------------------------------------------------------------------------

    def request_provenance(self, request: PreparedRequest) -> dict[str, str]:
        """What every artifact of a request shares (computed once per request)."""
        return shared_provenance(request, self.models_of(request.declared))

    def provenance(self, request: PreparedRequest, media: Media,
                   shared: Mapping[str, str] | None = None) -> dict[str, str]:
        return media_provenance(shared if shared is not None else self.request_provenance(request), media)

    def run(
        self, request: PreparedRequest, cancel: threading.Event | None = None
    ) -> Run[Progress | Artifact | Chunk, None, None]:
        """Run a prepared request, a generator's or an effect's (blocking; call from a worker thread)."""
        state = self.state(request.declared, request.encoder.name, cancel)
        shared = self.request_provenance(request)
        with self.work.held():
            yield from drive(state, request, lambda media: media_provenance(shared, media))

    def _artifacts(self, request: PreparedRequest) -> list[Artifact]:
        return [e for e in self.run(request) if isinstance(e, Artifact)]

    def apply_effect(self, name: str, parameters: Mapping[str, Any] | None, inputs: Sequence[EffectInput],
                     *, seed: int | None = None, fmt: str = "") -> list[Artifact]:
        """Validate and run in the calling thread; the artifacts in order."""
        return self._artifacts(self.prepare_effect(name, parameters, inputs, seed, fmt))

    def apply_media(self, name: str, parameters: Mapping[str, Any] | None, inputs: Sequence[EffectInput],
                    *, seed: int | None = None, cancel: threading.Event | None = None) -> list[Media]:
        """Validate and run an effect in the calling thread; its media as they are, unencoded (parts
        left out): for a caller in this process that encodes the pixels itself, as a video's
        frames go straight to the video encoder. ``cancel`` set stops it at the next tile."""
        request = self.prepare_effect(name, parameters, inputs, seed)
        state = self.state(request.declared, request.encoder.name, cancel)
        with self.work.held():
            return [e for e in events(state, request) if isinstance(e, Media) and not e.part]

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
        return self._artifacts(self.prepare(name, parameters, seed, count, fmt))
