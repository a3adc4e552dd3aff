"""Plugin discovery and isolation, with throwaway plugin classes registered in-process."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
import pydantic
import pytest
from pydantic import BaseModel

import museforge
from museforge.client import Client
from museforge.config import Settings
from museforge.engine import hookspecs
from museforge.engine.catalogue import Engine
from museforge.engine.plugin_host import PluginHost
from museforge.testing import make_engine, serve
from tests.servers import ServerThread, inline_engine

ROOT = Path(__file__).resolve().parents[2]


class NoParams(BaseModel):
    pass


def solid(ctx: museforge.GenerationContext, params: NoParams, seed: int,
          count: int) -> Iterator[museforge.Media]:
    for i in range(count):
        yield museforge.Media("image", [[seed % 256 / 255.0]], i)


def generator(name: str) -> museforge.Generator:
    return museforge.Generator(name, "image", NoParams, solid, ("png",))


class Good:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(generator("test.solid"))


class Clashing:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(generator("test.solid"))  # already taken by Good
        register(generator("test.other"))


class RaisesHalfway:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(generator("test.half"))
        raise RuntimeError("registration blew up")


class Misspelled:
    @museforge.hookimpl
    def register_generators(self, register: museforge.RegisterGenerator) -> None:
        register(generator("test.misspelled"))

    @museforge.hookimpl
    def register_efects(self, register: museforge.RegisterEffect) -> None:  # the typo under test
        pass


class OptionalExtra:
    @museforge.hookimpl
    def register_generators(self, register: museforge.RegisterGenerator) -> None:
        register(generator("test.optional"))

    @museforge.hookimpl(optionalhook=True)
    def register_someday(self, register: Callable[[Any], None]) -> None:  # declared optional: fine
        pass


class WrongType:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register("not a generator")


def test_every_hook_has_a_one_line_docstring() -> None:
    for name in ("register_generators", "register_effects", "register_recipes",
                 "register_encoders"):
        doc = getattr(hookspecs, name).__doc__
        assert doc and len(doc.strip().splitlines()) == 1


def test_failures_are_isolated_and_reported() -> None:
    engine = inline_engine(("good", Good()), ("clash", Clashing()), ("half", RaisesHalfway()),
                           ("wrong", WrongType())).start()
    records = {r.name: r for r in engine.plugins()}
    assert records["good"].errors == [] and records["good"].generators == ["test.solid"]
    assert "already registered by plugin 'good'" in records["clash"].error
    assert records["clash"].generators == []  # a plugin that failed anywhere registers nothing
    assert "registration blew up" in records["half"].error
    assert records["half"].generators == []  # all or nothing
    assert "must be a Generator" in records["wrong"].error
    assert set(engine.generators) == {"test.solid"}


def test_duplicate_plugin_name_is_reported() -> None:
    engine = inline_engine(("same", Good()), ("same", Clashing())).start()
    assert any("already registered" in r.error for r in engine.plugins())


def test_import_failure_of_an_entry_point_is_reported() -> None:
    host = PluginHost(load_entrypoints=False)
    broken = metadata.EntryPoint(name="broken", value="museforge_no_such_module", group="museforge")
    host._load_entry_point(broken)
    record = host.records["broken"]
    assert "import failed: ModuleNotFoundError" in record.error


def test_broken_plugins_are_listed_over_grpc_and_in_health() -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    engine = inline_engine(("good", Good()), ("half", RaisesHalfway()))
    with ServerThread(engine=engine) as server, Client(server.address) as client:
        plugins = {p.name: p for p in client.plugins()}
        assert "registration blew up" in plugins["half"].error
        assert plugins["good"].error == ""
        assert client.health("museforge.plugin/half") == "NOT_SERVING"
        assert client.health("museforge.plugin/good") == "SERVING"
        assert client.health() == "SERVING"
        assert len(client.generate("test.solid", {}, seed=3).artifacts) == 1
        stub = health_pb2_grpc.HealthStub(client.channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(health_pb2.HealthCheckRequest(service="museforge.plugin/nope"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_allow_list_filters_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSEFORGE_PLUGINS", "somebody-else")
    from museforge.config import load_settings

    engine = Engine(load_settings()).start()
    assert "image.digits" not in engine.generators
    monkeypatch.setenv("MUSEFORGE_PLUGINS", "image")
    engine = Engine(load_settings()).start()
    assert "image.digits" in engine.generators


class WritesImages:
    @museforge.hookimpl
    def register_encoders(self, register: Callable[[Any], None]) -> None:
        for encoder in museforge.IMAGE_ENCODERS:
            register(encoder)


def test_the_same_encoder_from_two_plugins_is_no_conflict_but_another_one_is() -> None:
    jpeg = next(e for e in museforge.IMAGE_ENCODERS if e.name == "jpeg")

    class OwnJpeg:
        @museforge.hookimpl
        def register_encoders(self, register: Callable[[Any], None]) -> None:
            register(museforge.Encoder(name="jpeg", modality="image", media_type="image/jpeg",
                                       extension="jpg", encode=jpeg.encode))

    engine = inline_engine(("one", WritesImages()), ("two", WritesImages()), ("own", OwnJpeg())).start()
    records = {r.name: r for r in engine.plugins()}
    assert records["one"].errors == records["two"].errors == []
    assert engine.encoders["jpeg"] is jpeg and "png16" in records["one"].encoders
    assert "already registered by plugin 'one'" in records["own"].error


@pytest.mark.parametrize("plugin", ["effect", "image"])
def test_a_server_with_one_image_plugin_writes_every_image_format(monkeypatch: pytest.MonkeyPatch,
                                                                  plugin: str) -> None:
    monkeypatch.setenv("MUSEFORGE_PLUGINS", plugin)
    from museforge.config import load_settings

    engine = Engine(load_settings()).start()
    assert {"png", "png16", "jpeg", "webp", "exr"} <= set(engine.encoders)


def test_installed_plugins_can_be_ignored() -> None:
    engine = Engine(Settings(load_installed_plugins=False)).start()
    assert engine.generators == {}
    assert [r.name for r in engine.plugins()] == ["museforge.core"]
    assert "png" in engine.encoders


def test_core_never_names_the_builtin_plugins() -> None:
    core = Path(museforge.__file__).parent
    for path in core.glob("*.py"):
        text = path.read_text("utf-8")
        # Help texts may use image.digits as an example; code must not import or special-case it.
        assert "museforge.plugins" not in text and "plugins.image" not in text, path


def test_a_misspelled_hook_is_reported_with_the_plugin_and_the_known_hooks() -> None:
    with serve(make_engine([("good", Good()), ("typo", Misspelled()), ("extra", OptionalExtra())])) as served:
        records = {r.name: r for r in served.engine.plugins()}
        assert records["typo"].error == (
            "register failed: unknown hook 'register_efects' in plugin 'typo'; the known hooks are "
            "register_effects, register_encoders, register_generators, register_recipes"
        )
        # The whole plugin is refused, its correctly spelled hook too; the others keep serving.
        assert records["typo"].hooks == [] and records["typo"].generators == []
        assert set(served.engine.generators) == {"test.solid", "test.optional"}
        assert records["extra"].errors == [] and records["good"].errors == []
        listed = {p.name: p for p in served.client.plugins()}
        assert "'register_efects'" in listed["typo"].error and "'typo'" in listed["typo"].error
        assert served.client.health("museforge.plugin/typo") == "NOT_SERVING"
        assert len(served.client.generate("test.solid", {}, seed=3).artifacts) == 1


def test_trace_plugins_logs_every_hook_call_and_its_result(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="museforge.plugin_host")
    make_engine([("good", Good()), ("half", RaisesHalfway())]).start()
    assert not [r for r in caplog.records if "calling" in r.getMessage()]  # off by default
    make_engine([("good", Good()), ("half", RaisesHalfway())], trace_plugins=True).start()
    lines = [r.getMessage() for r in caplog.records]
    for expected in (
        "plugin museforge.core: calling register_encoders(register)",
        "plugin museforge.core: register_encoders registered ['png']",
        "plugin good: calling register_generators(register)",
        "plugin good: register_generators registered ['test.solid']",
        "plugin half: calling register_generators(register)",
        "plugin half: register_generators raised RuntimeError: registration blew up "
        "(registered ['test.half'], undone)",
    ):
        assert expected in lines, (expected, lines)


def test_the_builtin_plugins_use_only_the_public_api() -> None:
    internal = re.compile(r"^\s*(?:from|import) museforge\.(?!export\b|testing\b)", re.MULTILINE)
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "plugins").rglob("*.py")
                 if internal.search(path.read_text("utf-8"))]
    assert offenders == []
    for name in museforge.__all__:
        assert hasattr(museforge, name), name


def test_importing_museforge_stays_light() -> None:
    heavy = ("onnxruntime", "grpc", "torch")
    code = f"import sys, museforge; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_a_media_part_is_a_plain_name() -> None:
    assert museforge.Media("audio", None, 0, part="bass_2").part == "bass_2"
    for bad in ("../x", "a b", "stem.wav"):
        with pytest.raises(ValueError, match="plain name"):
            museforge.Media("audio", None, 0, part=bad)


class NoSchema(BaseModel):
    pick: Callable[[int], int] = abs  # a field type JSON Schema cannot state


class BadDefault(BaseModel):
    size: int = pydantic.Field(0, ge=8)


def declaring(**changes: Any) -> object:
    class Declares:
        @museforge.hookimpl
        def register_generators(self, register: Callable[[Any], None]) -> None:
            register(museforge.Generator(**{"name": "test.declared", "modality": "image",
                                            "parameters": NoParams, "generate": solid,
                                            "formats": ("png",), **changes}))
    return Declares()


@pytest.mark.parametrize(("changes", "problem"), [
    ({"parameters": NoSchema}, "parameters NoSchema have no JSON Schema"),
    ({"parameters": BadDefault}, "a default of BadDefault breaks its own rules: size = 0"),
    ({"parameters": dict}, "parameters must be a pydantic BaseModel class"),
    ({"generate": "not callable"}, "generate is not callable"),
    ({"formats": ("png", "gif")}, "declares format 'gif' with no image encoder registered"),
    ({"formats": ("wav",)}, "declares format 'wav' with no image encoder"),
])
def test_a_declaration_that_cannot_serve_fails_its_plugin_at_start(changes: dict[str, Any],
                                                                   problem: str) -> None:
    class Sound:  # an audio encoder, to show a format of the wrong kind is refused too
        @museforge.hookimpl
        def register_encoders(self, register: Callable[[Any], None]) -> None:
            register(museforge.Encoder("wav", "audio", "audio/wav", "wav", lambda media, provenance: b""))

    engine = inline_engine(("good", Good()), ("sound", Sound()), ("declares", declaring(**changes))).start()
    records = {r.name: r for r in engine.plugins()}
    assert problem in records["declares"].error and "test.declared" in records["declares"].error
    assert "test.declared" not in engine.generators and "test.solid" in engine.generators
    assert Engine.parameters_schema(engine.generators["test.solid"])  # listing still works


def test_an_encoder_a_failed_plugin_shared_stays_with_the_plugin_that_works() -> None:
    class WritesImagesThenFails(WritesImages):
        @museforge.hookimpl
        def register_generators(self, register: Callable[[Any], None]) -> None:
            raise RuntimeError("broken")

    engine = inline_engine(("a_fails", WritesImagesThenFails()), ("b_works", WritesImages())).start()
    records = {r.name: r for r in engine.plugins()}
    assert records["a_fails"].encoders == [] and "broken" in records["a_fails"].error
    assert {"jpeg", "exr"} <= set(records["b_works"].encoders) and "jpeg" in engine.encoders


def test_museforge_s_own_plugins_win_a_name_whatever_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    class Distribution:
        def __init__(self, name: str) -> None:
            self.name, self.version = name, "1"

    class Entry:
        def __init__(self, name: str, distribution: str, plugin: object) -> None:
            self.name, self.dist, self.plugin = name, Distribution(distribution), plugin

        def load(self) -> object:
            return self.plugin

    entries = [Entry("aaa_takeover", "studio-takeover", Clashing()), Entry("zz_builtin", "museforge", Good())]
    monkeypatch.setattr("museforge.engine.plugin_host.metadata.entry_points", lambda group: entries)
    engine = Engine(Settings(), PluginHost()).start()
    records = {r.name: r for r in engine.plugins()}
    assert records["zz_builtin"].generators == ["test.solid"] and not records["zz_builtin"].errors
    assert "already registered by plugin 'zz_builtin'" in records["aaa_takeover"].error


class NotGiven(BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    start: int = 0
    size: int = None  # type: ignore[assignment]  # the common "not given", never validated by pydantic


def test_a_none_default_means_not_given() -> None:
    engine = inline_engine(("declares", declaring(parameters=NotGiven))).start()
    [record] = [r for r in engine.plugins() if r.name == "declares"]
    assert record.errors == [] and "test.declared" in engine.generators
