"""A plugin's faults fail its own call (or, found at start, its own plugin), said plainly: the type
and message of what it raised, naming the generator, effect, encoder or field; the server serves on."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from pydantic import BaseModel, Field, field_validator

import museforge
from museforge.client import Client
from tests.servers import ServerThread, inline_engine


class NoParams(BaseModel):
    pass


def image(index: int = 0, value: float = 0.5, colorspace: str = "srgb") -> museforge.Media:
    return museforge.Media("image", np.full((4, 4, 3), value, np.float32), index, colorspace=colorspace)


def fine(ctx: museforge.GenerationContext, params: Any, seed: int, count: int) -> Iterator[Any]:
    for index in range(count):
        yield image(index)


def exits(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    raise SystemExit("usage: stripes [-h] WIDTH")  # what an argparse inside a plugin does
    yield  # pragma: no cover


def interrupted(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    raise KeyboardInterrupt("raised in a worker thread")
    yield  # pragma: no cover


def gives_up(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    yield image(0)
    raise museforge.Cancelled()  # nobody cancelled the call


class Mode(BaseModel):
    mode: str


def yields(ctx: museforge.GenerationContext, params: Mode, seed: int, count: int) -> Iterator[Any]:
    if params.mode == "+inf":
        yield museforge.Media("image", np.where(np.eye(4, dtype=bool), np.inf, 0.5).astype(np.float32), 0)
    elif params.mode == "-inf":
        yield museforge.Media("image", np.full((4, 4), -np.inf, np.float32), 0)
    elif params.mode == "bright linear":  # scene-linear light past 1: an EXR frame's, kept
        yield image(0, 4.0, "linear")
    elif params.mode == "progress in text":
        yield museforge.Progress("1", 1)
    elif params.mode == "negative progress":
        yield museforge.Progress(-1, 1)
    elif params.mode == "chunk of text":
        yield museforge.Chunk(0, "pcm", "audio/pcm", 0)
    if params.mode not in ("+inf", "-inf", "bright linear"):
        yield image(0)


def encoder(name: str, returns: object) -> museforge.Encoder:
    return museforge.Encoder(name, "image", "image/x-test", name, lambda media, provenance: returns)


class Validated(BaseModel):
    size: int = 8

    @field_validator("size")
    @classmethod
    def odd_bug(cls, size: int) -> int:
        if size == 13:
            raise RuntimeError("the size table has no row 13")
        if size == 14:
            raise SystemExit("a validator that exits")
        return size


def bad_check(params: Validated, count: int) -> list[tuple[str, str]]:
    raise RuntimeError("the check's own bug")


def effect_check(params: NoParams, inputs: Any) -> list[tuple[str, str]]:
    raise RuntimeError("the effect's check broke")


def apply(ctx: museforge.GenerationContext, params: NoParams, inputs: Any, seed: int) -> Iterator[Any]:
    yield image(0)


class Faulty:
    @museforge.hookimpl
    def register_encoders(self, register: Callable[[Any], None]) -> None:
        for made in (*museforge.IMAGE_ENCODERS, encoder("none", None), encoder("text", "not bytes")):
            register(made)

    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        for name, run in (("test.exits", exits), ("test.interrupted", interrupted),
                          ("test.gives_up", gives_up), ("test.fine", fine)):
            register(museforge.Generator(name, "image", NoParams, run, ("png", "none", "text")))
        register(museforge.Generator("test.yields", "image", Mode, yields, ("png", "exr")))
        register(museforge.Generator("test.validates", "image", Validated, fine, ("png",)))
        register(museforge.Generator("test.checks", "image", Validated, fine, ("png",), check=bad_check))
        register(museforge.Generator(
            "test.estimates", "image", Validated, fine, ("png",),
            estimate=lambda params, count: {"bytes": 1} if params.size == 9 else 1 / 0))
        register(museforge.Generator("test.answers_badly", "image", Validated, fine, ("png",),
                                     check=lambda params, count: "size is odd"))
        register(museforge.Generator("test.shapeless", "image", museforge.Variations, fine, ("png",),
                                     latent_shape=shapeless))

    @museforge.hookimpl
    def register_effects(self, register: Callable[[Any], None]) -> None:
        register(museforge.Effect("test.effect_checks", "image", NoParams, apply, ("png",),
                                  check=effect_check))
        register(museforge.Effect("test.effect_sizes", "image", NoParams, apply, ("png",),
                                  output_size=lambda params, inputs: (64.5, 64)))


def shapeless(params: Any) -> tuple[int, ...]:
    raise SystemExit("no shape today")


def test_a_latent_shape_that_exits_fails_its_call_naming_it(served: Client) -> None:
    # Asked when explicit draws are bounded: an exit there ended the call's thread, not as a fault.
    details = internal(lambda: served.generate("test.shapeless", {"draws": [{"seed": 1, "index": 3}]}))
    assert "generator test.shapeless failed: SystemExit: no shape today (in its latent_shape)" in details
    assert len(served.generate("test.fine", {}).artifacts) == 1


@pytest.fixture(scope="module")
def served() -> Iterator[Client]:
    engine = inline_engine(("faulty", Faulty()))
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=20) as client:
        yield client


def internal(call: Callable[[], object]) -> str:
    """The details of the INTERNAL a call ends with."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INTERNAL, caught.value
    return caught.value.details() or ""


