"""What an operator reads when `museforge serve` cannot start, or a setting or key name is wrong:
one line naming the file or setting, where it came from and what to do; never a traceback.

Each was once a traceback, a message naming a setting other than the one at fault, or text
that broke a listing and reached the terminal as escape sequences.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from museforge.config import ConfigError, load_settings


def museforge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "museforge.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MUSEFORGE_PLUGINS": "", **(env or {})})


def serve(tmp_path: Path, *flags: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`museforge serve` on a free loopback port with the job roots set and ``settings`` (TOML)."""
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "out").mkdir(exist_ok=True)
    config = tmp_path / "museforge.toml"
    config.write_text(f'job_input_roots = ["{tmp_path / "in"}"]\njob_output_roots = ["{tmp_path / "out"}"]\n'
                      + "".join(f"{key} = {value}\n" for key, value in settings.items()))
    return museforge("serve", "--address", "127.0.0.1:0", "--config", str(config), *flags)


@pytest.mark.parametrize(("name", "held"), [("jobs.sqlite3", "job"), ("feedback.sqlite3", "feedback")])
def test_a_damaged_database_is_named_with_what_to_do(tmp_path: Path, name: str, held: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / name).write_bytes(os.urandom(8192))
    result = serve(tmp_path, data_dir=json.dumps(str(data)))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"museforge: cannot open the {held} database {data / name}: "), last
    assert "its file is not a database; move it aside" in last and "or restore it from a backup" in last


def test_a_bad_environment_variable_is_named_as_the_source() -> None:
    with pytest.raises(ConfigError, match=r"max_count: Input should be a valid integer.* \(from the "
                       r"environment variable MUSEFORGE_MAX_COUNT\)"):
        load_settings(environ={"MUSEFORGE_MAX_COUNT": "abc"})


def test_a_typo_in_a_model_table_gets_a_suggestion_and_a_quoted_name(tmp_path: Path) -> None:
    config = tmp_path / "models.toml"
    config.write_text('[models."image.digits"]\nmax_batch = 3\n')
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={})
    assert str(raised.value) == ('invalid settings: models."image.digits".max_batch: unknown setting '
                                 f"(did you mean 'max_batch_size'?) (in {config})")


def test_an_exposed_http_address_is_named_as_such(tmp_path: Path) -> None:
    result = serve(tmp_path, "--http-address", "0.0.0.0:0")
    assert result.returncode == 2, result.stderr
    assert "refusing to serve the HTTP gateway (http_address) on 0.0.0.0 without TLS" in result.stderr


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_data_dir_that_is_a_file_is_said_in_the_logs_format(tmp_path: Path, log_format: str) -> None:
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0::/root:/bin/sh\n")
    result = serve(tmp_path, data_dir=json.dumps(str(a_file)), log_format=json.dumps(log_format))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    said = f"data_dir {a_file} is not a directory"
    last = result.stderr.strip().splitlines()[-1]
    if log_format == "text":
        assert last.startswith(f"museforge: {said}"), last
        return
    record = json.loads(last)  # the whole stderr is a log a pipeline parses, this line too
    assert record["level"] == "ERROR" and record["message"].startswith(said), record
    for line in result.stderr.strip().splitlines():
        json.loads(line)


def test_key_names_with_control_characters_are_refused_and_escaped_when_listed(tmp_path: Path) -> None:
    keys = tmp_path / "api_keys.json"
    env = {"MUSEFORGE_API_KEYS_FILE": str(keys)}
    hostile = "evil\nname\x1b[31mRED\u202e"
    refused = museforge("keys", "create", "--scopes", "read", "--name", hostile, env=env)
    assert refused.returncode == 2 and refused.stdout == "", refused.stderr
    assert "a key's name cannot hold control characters" in refused.stderr
    assert "\x1b" not in refused.stderr and "\\x1b[31mRED" in refused.stderr
    assert not keys.exists()
    # A file written before names were checked (or by hand) may hold them: listed escaped.
    assert museforge("keys", "create", "--scopes", "read", "--name", "build-farm", env=env).returncode == 0
    document = json.loads(keys.read_text())
    document["keys"][0]["name"] = hostile
    keys.write_text(json.dumps(document))
    listed = museforge("keys", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()
    assert len(rows) == 2 and rows[1].endswith("evil\\nname\\x1b[31mRED\\u202e"), listed.stdout
    assert "\x1b" not in listed.stdout and "\u202e" not in listed.stdout
    as_json = museforge("keys", "list", "--json", env=env)
    assert json.loads(as_json.stdout)[0]["name"] == hostile  # JSON escapes them itself
