"""A request once validated, the same for a generator and an effect (an effect is a generator
with inputs), with what it was made from (its provenance) and what it yields (artifacts).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from .. import __version__
from ..runtime.sessions import LoadedModel
from .codecs.encoders import Encoder
from .effect import Clip, DecodedInput, Effect, Sound
from .generator import Chunk, GenerationContext, Generator, Media, Progress


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
class EffectInput:
    """One input file of an effect request, as sent."""

    data: bytes
    name: str = ""  # the caller's name for it (a frame's file name), for provenance
    # A local video file read where it lies instead of ``data`` (in-process callers only:
    # the CLI's --local; a request from the network always carries its bytes).
    path: Path | None = None

    def sha256(self) -> str:
        if self.path is None:
            return hashlib.sha256(self.data).hexdigest()
        digest = hashlib.sha256()
        with open(self.path, "rb") as file:
            while block := file.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()


@dataclass(frozen=True)
class PreparedRequest:
    """A request that passed validation; running it can only fail on the server's side.

    A generator's request makes ``count`` media from its parameters alone; an effect's makes
    media from its decoded ``inputs``. Everything after validation treats the two alike.
    """

    declared: Generator | Effect
    params: BaseModel
    seed: int
    encoder: Encoder
    parameters_json: str
    count: int = 1  # a generator's; an effect makes as many media as its inputs call for
    inputs: tuple[DecodedInput, ...] = ()
    inputs_json: str = "[]"  # name, format, size and sha256 of every input, for provenance
    steering: str = ""  # what chose the draws of a request with a preference (JSON), for provenance

    @property
    def kind(self) -> str:
        return "effect" if isinstance(self.declared, Effect) else "generator"

    @property
    def generator(self) -> Generator:
        """The generator a generator's request runs."""
        if not isinstance(self.declared, Generator):
            raise TypeError(f"{self.declared.name} is an effect, not a generator")
        return self.declared

    @property
    def filename_prefix(self) -> str:
        """Files are named after the first input (a frame keeps its name), or else the seed."""
        first = self.inputs[0].name if self.inputs else ""
        return f"{self.declared.name}-{safe_stem(first) or self.seed}"

    def start(self, ctx: GenerationContext) -> Iterator[Progress | Media | Chunk]:
        """The plugin's own iterator of events for this request."""
        if isinstance(self.declared, Effect):
            return self.declared.apply(ctx, self.params, self.inputs, self.seed)
        return self.declared.generate(ctx, self.params, self.seed, self.count)


UNSAFE_IN_NAMES = re.compile(r"[^\w.+-]+")  # what a file name may hold on every system, bar letters
MAX_STEM = 80


def safe_stem(name: str) -> str:
    """A caller's file name as part of a suggested one: its last part (either slash), without
    its extension, anything but letters, digits, '.', '_', '+' and '-' made '_', and kept short."""
    stem = Path(name.replace("\\", "/").split("/")[-1]).stem
    return UNSAFE_IN_NAMES.sub("_", stem).strip("._")[:MAX_STEM]


def describe_inputs(inputs: Sequence[EffectInput], decoded: Sequence[DecodedInput]) -> str:
    """The inputs as provenance records them (each decoded, so the two line up)."""
    records = []
    for item, each in zip(inputs, decoded, strict=True):
        record: dict[str, object] = {"name": item.name, "format": each.format}
        if isinstance(each, Sound):
            record.update(seconds=round(each.seconds, 3))
        else:
            record.update(width=each.width, height=each.height)
        if isinstance(each, Clip):
            record.update(fps=str(each.fps), frames=each.frame_count)
        records.append({**record, "sha256": item.sha256()})
    return json.dumps(records)


def shared_provenance(request: PreparedRequest, models: Sequence[LoadedModel]) -> dict[str, str]:
    """What every artifact of a request shares, keys in the order files have always recorded them."""
    record = {request.kind: request.declared.name, "seed": str(request.seed)}
    if request.kind == "generator":
        record["count"] = str(request.count)
    record["parameters"] = request.parameters_json
    if request.steering:
        record["steering"] = request.steering
    if request.kind == "effect":
        record["inputs"] = request.inputs_json
    record["format"] = request.encoder.name
    record["museforge_version"] = __version__
    record["models"] = json.dumps(
        [{"name": m.name, "version": m.version, "sha256": m.sha256} for m in models])
    # The copyright question: what the models learnt from, under which licence, and the credit owed.
    learnt = [{"model": m.name, "data": t.name, "licence": t.licence, "attribution": t.attribution}
              for m in models if m.manifest for t in m.manifest.training_data]
    if learnt:
        record["training_data"] = json.dumps(learnt)
    return record


def media_provenance(shared: Mapping[str, str], media: Media) -> dict[str, str]:
    """One artifact's provenance: the request's, its index and what the plugin noted (``x.``)."""
    record = {**shared, "index": str(media.index)}
    if media.part:
        record["part"] = media.part
    record.update({f"x.{k}": str(v) for k, v in media.metadata.items()})
    return record
