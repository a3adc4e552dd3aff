"""What an operator meets starting and stopping `museforge serve`: a bad address named with the
key and where it was set, settings that would silently do nothing warned about, keys that are
not checked said so, a worker's death and a stop during start-up said plainly.

Each was once a traceback after every model had loaded, an error blaming a flag nobody gave, a
silently ignored variable, "exited with code None", or exit 143 with no line in the log.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from museforge.cli.main import main
from museforge.config import ConfigError, load_settings
from tests.core.test_gateway import Http
from tests.servers import ServeProcess, ServerThread


def serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`museforge serve` with no plugins: each mistake here is said before any would load."""
    return subprocess.run([sys.executable, "-m", "museforge.cli", "serve", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "MUSEFORGE_PLUGINS": "", **env})


def said_until(server: ServeProcess, text: str) -> str:
    """The server's output once it holds ``text`` (its reader thread may lag the process's exit)."""
    for _ in range(300):
        said = "".join(server.output)
        if text in said:
            return said
        time.sleep(0.1)
    return "".join(server.output)


def test_an_empty_or_bad_address_is_named_with_where_it_was_set(tmp_path: Path) -> None:
    data = {"MUSEFORGE_DATA_DIR": str(tmp_path / "data")}
    flag = serve("--address", "", env=data)
    assert flag.returncode == 2 and "Traceback" not in flag.stderr, flag.stderr
    assert "museforge: --address: address must be HOST:PORT, got ''" in flag.stderr
    from_env = serve("--log-format", "json", env={**data, "MUSEFORGE_ADDRESS": ""})
    assert from_env.returncode == 2, from_env.stderr
    record = json.loads(from_env.stderr.strip().splitlines()[-1])
    assert record["level"] == "ERROR" and record["message"] == (
        "invalid settings: address: address must be HOST:PORT, got '' "
        "(from the environment variable MUSEFORGE_ADDRESS)"), record
    config = tmp_path / "t.toml"
    config.write_text('address = "127.0.0.1:notaport"\nmetrics_address = "nowhere"\n')
    from_file = serve("--config", str(config), env=data)
    assert from_file.returncode == 2 and "--address" not in from_file.stderr, from_file.stderr
    assert f"address: address must be HOST:PORT, got '127.0.0.1:notaport' (in {config})" in from_file.stderr
    metrics = serve("--config", str(config), "--address", "127.0.0.1:0",
                    env={**data, "MUSEFORGE_METRICS_ADDRESS": "127.0.0.1:x"})
    assert metrics.returncode == 2, metrics.stderr
    assert ("invalid settings: metrics_address: address must be HOST:PORT, got '127.0.0.1:x' (from the "
            "environment variable MUSEFORGE_METRICS_ADDRESS)") in metrics.stderr


