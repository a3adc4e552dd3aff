"""What a plugin declares is checked when it registers, so one plugin's slip fails that plugin
alone, naming it, the declaration and the field, rather than every listing or every call; and what
its runs yield is held to what the docs promise (an effect yields something, parts are short
names, sRGB floats are 0 to 1)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

import museforge
from museforge.client import Client
from museforge.client_errors import field_violations
from tests.core.test_plugin_faults import declares
from tests.servers import ServerThread, inline_engine


class NoParams(BaseModel):
    pass


class Ordered(BaseModel):
    low: float = 0.1
    high: float = 0.2

    @model_validator(mode="after")
    def high_above_low(self) -> Ordered:
        if self.high < self.low:
            raise ValueError("high must be at least low")
        return self


class Disordered(Ordered):
    low: float = 0.2
    high: float = 0.1


class Aliased(BaseModel):
    width: int = Field(64, alias="Width", ge=8, le=256)


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)
    tile_size: int = 64


class Mode(BaseModel):
    mode: str = "fine"


def pixels(value: float | np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.float32), (4, 4, 3)).copy()


def fine(ctx: museforge.GenerationContext, params: Any, seed: int, count: int) -> Iterator[Any]:
    for index in range(count):
        yield museforge.Media("image", pixels(0.5), index)


def yields(ctx: museforge.GenerationContext, params: Mode, seed: int, count: int) -> Iterator[Any]:
    if params.mode == "long part":
        yield museforge.Media("image", pixels(0.5), 0, part="x" * 300)
    elif params.mode == "0-255":  # the common slip: bytes' range in floats
        yield museforge.Media("image", pixels(np.linspace(0, 255, 4)[:, None, None]), 0)
    elif params.mode == "-1 to 1":  # a tanh output not mapped to 0-1
        yield museforge.Media("image", pixels(np.linspace(-1, 1, 4)[:, None, None]), 0)
    elif params.mode == "rounding":  # a resampler's overshoot past the ends is tolerated
        yield museforge.Media("image", pixels(np.linspace(-0.02, 1.03, 4)[:, None, None]), 0)
    yield museforge.Media("image", pixels(0.5), 0, part="alpha_pass" if params.mode == "rounding" else "")


def nothing(ctx: museforge.GenerationContext, params: NoParams, inputs: Any, seed: int) -> Iterator[Any]:
    yield museforge.Progress(1, 1, "thinking")


class Plugin:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.fine", "image", NoParams, fine, ("png",)))
        register(museforge.Generator("test.ordered", "image", Ordered, fine, ("png",)))
        register(museforge.Generator("test.yields", "image", Mode, yields, ("png",)))

    @museforge.hookimpl
    def register_effects(self, register: Callable[[Any], None]) -> None:
        register(museforge.Effect("test.nothing", "image", NoParams, nothing, ("png",)))


@pytest.fixture(scope="module")
def served() -> Iterator[Client]:
    engine = inline_engine(("fine", Plugin()))
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=20) as client:
        yield client


def failure(call: Callable[[], object], code: grpc.StatusCode) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == code, caught.value
    return caught.value


def test_a_model_level_rule_is_named_parameters(served: Client) -> None:
    error = failure(lambda: served.generate("test.ordered", {"low": 0.5}), grpc.StatusCode.INVALID_ARGUMENT)
    [(field, problem)] = field_violations(error)
    assert field == "parameters" and "high must be at least low" in problem, (field, problem)


def test_an_effect_that_yields_nothing_fails_its_call_naming_it(served: Client) -> None:
    png = museforge.encode_png(museforge.Media("image", pixels(0.5), 0), {})
    for call in (lambda: served.apply_effect("test.nothing", [png]),
                 lambda: list(served.stream_apply_effect("test.nothing", [png]))):
        said = failure(call, grpc.StatusCode.INTERNAL).details() or ""
        assert "effect test.nothing failed: ValueError: yielded no artifacts" in said, said


@pytest.mark.parametrize(("mode", "said"), [
    ("long part", "a media part is a plain name of at most 64 characters"),
    ("0-255", "media 0: sRGB float image data spans 0 to 255: looks like 0-255 data; scale to 0-1"),
    ("-1 to 1", "media 0: sRGB float image data spans -1 to 1: looks like -1 to 1 data; scale to 0-1"),
])
def test_media_no_client_could_use_fail_the_call_naming_the_generator(served: Client, mode: str,
                                                                      said: str) -> None:
    error = failure(lambda: served.generate("test.yields", {"mode": mode}), grpc.StatusCode.INTERNAL)
    details = error.details() or ""
    assert "generator test.yields failed: ValueError: " in details and said in details, details


def test_floats_a_little_past_the_ends_are_still_encoded(served: Client) -> None:
    assert len(served.generate("test.yields", {"mode": "rounding"}).artifacts) == 2


def declares_effect(**fields: Any) -> object:
    class Declares:
        @museforge.hookimpl
        def register_effects(self, register: Callable[[Any], None]) -> None:
            register(museforge.Effect(**{"name": "test.declared", "modality": "image", "parameters": NoParams,
                                         "apply": nothing, "formats": ("png",), **fields}))
    return Declares()


KNOWN = "png, png16, jpeg, webp, exr, mp4, mov, mkv, webm, wav, flac, ogg, mp3"


@pytest.mark.parametrize(("plugin", "said"), [
    (declares(max_count=-5), "generator test.declared: max_count must be a whole number from 1 to "
                             "4294967295 (None: the server's max_count), got -5"),
    (declares(max_count=0), "max_count must be a whole number from 1 to 4294967295"),
    (declares(max_count=8.5), "generator test.declared: max_count must be a whole number from 1 to "
                              "4294967295 (None: the server's max_count), got 8.5"),
    (declares(max_count="8"), "max_count must be a whole number from 1 to 4294967295 (None: the "
                              "server's max_count), got '8'"),
    (declares(max_count=2**32), "max_count must be a whole number from 1 to 4294967295"),
    (declares(description=123), "generator test.declared: description must be text, got int 123"),
    (declares(formats="png"), "generator test.declared: formats must be a tuple of names, e.g. ('png',), "
                              "got 'png'"),
    (declares(formats=("png", 5)), "generator test.declared: formats must be a tuple of names"),
    (declares(unrendered_formats="mid"), "generator test.declared: unrendered_formats must be a tuple"),
    (declares(check="size"), "generator test.declared: check must be a function or None, got 'size'"),
    (declares(timeout=True), "generator test.declared: timeout must be a number of seconds above 0"),
    (declares_effect(max_inputs=2**40), "effect test.declared: max_inputs must be a whole number from 1 "
                                        "to 4294967295, got 1099511627776"),
    (declares_effect(min_inputs="1"), "effect test.declared: min_inputs must be a whole number from 1 "
                                      "to 4294967295, got '1'"),
    (declares_effect(min_inputs=2), "effect test.declared: need 1 <= min_inputs <= max_inputs"),
    (declares_effect(description=None), "effect test.declared: description must be text, got NoneType"),
    (declares_effect(output_size=(64, 64)), "effect test.declared: output_size must be a function or None"),
    (declares_effect(input_formats=("png", "jpg")),
     f"effect test.declared declares input format 'jpg' that no decoder reads (known: {KNOWN})"),
    (declares_effect(input_formats=("gif",)),
     f"effect test.declared declares input format 'gif' that no decoder reads (known: {KNOWN})"),
    (declares_effect(input_formats=()), f"effect test.declared: declare at least one input format (known: "
                                        f"{KNOWN})"),
    (declares_effect(input_formats="png"), "effect test.declared: input_formats must be a tuple of names"),
    (declares(parameters=Aliased), "generator test.declared: parameters Aliased: field width has the alias "
                                   "'Width', which requests could not use: rename the field to the name "
                                   "requests send, with no alias"),
    (declares(parameters=Camel), "parameters Camel: field tile_size has the alias 'tileSize'"),
    (declares(parameters=Disordered), "generator test.declared: the defaults of Disordered break its own "
                                      "rules: high must be at least low"),
])
def test_a_declaration_no_listing_or_call_could_use_fails_only_its_plugin(plugin: object, said: str) -> None:
    engine = inline_engine(("fine", Plugin()), ("declares", plugin))
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=20) as client:
        listed = {p.name: p for p in client.plugins()}
        assert said in listed["declares"].error, listed["declares"].error
        assert listed["fine"].error == ""
        assert "test.declared" not in {g.name for g in client.generators()}  # the listings still answer
        assert "test.declared" not in {e.name for e in client.effects()}
        assert len(client.generate("test.fine", {}).artifacts) == 1
