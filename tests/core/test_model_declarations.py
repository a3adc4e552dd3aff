"""A model name is one model: a plugin declaring a name another declaration serves differently fails
to load, naming both; a model that cannot serve is said by its plugin's row and health, and by every
message about it; a slow plugin import is named in the log."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from onnx import TensorProto, helper
from pydantic import BaseModel

import museforge
from museforge.client import Client
from museforge.config import Settings
from museforge.engine import plugin_host
from museforge.engine.catalogue import Engine
from museforge.engine.plugin_host import PluginHost
from tests.core.test_installed_plugin_faults import install
from tests.servers import ServeProcess, ServerThread, inline_engine

WIDTH = 16


class NoParams(BaseModel):
    pass


class Wide(BaseModel):
    width: int = WIDTH


def write_gain(directory: Path, version: int, gain: float, input_name: str = "x") -> str:
    """Version ``version`` of y = gain * x (x: batch x 16) in the Triton layout; its sha256.
    ``input_name`` other than "x" makes a manifest that does not describe the graph."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTH])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", WIDTH])
    k = helper.make_tensor("k", TensorProto.FLOAT, [], [gain])
    graph = helper.make_graph([helper.make_node("Mul", ["k", "x"], ["y"])], "gain", [x], [y], [k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    target = directory / str(version)
    target.mkdir(parents=True)
    (target / "model.onnx").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (target / "manifest.json").write_text(json.dumps({
        "name": directory.name, "version": version, "opset": 17, "ir_version": 8, "sha256": digest,
        "inputs": [{"name": input_name, "dtype": "float32", "shape": ["batch", WIDTH]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", WIDTH]}],
    }))
    return digest


def runs(model: str) -> Callable[..., Iterator[museforge.Media]]:
    def generate(ctx: museforge.GenerationContext, params: Wide, seed: int,
                 count: int) -> Iterator[museforge.Media]:
        y = ctx.infer(model, {"x": np.ones((1, params.width), np.float32)})["y"]
        for index in range(count):
            yield museforge.Media("image", np.repeat(y, 4, axis=0).clip(0, 1), index)
    return generate


class Declares:
    """A throwaway plugin: one generator per (generator name, model source)."""

    def __init__(self, *generators: tuple[str, museforge.ModelSource], recipe: Path | None = None) -> None:
        self.generators = generators
        self.recipe = recipe

    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        for name, source in self.generators:
            register(museforge.Generator(name, "image", Wide, runs(source.name), ("png",), models=(source,)))

    @museforge.hookimpl
    def register_recipes(self, register: Callable[[Any], None]) -> None:
        if self.recipe is not None:
            register(museforge.Recipe("studio.gain", "a gain", "studio_gain.recipe:build", self.recipe))


def details(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details() or ""


def used_model(reply: Any) -> str:
    return " ".join(reply.artifacts[0].metadata.values())


def test_a_model_name_served_from_another_directory_fails_the_later_plugin(tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "first" / "gain", tmp_path / "second" / "gain"
    first_sha, second_sha = write_gain(first_dir, 1, 0.25), write_gain(second_dir, 1, 0.75)
    first = Declares(("bad.run", museforge.ModelSource("studio.gain", first_dir)))
    second = Declares(("studio.probe", museforge.ModelSource("studio.gain", second_dir)))
    engine = inline_engine(("bad_pin", first), ("studio_probe", second))
    with ServerThread(engine=engine) as server, Client(server.address, timeout=60) as client:
        listed = {p.name: p for p in client.plugins()}
        assert listed["bad_pin"].error == "" and listed["bad_pin"].generators == ["bad.run"]
        error = listed["studio_probe"].error
        assert "model 'studio.gain'" in error and "'bad_pin'" in error and "'studio_probe'" in error
        assert str(first_dir) in error and str(second_dir) in error
        assert listed["studio_probe"].generators == []
        assert client.health("museforge.plugin/studio_probe") == "NOT_SERVING"
        assert client.health("museforge.plugin/bad_pin") == "SERVING"
        assert first_sha in used_model(client.generate("bad.run", {}))
        assert second_sha not in used_model(client.generate("bad.run", {}))
        code, _ = details(lambda: client.generate("studio.probe", {}))
        assert code == grpc.StatusCode.NOT_FOUND


def test_a_plugin_declaring_a_built_in_model_name_fails_and_the_built_in_serves(tmp_path: Path) -> None:
    mine = tmp_path / "digits"
    write_gain(mine, 1, 0.5)
    host = PluginHost(allow=["image"])
    host.add(Declares(("mine.digits", museforge.ModelSource("image.digits", mine))), "mine")
    with ServerThread(engine=Engine(Settings(address="127.0.0.1:0", plugins=["image"]), host)) as server, \
            Client(server.address, timeout=60) as client:
        listed = {p.name: p for p in client.plugins()}
        assert "model 'image.digits'" in listed["mine"].error and "'image'" in listed["mine"].error
        assert str(mine) in listed["mine"].error
        assert client.generate("image.digits", {"digit": 3}).artifacts


@pytest.mark.parametrize("second", [{"version": 1}, {"intra_op_threads": 1}])
def test_a_second_declaration_asking_another_version_or_threads_is_refused(tmp_path: Path,
                                                                           second: dict[str, int]) -> None:
    directory = tmp_path / "two"
    write_gain(directory, 1, 0.25)
    newest = write_gain(directory, 2, 0.75)
    plugin = Declares(("a.run", museforge.ModelSource("bad.pin.two", directory)),
                      ("b.run", museforge.ModelSource("bad.pin.two", directory, **second)))
    with ServerThread(engine=inline_engine(("pins", plugin),
                                           ("alike", Declares(("c.run", museforge.ModelSource(
                                               "bad.pin.two", directory)))))) as server, \
            Client(server.address, timeout=60) as client:
        listed = {p.name: p for p in client.plugins()}
        error = listed["pins"].error
        assert "model 'bad.pin.two'" in error and "'a.run'" in error and "'b.run'" in error
        assert ("version 1" if "version" in second else "intra_op_threads=1") in error
        # The same declaration from another plugin shares the model.
        assert listed["alike"].error == ""
        assert newest in used_model(client.generate("c.run", {}))


def test_a_model_that_cannot_serve_is_said_by_its_plugin_and_every_message(tmp_path: Path) -> None:
    missing = tmp_path / "gain"  # not exported yet
    mismatched = tmp_path / "other"
    write_gain(mismatched, 1, 0.5, input_name="input")
    fine = tmp_path / "fine"
    write_gain(fine, 1, 0.5)
    engine = inline_engine(
        ("stripes", Declares(("studio.stripes", museforge.ModelSource("studio.gain", missing)),
                             recipe=missing)),
        ("other", Declares(("studio.other", museforge.ModelSource("studio.other", mismatched)))),
        ("narrow", Declares(("studio.narrow", museforge.ModelSource("studio.fine", fine)))))
    with ServerThread(engine=engine) as server, Client(server.address, timeout=60) as client:
        code, said = details(lambda: client.generate("studio.stripes", {}))
        assert code == grpc.StatusCode.UNAVAILABLE
        assert "model studio.gain: no directory gain; it is to hold <version>/model.onnx" in said
        assert "`museforge export studio.gain`" in said
        code, said = details(lambda: client.generate("studio.other", {}))
        assert code == grpc.StatusCode.UNAVAILABLE
        assert "model studio.other: version 1: manifest.json does not describe model.onnx" in said
        _, said = details(lambda: client.generate("studio.narrow", {"width": 8}))
        assert "model studio.fine v1: x: shape (1, 8) does not fit" in said
        assert client.health("museforge.plugin/stripes") == "NOT_SERVING"
        assert client.health("museforge.plugin/other") == "NOT_SERVING"
        assert client.health("museforge.plugin/narrow") == "SERVING"

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "museforge.cli", *args, "--server", server.address],
                                  capture_output=True, text=True, timeout=120)

        listing = cli("plugins")
        assert listing.returncode == 1, listing.stdout + listing.stderr
        row = next(line for line in listing.stdout.splitlines() if line.startswith("stripes "))
        assert "DEGRADED: model studio.gain cannot serve" in row and "museforge export studio.gain" in row
        assert "ok" in next(line for line in listing.stdout.splitlines() if line.startswith("narrow "))
        health = cli("health", "--service", "museforge.plugin/stripes")
        assert health.returncode == 1 and health.stdout.strip() == "NOT_SERVING"
        assert "model studio.gain cannot serve" in health.stderr


def test_the_banner_counts_models_that_failed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    install(site, "studio-missing", {"missing": "studio_missing"}, {"studio_missing": f'''
        import museforge
        from pathlib import Path
        from pydantic import BaseModel

        class NoParams(BaseModel):
            pass

        def generate(ctx, params, seed, count):
            yield from ()

        @museforge.hookimpl
        def register_generators(register):
            register(museforge.Generator("studio.missing", "image", NoParams, generate, ("png",),
                     models=(museforge.ModelSource("studio.gain", Path({str(tmp_path / "gain")!r})),)))
    '''})
    env = {"PYTHONPATH": str(site), "MUSEFORGE_PLUGINS": "missing"}
    with ServeProcess(env=env) as server:
        banner = next(line for line in server.output if "museforge serving on" in line)
    assert "1 generators, 0 models ready, 1 failed" in banner


def test_a_slow_plugin_import_is_named_before_and_after(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    install(site, "studio-slow", {"slow_one": "studio_slow_one"}, {"studio_slow_one": '''
        import time
        time.sleep(0.3)
    '''})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugin_host, "SLOW_IMPORT_SECONDS", 0.1, raising=False)
    caplog.set_level(logging.DEBUG, logger="museforge.plugin_host")
    host = PluginHost(allow=["slow_one"])
    with ServerThread(engine=Engine(Settings(address="127.0.0.1:0", plugins=["slow_one"]), host)) as server, \
            Client(server.address, timeout=60) as client:
        assert [p.name for p in client.plugins() if p.name == "slow_one"] == ["slow_one"]
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "museforge.plugin_host"]
    loading = said.index(("DEBUG", "loading plugin slow_one"))
    slow = [i for i, (level, text) in enumerate(said) if level == "WARNING"
            and text.startswith("plugin slow_one took ") and text.endswith(" s to import")]
    assert slow and slow[0] > loading


@pytest.mark.parametrize(("arguments", "said"), [
    (("studio/gain", "models/gain"), "model name 'studio/gain': use letters, digits"),
    (("studio gain", "models/gain"), "model name 'studio gain'"),
    (("studio.gain", 5), "model studio.gain: directory must be a path"),
    (("studio.gain", "models/gain", 0), "version must be a whole number from 1"),
    (("studio.gain", "models/gain", None, -2), "intra_op_threads must be a whole number from 1"),
    (("studio.gain", "models/gain", None, True), "intra_op_threads must be a whole number from 1"),
])
def test_a_model_declaration_that_cannot_serve_is_refused_where_it_is_made(
        arguments: tuple[Any, ...], said: str) -> None:
    """Once: a '/' in the name served a model no /v2/models/{name} route reached, a negative thread
    count was taken silently, a number for a directory failed at load with an AttributeError."""
    with pytest.raises((ValueError, TypeError), match=said.replace("(", r"\(")):
        museforge.ModelSource(*arguments)


def test_a_string_directory_is_a_path_and_serves(tmp_path: Path) -> None:
    write_gain(tmp_path / "gain", 1, 2.0)
    source = museforge.ModelSource("studio.gain", str(tmp_path / "gain"))
    assert source.directory == tmp_path / "gain"
    from museforge.runtime.sessions import Runtime

    assert Runtime().load(source).ready


def test_models_given_as_names_fail_the_declaration_naming_the_field() -> None:
    """A bare name once reached the runtime and failed with "'str' object has no attribute 'name'"."""
    with pytest.raises(ValueError, match=r"generator studio\.run: models must be a tuple of "
                                         r"museforge\.ModelSource"):
        museforge.Generator("studio.run", "image", Wide, runs("studio.gain"), ("png",),
                            models=("studio.gain",))
