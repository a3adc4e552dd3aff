"""``workers``: a museforge.toml key and MUSEFORGE_WORKERS, below ``serve --workers``."""

from __future__ import annotations

from pathlib import Path

import pytest

from museforge.config import MAX_WORKERS, ConfigError, load_settings


def test_workers_from_file_then_env_then_flag(tmp_path: Path) -> None:
    config = tmp_path / "museforge.toml"
    config.write_text("workers = 2\n")
    assert load_settings(environ={}).workers == 1
    assert load_settings(config, environ={}).workers == 2
    env = {"MUSEFORGE_WORKERS": "3"}
    assert load_settings(config, environ=env).workers == 3
    assert load_settings(config, {"workers": 4}, environ=env).workers == 4
    assert load_settings(config, {"workers": None}, environ=env).workers == 3  # no flag given


@pytest.mark.parametrize("value", ["0", str(MAX_WORKERS + 1), "many"])
def test_workers_out_of_range_names_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match="workers"):
        load_settings(environ={"MUSEFORGE_WORKERS": value})
