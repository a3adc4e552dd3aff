"""Latent sampling shared by generators: seeds, independent draws and walks between seeds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema

from .generator import LimitExceeded, request_count
from .user_ids import MAX_USER_CHARS, normal_user, user_problem

MAX_FRAMES = 120
DEFAULT_FRAMES = 8
MAX_DRAW_INDEX = 1023  # a draw names one of the first 1,024 of its seed's stream
MAX_DRAW_DEPTH = 8  # a draw near a draw near a draw ...: at most this many levels


EXACT_NUMBERS = 2**53  # past this a JSON number (a double, as Struct holds it) is not every integer


def _exact_seed(value: object) -> object:
    """A seed arriving as a JSON number past 2^53 has already been rounded to a neighbour: refused
    rather than used (6739438659817262002 arrived as ...080, another picture, without a word)."""
    if isinstance(value, float) and abs(value) > EXACT_NUMBERS:
        raise ValueError(f"a seed above 2^53 ({EXACT_NUMBERS:,}) does not survive as a JSON number "
                         f"(this one arrived as {value:.0f}): send its decimal text, in quotes")
    return value


# A seed as a number or its decimal text, and the schema says so.
SeedNumber = Annotated[int, BeforeValidator(_exact_seed), WithJsonSchema({"anyOf": [
    {"type": "integer", "minimum": 0, "maximum": EXACT_NUMBERS},
    {"type": "string", "pattern": "^[0-9]{1,20}$"}]})]


class Draw(BaseModel):
    """One latent, named exactly: draw ``index`` of ``seed``'s Gaussian stream, scaled by
    ``truncation``, or, with ``near``, that noise mixed into another draw (a variation on it).

    With ``near`` the latent is ``sqrt(1 - spread^2) * near + spread * noise``: spread 1 is
    a fresh draw, small spreads stay close to ``near``, and the mix keeps the size a Gaussian
    draw has. Steering (``preference``) writes these; sending them back regenerates exactly.
    """

    model_config = ConfigDict(extra="forbid")

    seed: SeedNumber = Field(
        ..., ge=0, le=2**64 - 1, description="The seed whose stream the noise comes from "
        "(a number, or its decimal text: provenance writes text, which JSON keeps exact).")
    index: int = Field(0, ge=0, le=MAX_DRAW_INDEX, description="Which draw of that stream (0: the first).")
    truncation: float = Field(1.0, gt=0.0, le=1.0, description="Scale of the noise (see `truncation`).")
    near: Draw | None = Field(None, description="The draw this one is a variation on.")
    spread: float = Field(
        1.0, gt=0.0, le=1.0, description="With `near`: how far from it, 1 being a fresh draw.")

    @field_serializer("seed", when_used="json")
    def _seed_as_text(self, seed: int) -> str:
        # Parameters travel as JSON numbers (doubles) in a Struct: seeds past 2^53 would not survive.
        return str(seed)

    def root(self) -> Draw:
        """The innermost draw of its ``near`` chain: a variation keeps its origin's other choices."""
        return self if self.near is None else self.near.root()

    def depth(self) -> int:
        return 1 + (self.near.depth() if self.near is not None else 0)

    def cost(self) -> int:
        """Draws of the shape it takes to compute (a stream is drawn up to its index)."""
        return self.index + 1 + (self.near.cost() if self.near is not None else 0)

    def latent(self, shape: tuple[int, ...]) -> np.ndarray:
        stream = np.random.default_rng(self.seed).standard_normal((self.index + 1, *shape))
        noise = _truncated(stream[self.index], self.truncation)
        if self.near is None:
            return noise
        keep = np.float32(np.sqrt(1.0 - self.spread**2))
        return (keep * self.near.latent(shape) + np.float32(self.spread) * noise).astype(np.float32)