@pytest.mark.parametrize(("name", "said"), [
    ("test.exits", "generator test.exits failed: SystemExit: usage: stripes [-h] WIDTH"),
    ("test.interrupted", "generator test.interrupted failed: KeyboardInterrupt: raised in a worker thread"),
])
def test_a_plugin_that_exits_fails_its_call_not_the_server(served: Client, name: str, said: str) -> None:
    assert said in internal(lambda: served.generate(name, {}))
    assert said in internal(lambda: list(served.stream_generate(name, {})))
    assert len(served.generate("test.fine", {}, count=2).artifacts) == 2  # the server serves on


def test_cancelled_raised_by_a_generator_nobody_cancelled_is_no_quiet_end(served: Client) -> None:
    said = internal(lambda: served.generate("test.gives_up", {}, count=3))  # was OK with 1 of 3
    assert "generator test.gives_up stopped: it raised Cancelled but its call was not cancelled" in said


@pytest.mark.parametrize(("fmt", "returned"), [("none", "NoneType"), ("text", "str")])
def test_an_encoder_that_returns_no_bytes_is_named(served: Client, fmt: str, returned: str) -> None:
    said = internal(lambda: served.generate("test.fine", {}, fmt=fmt))
    assert f"encoder {fmt} returned {returned}, not bytes" in said


@pytest.mark.parametrize("mode", ["+inf", "-inf"])
def test_infinite_pixels_are_refused_like_nan(served: Client, mode: str) -> None:
    said = internal(lambda: served.generate("test.yields", {"mode": mode}))
    assert "generator test.yields failed: ValueError: media 0: image data has infinite values" in said


def test_scene_linear_light_past_one_is_kept(served: Client) -> None:
    [artifact] = served.generate("test.yields", {"mode": "bright linear"}, fmt="exr").artifacts
    assert artifact.format == "exr"


@pytest.mark.parametrize(("mode", "said"), [
    ("progress in text", "yielded a Progress whose completed is str, not int"),
    ("negative progress", "yielded a Progress whose completed is -1, not 0 to 4294967295"),
    ("chunk of text", "yielded a Chunk whose data is str, not bytes"),
])
def test_a_progress_or_chunk_no_reply_can_carry_is_refused_on_both_paths(served: Client, mode: str,
                                                                         said: str) -> None:
    for call in (lambda: served.generate("test.yields", {"mode": mode}),
                 lambda: list(served.stream_generate("test.yields", {"mode": mode}))):
        details = internal(call)
        assert "generator test.yields failed: " in details and said in details


@pytest.mark.parametrize(("name", "parameters", "said"), [
    ("test.validates", {"size": 13}, "generator test.validates failed: RuntimeError: the size table has "
                                     "no row 13 (in its parameter model's validation)"),
    ("test.validates", {"size": 14}, "generator test.validates failed: SystemExit: a validator that exits"),
    ("test.checks", {}, "generator test.checks failed: RuntimeError: the check's own bug (in its check)"),
    ("test.estimates", {}, "generator test.estimates failed: ZeroDivisionError: division by zero (in its "
                           "estimate)"),
    ("test.estimates", {"size": 9}, "TypeError: estimate returned dict {'bytes': 1}, not an OutputEstimate"),
    ("test.answers_badly", {}, "TypeError: check returned str 'size is odd', not a list of (field, problem)"),
])
def test_a_plugin_s_fault_before_its_run_is_said_with_its_message(
        served: Client, name: str, parameters: dict[str, Any], said: str) -> None:
    details = internal(lambda: served.generate(name, parameters))
    assert said in details and "correlation id" in details
    assert len(served.generate("test.fine", {}).artifacts) == 1


