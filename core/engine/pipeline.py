"""The one path from a prepared request to artifacts, a generator's or an effect's: the context
its plugin runs in, progress and chunks passed on, each media encoded with its provenance.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..runtime.batcher import QueueFull
from ..runtime.sessions import ModelNotReady, Runtime
from ..runtime.stop import RunStopped, StopSignal
from .codecs.encoders import Encoder
from .effect import Picture
from .errors import Internal, InvalidArgument, RequestError, ResourceExhausted, Unavailable
from .generator import Cancelled, Chunk, LimitExceeded, Media, Progress
from .media_checks import MediaTally, check_event
from .plugin_faults import is_plugin_fault, limit_exceeded, plugin_failed
from .request import Artifact, PreparedRequest

log = logging.getLogger("museforge.engine")


@dataclass
class GenerationState:
    """The per-request context handed to a generator or effect (see GenerationContext)."""

    runtime: Runtime
    allowed: frozenset[str]
    cancel: threading.Event = field(default_factory=StopSignal)
    format: str = ""
    max_output_bytes: int = 0  # raw media one request may make (0: no limit)
    max_artifacts: int = 0  # media one request may yield, parts included (0: no limit)

    def infer(self, model: str, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_cancelled()
        if model not in self.allowed:
            raise KeyError(f"model {model!r} is not declared by this generator")
        try:
            return self.runtime.infer(model, inputs, self.cancel)
        except RunStopped:
            raise Cancelled() from None  # the request ended while its run went on: stopped with it
        except QueueFull as exc:
            raise ResourceExhausted(str(exc), retry_after=0.1) from exc
        except ModelNotReady as exc:
            if model not in self.runtime.models:
                raise  # a model nobody declared: the plugin's fault, said as INTERNAL
            raise Unavailable(str(exc)) from exc  # unloaded while the request ran: the caller may retry

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()


def events(state: GenerationState, request: PreparedRequest) -> Iterator[Progress | Media | Chunk]:
    """The plugin's events, checked; a plugin's failure fails this request only."""
    what = f"{request.kind} {request.declared.name}"
    made = MediaTally(request, state.max_output_bytes, state.max_artifacts)
    run: object = None
    try:
        run = request.start(state)
        if not isinstance(run, Iterable) or isinstance(run, (Progress, Chunk, Media)):
            verb = "apply" if request.kind == "effect" else "generate"  # often a missing `yield`
            raise TypeError(f"{verb} returned {type(run).__name__}, not an iterator of events: yield each "
                            f"Media and Progress (a {verb} with `yield` in it returns one)")
        for event in run:
            state.check_cancelled()
            if not isinstance(event, (Progress, Chunk, Media)):
                raise TypeError(f"yielded {type(event).__name__}, not Progress, Media or Chunk")
            if isinstance(event, Media):
                made.add(event)
            else:  # checked here, so a unary call refuses what a stream could not send
                check_event(event)
            yield event
        if not state.cancel.is_set():  # a run that stopped because it was asked to is not short
            made.complete()
    except Cancelled:
        if state.cancel.is_set():
            return
        # Raised by the plugin itself: ended early with nobody asking, which is no quiet end.
        log.error("%s raised Cancelled but its call was not cancelled", what)
        raise Internal(f"{what} stopped: it raised Cancelled but its call was not cancelled") from None
    except (ResourceExhausted, Unavailable):
        raise  # overload or a model unloaded meanwhile, not the plugin's fault: the caller retries
    except InvalidArgument:
        raise  # the request asked what cannot be done (found only on running): the caller's to change
    except LimitExceeded as exc:  # the same, said by the plugin in the public API's words
        raise limit_exceeded(what, exc) from None
    except BaseException as exc:  # the plugin's fault fails this request alone (SystemExit too)
        if not is_plugin_fault(exc):
            raise  # Ctrl-C in the main thread, or the consumer closing this generator
        raise plugin_failed(what, exc) from exc
    finally:
        stop_run(what, run)


def stop_run(what: str, run: object) -> None:
    """Close the plugin's iterator now (a request refused part way, e.g. past max_output_bytes), so
    it makes nothing more and lets go of what it holds, rather than whenever it is collected."""
    close = getattr(run, "close", None)
    if not callable(close):
        return
    try:
        close()
    except Exception:  # e.g. it yields on GeneratorExit: the request's own error is the one to report
        log.exception("%s: closing its run failed", what)


def drive(
    state: GenerationState, request: PreparedRequest, provenance: Callable[[Media], dict[str, str]]
) -> Iterator[Progress | Artifact | Chunk]:
    """Pass progress on, encode media as it comes."""
    prefix = request.filename_prefix
    for event in events(state, request):
        if not isinstance(event, Media):
            yield event
            continue
        try:
            yield encode(request.encoder, with_source(request, event), provenance(event), prefix)
        except RequestError:
            raise  # the encoder's own answer (a size the format cannot hold names `format`)
        except BaseException as exc:  # the plugin's media or its encoder: this request alone, said plainly
            if not is_plugin_fault(exc):
                raise
            log.exception("%s: encoding media %d failed", request.declared.name, event.index)
            raise Internal(f"{request.kind} {request.declared.name}: encoding media {event.index} as "
                           f"{request.encoder.name} failed: {type(exc).__name__}: {exc}") from exc


def with_source(request: PreparedRequest, media: Media) -> Media:
    """An effect's result over one input, written in that input's format, goes to the encoder
    with the input's header (an EXR's timecode, compression, half floats) for it to keep."""
    if media.source is not None or request.kind != "effect" or len(request.inputs) != 1:
        return media
    picture = request.inputs[0]
    if not isinstance(picture, Picture) or picture.source is None \
            or picture.source.format != request.encoder.name:
        return media
    return dataclasses.replace(media, source=picture.source)


def encode(encoder: Encoder, media: Media, metadata: dict[str, str], prefix: str) -> Artifact:
    if media.kind != encoder.modality:
        raise TypeError(f"produced {media.kind} media, but {encoder.name} encodes {encoder.modality}")
    data = encoder.encode(media, metadata)
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif not isinstance(data, bytes):  # None once made an empty file; a str, a TypeError saying nothing
        raise TypeError(f"encoder {encoder.name} returned {type(data).__name__}, not bytes")
    return Artifact(
        data=data,
        media_type=encoder.media_type,
        format=encoder.name,
        index=media.index,
        filename=f"{prefix}-{media.index:04d}{'-' + media.part if media.part else ''}.{encoder.extension}",
        metadata=metadata,
    )
