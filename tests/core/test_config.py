"""Settings precedence: TOML file < MUSEFORGE_* environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from museforge.config import ConfigError, load_settings


def test_defaults() -> None:
    settings = load_settings(environ={})
    assert settings.address == "127.0.0.1:50051"
    assert settings.providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert settings.plugins is None


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "museforge.toml"
    config.write_text('address = "127.0.0.1:1111"\nmax_count = 5\nintra_op_threads = 2\n'
                      'plugins = ["image"]\n')
    from_file = load_settings(config, environ={})
    assert (from_file.address, from_file.max_count, from_file.plugins) == (
        "127.0.0.1:1111", 5, ["image"])
    env = {"MUSEFORGE_ADDRESS": "127.0.0.1:2222", "MUSEFORGE_PLUGINS": "a, b",
           "MUSEFORGE_PROVIDERS": "CPUExecutionProvider"}
    from_env = load_settings(config, environ=env)
    assert from_env.address == "127.0.0.1:2222" and from_env.plugins == ["a", "b"]
    assert from_env.providers == ["CPUExecutionProvider"] and from_env.max_count == 5
    flags = load_settings(config, {"address": "127.0.0.1:3333", "max_count": None}, environ=env)
    assert flags.address == "127.0.0.1:3333" and flags.max_count == 5


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "m.toml"
    config.write_text("max_count = 7\n")
    assert load_settings(environ={"MUSEFORGE_CONFIG": str(config)}).max_count == 7


def test_empty_allow_list_loads_no_plugin() -> None:
    assert load_settings(environ={"MUSEFORGE_PLUGINS": ""}).plugins == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_count = 0\n", "max_count"),
        ("max_count = 'many'\n", "max_count"),
        ("colour = 'red'\n", "colour"),
        ("graph_optimization = 'turbo'\n", "graph_optimization"),
        ("address = \n", "config file"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(Path("/nonexistent/museforge.toml"), environ={})