def test_an_effect_s_check_that_raises_is_said_with_its_message(served: Client) -> None:
    png = museforge.encode_png(image(0), {})
    said = internal(lambda: served.apply_effect("test.effect_checks", [png]))
    assert "effect test.effect_checks failed: RuntimeError: the effect's check broke (in its check)" in said


def test_an_effect_s_output_size_that_answers_badly_is_said_with_what_it_returned(served: Client) -> None:
    png = museforge.encode_png(image(0), {})
    said = internal(lambda: served.apply_effect("test.effect_sizes", [png]))
    assert ("effect test.effect_sizes failed: TypeError: output_size returned tuple (64.5, 64), "
            "not (width, height) in whole numbers (in its output_size)") in said, said


def refuse(word: str) -> None:
    raise AssertionError(f"{word} is no JSON")


class Infinite(BaseModel):
    scale: float = math.inf


class NotANumber(BaseModel):
    gain: float = Field(1.0, le=math.nan)


def declares(**fields: Any) -> object:
    class Declares:
        @museforge.hookimpl
        def register_generators(self, register: Callable[[Any], None]) -> None:
            register(museforge.Generator(**{"name": "test.declared", "modality": "image",
                                            "parameters": NoParams, "generate": fine, "formats": ("png",),
                                            **fields}))
    return Declares()


def declares_effect(name: str) -> object:
    class Declares:
        @museforge.hookimpl
        def register_effects(self, register: Callable[[Any], None]) -> None:
            register(museforge.Effect(name, "image", NoParams, apply, ("png",)))
    return Declares()


def declares_encoder(extension: str) -> object:
    class Declares:
        @museforge.hookimpl
        def register_encoders(self, register: Callable[[Any], None]) -> None:
            register(museforge.Encoder("evil", "image", "image/png", extension,
                                       lambda media, provenance: b""))
    return Declares()


@pytest.mark.parametrize(("plugin", "said"), [
    (declares(timeout=-1.0), "generator test.declared: timeout must be a number of seconds above 0, "
                             "got -1.0"),
    (declares(timeout=math.nan), "generator test.declared: timeout must be a number of seconds above 0, "
                                 "got nan"),
    (declares(name="test/declared"), "generator name 'test/declared' must be dotted words with no '/'"),
    (declares(name="test.de:clared"), "generator name 'test.de:clared' must be dotted"),
    (declares(name="test.de clared"), "generator name 'test.de clared' must be dotted"),
    (declares(name=".test.declared"), "generator name '.test.declared' must be dotted"),
    (declares(name="test.declared."), "generator name 'test.declared.' must be dotted"),
    (declares_effect("test.ef/fect"), "effect name 'test.ef/fect' must be dotted"),
    (declares_encoder("../../evil"), "encoder evil: extension must be letters and digits"),
    (declares(parameters=Infinite), "generator test.declared: parameters Infinite state inf at "
                                    "properties.scale.default of their JSON Schema"),
    (declares(parameters=NotANumber), "parameters NotANumber state nan at properties.gain.maximum"),
])
def test_a_declaration_that_cannot_work_fails_its_plugin_at_start_naming_the_field(plugin: object,
                                                                                   said: str) -> None:
    engine = inline_engine(("faulty", Faulty()), ("declares", plugin))
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=20) as client:
        listed = {p.name: p for p in client.plugins()}
        assert said in listed["declares"].error and listed["faulty"].error == ""
        assert client.health("museforge.plugin/declares") == "NOT_SERVING"
        for info in client.generators():  # every schema listed is JSON a browser's JSON.parse reads
            json.loads(info.parameters_schema, parse_constant=refuse)
        assert "test.declared" not in {g.name for g in client.generators()}
        assert len(client.generate("test.fine", {}).artifacts) == 1
