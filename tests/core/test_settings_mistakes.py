"""Mistakes in settings, flags and addresses: each is named in one line, before anything serves.

Each was once a traceback, a silently ignored setting or a server reached on the wrong port:
gRPC takes port 99999 as 34463 (modulo 65536).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel

from museforge.client import Client, check_port
from museforge.config import ConfigError, Settings, load_settings
from museforge.engine.catalogue import Engine
from museforge.engine.plugin_host import PluginHost
from museforge.engine.validation import validate_parameters
from museforge.plugins.music import render_pool
from museforge.plugins.music.melody import MelodyParams
from museforge.server.workers import join_address, split_address
from tests.core.certs import make_pki


def museforge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "museforge.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def test_a_config_file_that_is_not_a_toml_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"binary\.toml is not UTF-8 text"):
        load_settings(tmp_path / "binary.toml", environ={})
    with pytest.raises(ConfigError, match="is a directory, not a TOML file"):
        load_settings(tmp_path, environ={})
    assert load_settings(None, environ={"MUSEFORGE_CONFIG": ""}) == Settings()  # empty: unset
    result = museforge("plugins", "--local", "--config", str(tmp_path / "binary.toml"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("key", ["intra_op_threads", "inter_op_threads"])
def test_onnx_runtime_threads_are_bounded(key: str) -> None:
    with pytest.raises(ConfigError, match=f"{key}: Input should be less than or equal to 256"):
        load_settings(None, {key: 100_000_000_000}, environ={})


@pytest.mark.parametrize("key", ["address", "http_address", "metrics_address"])
def test_a_port_past_65535_is_refused_not_wrapped(key: str) -> None:
    with pytest.raises(ConfigError, match=f"{key}: .*port must be 0-65535, got 99999"):
        load_settings(None, {key: "127.0.0.1:99999"}, environ={})
    with pytest.raises(ConfigError, match=r"address: .*got 70000"):
        load_settings(None, environ={"MUSEFORGE_ADDRESS": "127.0.0.1:70000"})
    with pytest.raises(ValueError, match="port must be 0-65535"):
        split_address("127.0.0.1:99999")
    assert split_address("127.0.0.1:0") == ("127.0.0.1", 0)


def test_a_client_never_dials_a_wrapped_port() -> None:
    for address in ("127.0.0.1:99999", "127.0.0.1:0"):
        with pytest.raises(ValueError, match="port must be 1-65535"):
            Client(address)
    check_port("[::1]:50051")
    check_port("localhost")  # no port: gRPC's own default
    result = museforge("generators", "--server", "127.0.0.1:116323")
    assert result.returncode == 2 and "argument --server: port must be 1-65535, got 116323" in result.stderr
    result = museforge("serve", "--address", "127.0.0.1:99999")
    assert result.returncode == 2 and "port must be 0-65535, got 99999" in result.stderr


def test_an_ipv6_address_is_printed_as_it_is_dialled() -> None:
    assert join_address("::1", 50051) == "[::1]:50051"
    assert split_address(join_address("::1", 50051)) == ("::1", 50051)


def test_a_plugin_name_no_installed_plugin_has_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "museforge.plugin_host"):
        PluginHost(allow=["image", "imagez"]).load()
    assert "no installed plugin is called 'imagez' (installed: " in caplog.text
    assert "'image'" not in caplog.text.split("called", 1)[1].split("(")[0]
    assert "did you mean 'image'?" in caplog.text


def test_settings_for_a_model_not_served_are_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(None, {"plugins": ["image"], "models": {"image.digitz": {"max_batch_size": 4}}},
                             environ={})
    engine = Engine(settings)
    with caplog.at_level(logging.WARNING, "museforge.engine"):
        engine.start()
    try:
        assert "settings for models not served: 'image.digitz' (served: image.digits" in caplog.text
    finally:
        engine.close()


@pytest.mark.parametrize(("value", "count", "warned"), [
    ("", 2, False), ("0", 0, False), ("1", 1, False), ("-5", 2, True), ("abc", 2, True),
    ("4096", None, True)])
def test_render_processes_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture, value: str,
                                               count: int | None, warned: bool) -> None:
    monkeypatch.setenv(render_pool.ENV, value)
    cores = os.cpu_count() or 1
    with caplog.at_level(logging.WARNING):
        got = render_pool.processes()
    assert got == (cores if count is None else min(count, cores))
    assert (render_pool.ENV in caplog.text) == warned


class Fading(BaseModel):
    fade: float | Literal[False] = False  # a number, or false for none: a boolean is meant here
    loop: int | Literal[True] = 1


def test_a_boolean_is_not_a_number() -> None:
    _, problems = validate_parameters("x", Fading, {"fade": False, "loop": True})
    assert problems == []
    _, problems = validate_parameters("music.melody", MelodyParams, {"bars": True, "temperature": False,
                                                                     "loop": True})
    assert [(p.field, p.description) for p in problems] == [
        ("parameters.bars", "must be a number, not a boolean (true)"),
        ("parameters.temperature", "must be a number, not a boolean (false)")]


@pytest.fixture()
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_metrics_or_gateway_port_is_named_not_the_grpc_one(taken_port: int, workers: str) -> None:
    busy = f"127.0.0.1:{taken_port}"
    for flag, what in (("--metrics-address", "metrics"), ("--http-address", "the HTTP gateway")):
        result = museforge("serve", "--address", "127.0.0.1:0", "--workers", workers, flag, busy,
                           env={"MUSEFORGE_PLUGINS": ""})
        assert result.returncode == 1 and f"museforge: could not serve {what} on {busy}" in result.stderr, \
            result.stderr


@pytest.mark.parametrize("kind", ["garbage", "encrypted key"])
def test_a_certificate_that_is_not_one_is_named(tmp_path: Path, kind: str) -> None:
    pem = make_pki().server
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    if kind == "garbage":
        cert.write_text("garbage\n")
        key.write_text("garbage\n")
    else:  # OpenSSL would ask for its passphrase on the terminal and wait
        cert.write_bytes(pem.cert)
        loaded = serialization.load_pem_private_key(pem.key, password=None)
        key.write_bytes(loaded.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.BestAvailableEncryption(b"secret")))
    config = tmp_path / "tls.toml"
    config.write_text(f'tls_cert = "{cert}"\ntls_key = "{key}"\n')
    result = museforge("serve", "--config", str(config), "--address", "127.0.0.1:0",
                       env={"MUSEFORGE_PLUGINS": ""})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "are not a PEM certificate chain and its unencrypted private key" in result.stderr


def test_a_data_dir_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory\n")
    result = museforge("serve", "--address", "127.0.0.1:0",
                       env={"MUSEFORGE_PLUGINS": "", "MUSEFORGE_DATA_DIR": str(tmp_path / "a-file" / "data")})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"data_dir {tmp_path / 'a-file' / 'data'} cannot hold the feedback database" in result.stderr