class Variations(BaseModel):
    """Parameters every latent generator shares: the truncation of its draws, and morph
    sequences between two seeds (inspiration sheets, film morphs)."""

    truncation: float = Field(
        1.0, gt=0.0, le=1.0,
        description="Scale of the Gaussian draws the network starts from, above 0 and at most 1: 1 is "
        "the distribution it was trained on; lower values trade variety for outputs closer to the "
        "typical one of what was asked (tiles judged the kind asked for more often, props nearer "
        "their family's usual shape). 1 leaves every output as it was.",
    )

    interpolate_to: SeedNumber | None = Field(
        None, ge=0, le=2**64 - 1,
        description="A second seed: walk smoothly from `seed` to this one over `frames` frames.",
    )
    frames: int = Field(
        DEFAULT_FRAMES, ge=2, le=MAX_FRAMES,
        description="Frames in a walk (with interpolate_to), ends included."
    )
    preference: str | None = Field(
        None, min_length=1, max_length=MAX_USER_CHARS,
        description="A user (of your API key, as in feedback): draw toward what they rated highly. "
        "The server scores many candidate draws with a model of the user's ratings of this "
        "generator and keeps the best that stay apart; the artifacts' provenance names the "
        "draws chosen (`draws`), so they regenerate exactly. A user with no ratings yet gets "
        "the seed's own draws.",
    )
    draws: list[Draw] | None = Field(
        None, min_length=1,
        description="The exact latent of every output, one per count (as steering records them); "
        "`seed` then no longer sets the latents.",
    )

    @field_validator("preference")
    @classmethod
    def _a_user_id(cls, preference: str | None) -> str | None:
        """A user as feedback names them (NFC), or refused as feedback would refuse the id."""
        if preference is None:
            return None
        preference = normal_user(preference)
        problem = user_problem(preference)
        if problem:
            raise ValueError(f"a user id {problem}")
        return preference

    @field_validator("draws")
    @classmethod
    def _shallow_draws(cls, draws: list[Draw] | None) -> list[Draw] | None:
        for draw in draws or ():
            if draw.depth() > MAX_DRAW_DEPTH:
                raise ValueError(f"a draw nests {draw.depth()} levels of `near`; at most {MAX_DRAW_DEPTH}")
        return draws

    @model_validator(mode="after")
    def _one_way_to_draw(self, info: ValidationInfo) -> Variations:
        if self.interpolate_to is not None and (self.draws is not None or self.preference is not None):
            raise LimitExceeded("a walk (interpolate_to) is drawn from its two seeds; it takes neither "
                                "preference nor draws (parameters.interpolate_to)",
                                ("parameters.interpolate_to", "parameters.preference", "parameters.draws"))
        if self.draws is not None and self.preference is not None:
            raise LimitExceeded("give preference (the server chooses the draws) or draws, not both "
                                "(parameters.preference, parameters.draws)",
                                ("parameters.preference", "parameters.draws"))
        asked_frames = "frames" in self.model_fields_set and self.frames != DEFAULT_FRAMES
        if self.interpolate_to is None and asked_frames:
            # Left at its default it is harmless (forms send every default); any other value
            # says the caller meant a walk and forgot its second seed.
            raise LimitExceeded(f"frames ({self.frames}) is the length of a walk: it needs interpolate_to, "
                                "the seed to walk to (parameters.frames)",
                                ("parameters.frames", "parameters.interpolate_to"))
        count = request_count(info)
        if self.draws is not None and len(self.draws) != count:
            raise LimitExceeded(f"draws names {len(self.draws)} latents for a count of {count}: one per "
                                "output (parameters.draws, count)", ("parameters.draws", "count"))
        return self

    def images_per_item(self) -> int:
        return self.frames if self.interpolate_to is not None else 1


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of two Gaussian draws, treated as one vector each.

    Unlike a straight line, it keeps the norm a Gaussian draw has, so the middle frames
    look like samples rather than washed-out averages.
    """
    flat_a, flat_b = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    cos = np.dot(flat_a, flat_b) / (np.linalg.norm(flat_a) * np.linalg.norm(flat_b))
    omega = float(np.arccos(np.clip(cos, -1.0, 1.0)))
    if omega < 1e-6:
        mixed = (1.0 - t) * flat_a + t * flat_b
    else:
        mixed = (np.sin((1.0 - t) * omega) * flat_a + np.sin(t * omega) * flat_b) / np.sin(omega)
    return mixed.reshape(a.shape).astype(a.dtype)


def latents(
    shape: tuple[int, ...], seed: int, count: int, variations: Variations
) -> Iterator[tuple[int, np.ndarray]]:
    """(output index, latent) pairs: ``count`` draws, or ``count`` walks of ``frames`` frames.

    Every draw is scaled by ``variations.truncation`` (the "truncation trick": draws pulled
    toward the mean give more typical samples); a walk's ends are both scaled, so it stays
    a walk between two truncated draws.
    """
    if variations.draws is not None:
        for index, draw in enumerate(variations.draws[:count]):
            yield index, draw.latent(shape)
        return
    first = _truncated(np.random.default_rng(seed).standard_normal((count, *shape)), variations.truncation)
    if variations.interpolate_to is None:
        yield from enumerate(first)
        return
    last = _truncated(np.random.default_rng(variations.interpolate_to).standard_normal((count, *shape)),
                      variations.truncation)
    frames = variations.frames
    for item in range(count):
        for frame in range(frames):
            yield item * frames + frame, slerp(first[item], last[item], frame / (frames - 1))


def item_choices(seed: int, count: int, variations: Variations, options: int) -> np.ndarray:
    """A random choice among ``options`` for every item (a tile's look, an icon's category when
    none was asked), from the seed's own stream ``[seed, 1]``.

    With ``draws``, item i's choice is the one its draw's root made as item ``root.index`` of
    its own seed: a draw of the seed's stream chooses as that request did, and a variation on
    a liked artifact keeps its look while its latent moves.
    """
    def drawn(stream_seed: int, size: int) -> np.ndarray:
        return np.random.default_rng([stream_seed, 1]).integers(0, options, size=size, dtype=np.int64)

    if variations.draws is None:
        return drawn(seed, count)
    roots = [draw.root() for draw in variations.draws[:count]]
    return np.array([drawn(root.seed, root.index + 1)[root.index] for root in roots], dtype=np.int64)


def latent_of(shape: tuple[int, ...], seed: int, index: int, variations: Variations) -> np.ndarray | None:
    """The latent artifact ``index`` of a request was made from (None: the request had fewer)."""
    count = index // variations.images_per_item() + 1
    for found, latent in latents(shape, seed, count, variations):
        if found == index:
            return latent
    return None


def draw_of(seed: int, index: int, variations: Variations) -> Draw | None:
    """Artifact ``index``'s latent as a Draw, or None for a walk's frame (drawn from two seeds)."""
    if variations.draws is not None:
        return variations.draws[index] if index < len(variations.draws) else None
    if variations.interpolate_to is not None or index > MAX_DRAW_INDEX:
        return None
    return Draw(seed=seed, index=index, truncation=variations.truncation)


def _truncated(draws: np.ndarray, truncation: float) -> np.ndarray:
    # float32 x float32 stays float32, and x 1.0 is exact: at 1 the same seed keeps its pixels.
    return draws.astype(np.float32) * np.float32(truncation)
