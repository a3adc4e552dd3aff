"""The museforge command line, run as a user runs it: real processes, real server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from PIL import Image

from museforge.engine.codecs.encoders import read_png_provenance
from tests.servers import ServeProcess, ServerThread


def museforge(*args: str, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "museforge.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env={**os.environ, **(env or {})})


def test_serving_process_never_imports_torch(tmp_path: Path) -> None:
    with ServeProcess() as server:
        result = museforge("generate", "image.digits", "--param", "digit=7", "--count", "8",
                           "-o", str(tmp_path), "--server", server.address, "--seed", "1")
        assert result.returncode == 0, result.stderr
        assert server.proc is not None
        maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
        assert "libtorch" not in maps and "/torch/" not in maps
    assert len(list(tmp_path.glob("*.png"))) == 8


def test_generate_through_server_writes_pngs(server: ServerThread, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = museforge("generate", "image.digits", "--param", "digit=7", "--count", "8",
                       "--seed", "42", "-o", str(out), "--server", server.address)
    assert result.returncode == 0, result.stderr
    files = sorted(out.glob("*.png"))
    assert len(files) == 8
    assert [Path(line).name for line in result.stdout.split()] == [f.name for f in files]
    assert "seed 42" in result.stderr
    with Image.open(files[0]) as image:
        assert image.size == (28, 28)
    assert read_png_provenance(files[0].read_bytes())["parameters"] == '{"digit": 7, "size": 28}'


def test_local_generation_matches_the_server_byte_for_byte(server: ServerThread,
                                                           tmp_path: Path) -> None:
    remote, local = tmp_path / "remote", tmp_path / "local"
    common = ["generate", "image.digits", "-p", "digit=5", "-n", "3", "--seed", "8"]
    assert museforge(*common, "-o", str(remote), "--server", server.address).returncode == 0
    assert museforge(*common, "-o", str(local), "--local").returncode == 0
    for path in remote.glob("*.png"):
        assert (local / path.name).read_bytes() == path.read_bytes()


def test_bad_parameter_exit_code_and_message(server: ServerThread, tmp_path: Path) -> None:
    result = museforge("generate", "image.digits", "-p", "digit=12", "-o", str(tmp_path),
                       "--server", server.address)
    assert result.returncode == 1
    assert "parameters.digit" in result.stderr
    local = museforge("generate", "image.digits", "-p", "digit=12", "-o", str(tmp_path), "--local")
    assert local.returncode == 1 and "parameters.digit" in local.stderr
    # Each field once: on its own line, not also at the end of the status message above it.
    assert result.stderr.count("parameters.digit") == 1, result.stderr
    typo = museforge("generate", "image.digits", "-p", "digt=3", "-o", str(tmp_path),
                     "--server", server.address)
    assert typo.returncode == 1
    said = "parameters.digt: unknown parameter (did you mean 'digit'?); image.digits accepts"
    assert said in typo.stderr, typo.stderr


def test_unreachable_server_exit_code(tmp_path: Path) -> None:
    result = museforge("generators", "--server", "127.0.0.1:1")
    assert result.returncode == 3
    assert "museforge serve" in result.stderr


def test_a_server_that_answers_unavailable_is_not_called_unreachable() -> None:
    from museforge.client import Client
    from museforge.config import Settings

    with ServerThread(Settings(address="127.0.0.1:0", plugins=["image"])) as running:
        with Client(running.address) as client:
            client.unload_model("image.digits")
        result = museforge("generate", "image.digits", "--server", running.address)
    assert result.returncode == 1, result.stderr
    assert "UNAVAILABLE" in result.stderr and "unloaded" in result.stderr
    assert "no server answered" not in result.stderr


def test_numbers_out_of_range_and_unwritable_outputs_are_plain_errors(tmp_path: Path) -> None:
    for flags in (["--seed", "-1"], ["--seed", str(2**64)], ["-n", "0"]):
        result = museforge("generate", "image.digits", "--local", *flags)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "must be" in result.stderr
    (tmp_path / "a-file").write_text("")
    result = museforge("generate", "image.digits", "--local", "-o", str(tmp_path / "a-file" / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{tmp_path / 'a-file'} is a file, not a folder" in result.stderr


def test_serve_refuses_a_malformed_address_before_loading_anything() -> None:
    for flag in ("--address", "--http-address", "--metrics-address"):
        result = museforge("serve", flag, "garbage")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"{flag}: address must be HOST:PORT" in result.stderr


def test_generate_and_apply_print_json_for_scripts(tmp_path: Path) -> None:
    made = museforge("generate", "image.digits", "--local", "-n", "2", "--seed", "3", "-o", str(tmp_path),
                     "--json")
    assert made.returncode == 0, made.stderr
    reply = json.loads(made.stdout)
    assert reply["seed"] == 3 and [Path(f).is_file() for f in reply["files"]] == [True, True]
    applied = museforge("apply", "effect.denoise", reply["files"][0], "-o", str(tmp_path / "clean" / "d.png"),
                        "--local", "--json")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["files"] == [str(tmp_path / "clean" / "d.png")]


def test_health_of_an_unknown_service_says_which(server: ServerThread) -> None:
    result = museforge("health", "--service", "nope", "--server", server.address)
    assert result.returncode == 1 and "no health service 'nope'" in result.stderr, result.stderr


def test_listings(server: ServerThread) -> None:
    plugins = museforge("plugins", "--server", server.address)
    assert plugins.returncode == 0 and "image.digits" in plugins.stdout
    generators = json.loads(museforge("generators", "--server", server.address, "--json").stdout)
    assert generators[0]["name"] == "image.digits"
    local = museforge("generators", "--local", "--schema")
    assert "CPUExecutionProvider" in local.stdout and '"digit"' in local.stdout


def test_listings_as_json_for_scripts(server: ServerThread) -> None:
    recipes = json.loads(museforge("export", "--list", "--json").stdout)
    assert "image.digits" in {r["name"] for r in recipes} and all(r["description"] for r in recipes)
    health = museforge("health", "--server", server.address, "--json")
    assert health.returncode == 0 and json.loads(health.stdout) == {"service": "", "status": "SERVING"}
    effects = json.loads(museforge("effects", "--server", server.address, "--json").stdout)
    assert "effect.denoise" in {e["name"] for e in effects}


def test_a_closed_pipe_ends_quietly() -> None:
    # `museforge export --list --json | head -1`: the reader leaves early.
    proc = subprocess.Popen([sys.executable, "-m", "museforge.cli", "export", "--list", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(1)
    proc.stdout.close()
    assert proc.wait(120) in (0, 141)
    assert b"Traceback" not in proc.stderr.read()


def test_help_explains_every_command() -> None:
    top = museforge("--help").stdout
    commands = ("serve", "plugins", "generators", "generate", "effects", "apply", "job", "feedback", "keys",
                "health", "openapi", "plugin", "export")
    for command in commands:
        assert command in top
        usage = museforge(command, "--help")
        assert usage.returncode == 0 and len(usage.stdout.splitlines()) > 3, command
    assert "\\\n      --frames" in top  # the example's line continuation prints as typed


def test_sigterm_drains_and_exits_cleanly() -> None:
    with ServeProcess() as server:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0


def test_a_hangup_drains_too_and_json_logs_are_json_throughout(tmp_path: Path) -> None:
    # A closed terminal sends SIGHUP, whose default ends the process with no drain.
    with ServeProcess("--log-format", "json", "--metrics-address", "127.0.0.1:0", "--http-address",
                      "127.0.0.1:0", env={"MUSEFORGE_PLUGINS": "image",
                                          "MUSEFORGE_DATA_DIR": str(tmp_path)}) as server:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGHUP)
        assert server.proc.wait(30) == 0
    lines = [line for line in server.output if line.strip() and not ServeProcess.BANNER.search(line)]
    said = [json.loads(line)["message"] for line in lines]  # each a JSON object, or this fails
    assert any(m.startswith("metrics on http://") for m in said)
    assert any(m.startswith("HTTP/JSON gateway on") for m in said) and "draining in-flight calls…" in said


def test_ctrl_c_during_an_export_says_so_and_writes_nothing(tmp_path: Path) -> None:
    export = subprocess.Popen([sys.executable, "-m", "museforge.cli", "export", "image.digits", "--quick",
                               "--output", str(tmp_path / "models")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert export.stderr is not None
    for line in export.stderr:  # the progress bar's first line: training has begun
        if "step" in line or "%" in line:
            break
    export.send_signal(signal.SIGINT)
    _, rest = export.communicate(timeout=120)
    assert export.returncode == 130 and "museforge: interrupted" in rest, rest[-500:]
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").rglob("model.onnx"))


def test_a_closed_terminal_drains_the_server_and_it_exits_zero(tmp_path: Path) -> None:
    # The terminal's hang-up sends SIGHUP, then every write to it fails: the notice that the
    # server drains must not stop the drain itself.
    import pty
    import select

    env = {**os.environ, "MUSEFORGE_PLUGINS": "image", "MUSEFORGE_DATA_DIR": str(tmp_path)}
    pid, terminal = pty.fork()
    if pid == 0:  # the child: a server on the terminal, as from an interactive shell
        os.execve(sys.executable, [sys.executable, "-m", "museforge.cli", "serve", "--address",
                                   "127.0.0.1:0"], env)
    seen = b""
    while b"museforge serving on" not in seen:
        ready, _, _ = select.select([terminal], [], [], 120)
        assert ready, seen[-500:]
        seen += os.read(terminal, 4096)
    os.close(terminal)  # the terminal goes away
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("max_count = -3\n")
    result = museforge("serve", "--config", str(config))
    assert result.returncode == 2 and "max_count" in result.stderr
    config.write_text('adress = "127.0.0.1:50999"\n')  # a typo is named with what was meant
    result = museforge("serve", "--config", str(config))
    assert result.returncode == 2
    assert "adress: unknown setting (did you mean 'address'?)" in result.stderr, result.stderr


def test_apply_leaves_an_unfamiliar_extension_to_the_server_which_names_the_real_problem(
        tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    shots = museforge("apply", "video.shots", str(tmp_path / "one.png"), "-o", str(tmp_path / "shots.json"),
                      "--local", "--plugins", "video")
    assert shots.returncode != 0 and "inputs[0]: png input is not accepted here" in shots.stderr, shots.stderr
    odd = museforge("apply", "effect.denoise", str(tmp_path / "one.png"), "-o", str(tmp_path / "x.xyz"),
                    "--local", "--plugins", "effect")
    assert odd.returncode != 0, odd.stderr
    assert "format: 'xyz' is not supported by effect.denoise" in odd.stderr, odd.stderr


def test_a_server_address_gRPC_would_misread_is_a_usage_error() -> None:
    for address, said in ((":52400", "give a host before the port"),
                          ("127.0.0.1:abc", "the port is a number"), ("http://127.0.0.1:50051", "not a URL")):
        result = museforge("generators", "--server", address)
        assert result.returncode == 2 and said in result.stderr, (address, result.stderr)


def test_plugins_with_a_server_is_refused_not_ignored(server: ServerThread) -> None:
    # The server chose its plugins when it started; narrowing them here cannot be done.
    result = museforge("generators", "--plugins", "image", "--server", server.address)
    assert result.returncode == 2, result.stderr
    assert "--plugins" in result.stderr and "--local" in result.stderr, result.stderr
    assert "image.digits" not in result.stdout


def test_a_taken_port_is_said_before_any_model_loads() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        for flags, said in (
                (["--address", address], f"cannot serve on {address}: Address already in use (is another"),
                (["--address", "127.0.0.1:0", "--http-address", address], "could not serve the HTTP gateway"),
                (["--address", "127.0.0.1:0", "--metrics-address", address], "could not serve metrics")):
            result = museforge("serve", *flags)
            assert result.returncode == 1 and said in result.stderr, (flags, result.stderr)
            assert "ready on" not in result.stderr and "add_port" not in result.stderr, result.stderr


def test_health_of_a_port_that_never_answers_counts_as_no_server() -> None:
    import socket

    with socket.socket() as listener:  # takes connections into its backlog and never speaks
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        result = museforge("health", "--server", f"127.0.0.1:{port}", "--timeout", "1")
    assert result.returncode == 3 and "no answer from" in result.stderr, result.stderr


def test_the_command_line_runs_as_python_m_museforge_and_alone_shows_its_help(tmp_path: Path) -> None:
    by_module = subprocess.run([sys.executable, "-m", "museforge", "--version"], capture_output=True,
                               text=True, timeout=60)
    assert by_module.returncode == 0 and by_module.stdout.startswith("museforge ")
    alone = museforge()
    assert alone.returncode == 2 and "generate" in alone.stderr and "usage: museforge" in alone.stderr
    empty = museforge("keys", "list", env={"MUSEFORGE_DATA_DIR": str(tmp_path)})
    assert empty.returncode == 0 and "no API keys yet" in empty.stderr
    lowercase = museforge("serve", "--log-level", "debug", "--address", "garbage")
    assert lowercase.returncode == 2 and "--log-level" not in lowercase.stderr  # the address is the fault


def test_export_checks_its_flags_before_any_training(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "2").write_text("")
    for flags, said in ((["--seed", "-1"], "a training seed must be 0 to"),
                        (["--version-number", "0"], "a model version must be 1 to"),
                        (["--output", str(tmp_path / "afile")], "is a file; give a folder"),
                        (["--output", str(tmp_path / "models"), "--version-number", "2"],
                         "is a file; the version folder would go there"),
                        (["--output", "/proc/museforge-models"], "/proc is not writable here"),
                        (["--min-win", "0.7"], "--min-win goes with --from-feedback"),
                        (["--owner", "k1"], "--owner goes with --from-feedback"),
                        (["--from-feedback", "x", "--min-win", "1.5"], "a share is 0 to 1")):
        result = museforge("export", "image.digits", "--quick", *flags)
        assert result.returncode == 2 and said in result.stderr and "Traceback" not in result.stderr, (
            flags, result.stderr[-300:])
    unnamed = museforge("export")
    assert unnamed.returncode == 2 and "name a recipe" in unnamed.stderr


def on_screen(output: str) -> list[str]:
    """The lines a terminal shows for ``output``: a carriage return goes back to the line's start
    and what follows overwrites it."""
    lines = []
    for raw in output.replace("\r\n", "\n").split("\n"):
        line = ""
        for part in raw.split("\r"):
            line = part + line[len(part):]
        lines.append(line.rstrip())
    return lines


def test_generate_in_a_terminal_prints_each_file_on_a_line_of_its_own(server: ServerThread,
                                                                      tmp_path: Path) -> None:
    # The progress line is drawn only on a terminal; before, each name was printed after it.
    import pty

    main, secondary = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "museforge.cli", "generate", "image.texture", "-n", "2",
                           "--seed", "5", "-o", str(tmp_path), "--server", server.address],
                          stdin=secondary, stdout=secondary, stderr=secondary) as proc:
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(60) == 0
    os.close(main)
    output = b"".join(chunks).decode()
    assert "sampling" in output  # the progress line was drawn
    lines = on_screen(output)
    for path in sorted(tmp_path.glob("*.png")):
        assert str(path) in lines, lines
    assert "2 file(s) written" in lines[-2], lines


def test_a_server_killed_mid_stream_is_a_lost_connection_not_a_tls_problem(tmp_path: Path) -> None:
    with ServeProcess() as server:
        assert server.proc is not None
        with subprocess.Popen([sys.executable, "-m", "museforge.cli", "generate", "image.texture", "-n", "64",
                               "-p", "width=512", "-p", "height=512", "--seed", "9", "-o", str(tmp_path),
                               "--server", server.address],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as generating:
            assert generating.stdout is not None
            assert generating.stdout.readline().strip().endswith(".png")  # the stream is under way
            server.proc.kill()
            _, stderr = generating.communicate(timeout=120)
    assert generating.returncode == 3, stderr
    assert "connection to the server was lost in the middle of image.texture" in stderr, stderr
    assert "--seed 9 gives the same results" in stderr and "tls" not in stderr.lower(), stderr


def test_a_port_that_answers_http_not_grpc_is_said_so() -> None:
    # The gateway's or the metrics port given for the gRPC one: something answered, so "no server
    # answered; start one" would send the user the wrong way.
    import http.server
    import threading

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        result = museforge("generators", "--server", f"127.0.0.1:{web.server_address[1]}")
    finally:
        web.shutdown()
        web.server_close()
    assert result.returncode == 3
    assert "something answers at that address, but not gRPC" in result.stderr, result.stderr
