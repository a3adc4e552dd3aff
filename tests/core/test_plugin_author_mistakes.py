"""A first plugin's slips that used to pass unseen or be said in another's words: a hook that returns
its objects, a hook function left unmarked, an entry point to a module with no hooks, a name
registered twice, a `generate` with no `yield`, an image of no pixels. Each names the plugin or
generator and what to do; the rest serves on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from pydantic import BaseModel

import museforge
from museforge.client import Client
from museforge.testing import make_engine, serve


class NoParams(BaseModel):
    pass


def fine(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    for index in range(count):
        yield museforge.Media("image", np.zeros((4, 4), np.uint8), index)


def no_yield(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Any:
    return museforge.Media("image", np.zeros((4, 4), np.uint8), 0)


def forgot_return(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Any:
    np.zeros((4, 4), np.uint8)  # made, never yielded


def empty(shape: tuple[int, ...]) -> Callable[..., Iterator[Any]]:
    def run(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
        for index in range(count):
            yield museforge.Media("image", np.zeros(shape, np.uint8), index)
    return run


def generator(name: str, run: Callable[..., Any] = fine) -> museforge.Generator:
    return museforge.Generator(name, "image", NoParams, run, ("png",))


class Good:
    @museforge.hookimpl
    def register_generators(self, register: museforge.RegisterGenerator) -> None:
        register(generator("test.fine"))
        register(generator("test.no_yield", no_yield))
        register(generator("test.forgot_return", forgot_return))
        register(generator("test.no_pixels", empty((0, 0, 3))))
        register(generator("test.no_rows", empty((0, 8))))


class Returns:
    @museforge.hookimpl
    def register_generators(self, register: museforge.RegisterGenerator) -> Any:
        register(generator("test.returns_registered"))
        return [generator("test.returned")]


class Unmarked:
    @museforge.hookimpl
    def register_generators(self, register: museforge.RegisterGenerator) -> None:
        register(generator("test.unmarked_half"))

    def register_effects(self, register: museforge.RegisterEffect) -> None:  # the decorator forgotten
        pass


class Hookless:  # what an entry point naming the wrong module of a package loads
    def helper(self) -> None:
        pass


class Twice:
    @museforge.hookimpl
    def register_generators(self, register: museforge.RegisterGenerator) -> None:
        register(generator("test.twice"))
        register(generator("test.twice"))


@pytest.fixture(scope="module")
def served() -> Iterator[Any]:
    plugins = [("good", Good()), ("returns", Returns()), ("unmarked", Unmarked()), ("hookless", Hookless()),
               ("twice", Twice())]
    with serve(make_engine(plugins)) as server:
        yield server


def test_a_plugin_that_would_serve_nothing_it_meant_to_fails_naming_what_to_do(served: Any) -> None:
    listed = {p.name: p.error for p in served.client.plugins()}
    assert listed["returns"] == (
        "register_generators failed: TypeError: it returned list; a hook calls register(obj) once per object "
        "and returns nothing (what it returns is not registered)")
    assert listed["unmarked"] == ("register failed: register_effects is not marked @museforge.hookimpl, "
                                  "so it would never be called")
    assert listed["hookless"].startswith("register failed: it implements none of the hooks (register_")
    assert "@museforge.hookimpl, in the module its entry point names" in listed["hookless"]
    assert listed["twice"] == ("generator 'test.twice' is already registered by this plugin: "
                               "register each name once")
    assert listed["good"] == ""
    for name in ("returns", "unmarked", "hookless", "twice"):
        assert served.client.health(f"museforge.plugin/{name}") == "NOT_SERVING", name
    # Nothing of a failed plugin is served, not the part it registered; the others are.
    assert not {"test.returns_registered", "test.returned", "test.unmarked_half", "test.twice"} & set(
        served.engine.generators)
    assert len(served.client.generate("test.fine", {}, seed=1).artifacts) == 1


def internal(client: Client, name: str) -> str:
    with pytest.raises(grpc.RpcError) as info:
        client.generate(name, {}, seed=1)
    assert info.value.code() == grpc.StatusCode.INTERNAL, info.value.details()
    return info.value.details() or ""


@pytest.mark.parametrize("name, said", [
    ("test.no_yield", "failed: TypeError: generate returned Media, not an iterator of events: yield each "
                      "Media and Progress (a generate with `yield` in it returns one)"),
    ("test.forgot_return", "failed: TypeError: generate returned NoneType, not an iterator of events"),
    ("test.no_pixels", "failed: ValueError: media 0: an image has 1x1 pixels at least, got shape (0, 0, 3)"),
    ("test.no_rows", "failed: ValueError: media 0: an image has 1x1 pixels at least, got shape (0, 8)"),
])
def test_a_generator_s_slip_is_said_in_its_own_words(served: Any, name: str, said: str) -> None:
    details = internal(served.client, name)
    assert f"generator {name} {said}" in details and "correlation id" in details, details
    assert len(served.client.generate("test.fine", {}, seed=1).artifacts) == 1