def test_cors_origins_are_kept_as_browsers_send_them(tmp_path: Path) -> None:
    config = tmp_path / "cors.toml"
    config.write_text('http_cors_origins = ["http://localhost:3000/", "HTTP://Example.com", '
                      '"https://Tools.Example:443", "http://[::1]:8080"]\n')
    settings = load_settings(config, {"address": "127.0.0.1:0", "http_address": "127.0.0.1:0",
                                      "load_installed_plugins": False}, environ={})
    assert settings.http_cors_origins == ["http://localhost:3000", "http://example.com",
                                          "https://tools.example", "http://[::1]:8080"]
    with ServerThread(settings) as server:
        web = Http(server)
        try:
            for origin in ("http://localhost:3000", "http://example.com"):
                status, headers, _ = web.request("OPTIONS", "/v1/generators", headers={"Origin": origin})
                assert status == 204 and headers["access-control-allow-origin"] == origin, (status, headers)
        finally:
            web.close()
    config.write_text('http_cors_origins = ["https://ok.example", "http://localhost:3000/app", "x.com"]\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(config, environ={})
    said = str(refused.value)
    assert "http_cors_origins[1]: Value error, 'http://localhost:3000/app' has a path: an origin is " \
           "SCHEME://HOST[:PORT]" in said and f"(in {config})" in said, said
    assert "http_cors_origins[2]: Value error, 'x.com' has no scheme or host" in said
    assert "http_cors_origins[0]" not in said


def test_keys_create_says_when_auth_is_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MUSEFORGE_API_KEYS_FILE", str(tmp_path / "api_keys.json"))
    monkeypatch.delenv("MUSEFORGE_CONFIG", raising=False)
    monkeypatch.delenv("MUSEFORGE_AUTH", raising=False)
    assert main(["keys", "create", "--scopes", "generate"]) == 0
    assert "auth is off in these settings" in capsys.readouterr().err
    monkeypatch.setenv("MUSEFORGE_AUTH", "true")
    assert main(["keys", "create", "--scopes", "generate"]) == 0
    assert "auth is off" not in capsys.readouterr().err


def test_serve_warns_of_misspelt_variables_and_of_keys_it_does_not_check(tmp_path: Path) -> None:
    keys = tmp_path / "api_keys.json"
    made = subprocess.run([sys.executable, "-m", "museforge.cli", "keys", "create", "--scopes", "read"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MUSEFORGE_API_KEYS_FILE": str(keys)})
    assert made.returncode == 0 and "auth = true" in made.stderr, made.stderr
    env = {"MUSEFORGE_PLUGINS": "", "MUSEFORGE_DATA_DIR": str(tmp_path / "data"),
           "MUSEFORGE_API_KEYS_FILE": str(keys), "MUSEFORGE_METRICS_ADRESS": "127.0.0.1:0",
           "MUSEFORGE_LOGFORMAT": "json", "MUSEFORGE_RENDER_PROCESSES": "1"}
    with ServeProcess(env=env) as server:
        said = "".join(server.output)
    assert ("environment variable MUSEFORGE_METRICS_ADRESS is not a setting and is ignored (did you mean "
            "MUSEFORGE_METRICS_ADDRESS?)") in said
    assert "MUSEFORGE_LOGFORMAT is not a setting and is ignored (did you mean MUSEFORGE_LOG_FORMAT?)" in said
    assert "RENDER_PROCESSES" not in said  # read by the music plugin, not a setting
    assert f"1 API keys in {keys} are not checked: auth is off" in said and "auth = true" in said


def test_a_worker_killed_is_named_with_its_pid_and_signal(tmp_path: Path) -> None:
    env = {"MUSEFORGE_PLUGINS": "", "MUSEFORGE_DATA_DIR": str(tmp_path / "data")}
    with ServeProcess("--workers", "2", env=env) as server:
        assert server.proc is not None
        pids = re.search(r"2 workers \(pids (\d+), (\d+)\)", "".join(server.output))
        assert pids is not None, server.output
        victim = int(pids.group(2))
        os.kill(victim, signal.SIGKILL)
        assert server.proc.wait(60) == 1
        said = said_until(server, "stopping the others")
    assert f"worker museforge-worker-1 (pid {victim}) was killed by SIGKILL; stopping the others" in said
    assert "code None" not in said


def test_sigterm_while_models_load_stops_cleanly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "museforge.cli", "serve", "--address", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "MUSEFORGE_DATA_DIR": str(tmp_path / "data"), "MUSEFORGE_PLUGINS": "image,effect"})
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # the first of several models is loaded: the start is under way
        lines.append(line)
        if " ready on " in line:
            break
    proc.send_signal(signal.SIGTERM)
    lines += proc.stdout.readlines()
    said = "".join(lines)
    assert proc.wait(60) == 0, said
    assert "museforge: stopping during start-up (SIGTERM); nothing was served" in said, said
    assert "museforge serving on" not in said and "Traceback" not in said


def test_serve_help_says_where_settings_come_from(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    for text in ("environment variable MUSEFORGE_<KEY>", "Flags win over the environment, the environment "
                 "over the file", "MUSEFORGE_DATA_DIR; default $XDG_DATA_HOME/museforge", "api_keys.json",
                 "Every key is listed in README.md"):
        assert text in said, said
