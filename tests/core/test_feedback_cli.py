"""`museforge feedback` against the shared real server, run in this process: a round trip."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from museforge.cli.main import main
from tests.core.feedback_helpers import fresh_user
from tests.servers import ServerThread


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rate_pick_keep_list_export_and_forget(server: ServerThread, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    at = ("--server", server.address)
    user = fresh_user("cli")
    assert run(capsys, "generate", "image.digits", "-p", "digit=2", "--count", "3", "--seed", "9",
               "-o", str(tmp_path / "out"), *at)[0] == 0
    files = sorted((tmp_path / "out").glob("*.png"))
    assert len(files) == 3
    first, second, third = (str(f) for f in files)
    for argv in (("rate", first, "--up"), ("rate", second, "--stars", "5"),
                 ("pick", second, first, third), ("keep", second), ("shown", third)):
        code, out, err = run(capsys, "feedback", *argv, "--user", user, *at)
        assert code == 0 and len(out.strip()) == 20, err  # the new event's id
    code, out, _ = run(capsys, "feedback", "list", "--user", user, *at)
    rows = out.splitlines()
    assert code == 0 and rows[0].split()[:3] == ["TIME", "(UTC)", "KIND"] and len(rows) == 6
    assert "thumbs" in rows[1] and "5 stars" in rows[2] and "1 of 3" in rows[3] and "image.digits" in rows[4]
    assert "shown" in rows[5]
    code, out, _ = run(capsys, "feedback", "list", "--user", user, "--json", *at)
    listed = json.loads(out)
    assert listed[1]["artifact"]["sha256"] == hashlib.sha256(files[1].read_bytes()).hexdigest()
    assert listed[1]["artifact"]["seed"] == "9" and listed[1]["artifact"]["parameters"]["digit"] == 2
    assert listed[1]["artifact"]["index"] == 1 and "index" not in listed[0]["artifact"]  # read from the PNG
    code, out, _ = run(capsys, "feedback", "recommend", "artifacts", "--user", user, *at)
    assert code == 0 and out.splitlines()[0].split() == ["SCORE", "ITEM", "WHY"]
    code, out, _ = run(capsys, "feedback", "export", "--user", user, *at)
    assert code == 0 and [json.loads(line) for line in out.splitlines()] == listed
    assert '"digit": 2' in out and '"digit": 2.0' not in out  # a whole number, as it was sent
    target = tmp_path / "feedback.jsonl"
    code, _, err = run(capsys, "feedback", "export", "--user", user, "-o", str(target), *at)
    assert code == 0 and "exported 5 events" in err
    assert [json.loads(line) for line in target.read_text().splitlines()] == listed
    code, out, err = run(capsys, "feedback", "forget", "--user", user, "--yes", *at)
    assert code == 0 and out.strip() == "5" and "deleted 5 events" in err
    code, _, err = run(capsys, "feedback", "list", "--user", user, *at)
    assert code == 1 and "NOT_FOUND" in err


@pytest.mark.parametrize(("generator", "flags", "suffix"), [
    ("image.faces", ("-f", "jpeg"), "jpg"), ("image.digits", ("-f", "exr"), "exr"),
    ("music.melody", ("-p", "bars=2", "-f", "ogg"), "ogg"),
    ("mesh.props", ("-p", "resolution=32", "-f", "glb"), "glb"),
])
def test_any_format_names_its_artifact_from_the_file_alone(server: ServerThread, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str], generator: str,
                                                          flags: tuple[str, ...], suffix: str) -> None:
    # Before, only PNG's provenance was read: every other file was refused for want of a generator.
    at = ("--server", server.address)
    user = fresh_user("formats")
    assert run(capsys, "generate", generator, *flags, "--seed", "3", "-o", str(tmp_path), *at)[0] == 0
    [made] = tmp_path.glob(f"*.{suffix}")
    code, _, err = run(capsys, "feedback", "rate", str(made), "--up", "--user", user, *at)
    assert code == 0, err
    code, out, _ = run(capsys, "feedback", "list", "--user", user, "--json", *at)
    [event] = json.loads(out)
    assert event["artifact"]["generator"] == generator and event["artifact"]["seed"] == "3"
    assert event["artifact"]["sha256"] == hashlib.sha256(made.read_bytes()).hexdigest()


def test_a_refused_event_names_its_field(server: ServerThread, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "feedback", "rate", "ab" * 32, "--down", "--user", fresh_user(),
                       "--server", server.address)
    assert code == 1 and "INVALID_ARGUMENT" in err and "event.artifact.generator" in err
    code, _, err = run(capsys, "feedback", "rate", "ab" * 32, "--stars", "3", "--generator", "image.digits",
                       "--seed", "4", "-p", "digit=3", "--server", server.address)
    assert code == 1 and "event.user" in err  # auth off: nothing else says who the user is


def test_forget_asks_for_confirmation(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["feedback", "forget", "--user", "ann"])
    assert caught.value.code == 2 and "--yes" in capsys.readouterr().err


def test_a_failed_export_leaves_no_file(server: ServerThread, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "feedback.jsonl"
    code, _, err = run(capsys, "feedback", "export", "--user", fresh_user("nobody"), "-o", str(target),
                       "--server", server.address)
    assert code == 1 and "NOT_FOUND" in err
    assert list(tmp_path.iterdir()) == []  # neither the file nor its .part


def test_running_a_rating_again_with_its_request_id_records_it_once(
        server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    at = ("--server", server.address)
    user = fresh_user("retry")
    made = run(capsys, "generate", "image.digits", "--seed", "4", "-o", str(tmp_path / "one.png"), *at)
    assert made[0] == 0
    ids = {run(capsys, "feedback", "rate", str(tmp_path / "one.png"), "--up", "--user", user,
               "--request-id", "farm-job-42", *at)[1].strip() for _ in range(2)}
    assert len(ids) == 1
    code, out, _ = run(capsys, "feedback", "list", "--user", user, "--json", *at)
    assert code == 0 and len(json.loads(out)) == 1


def test_export_refuses_an_output_it_cannot_write_before_asking_the_server(
        server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    at = ("--server", server.address)
    user = fresh_user("export-to")
    sha = hashlib.sha256(b"export-to").hexdigest()
    assert run(capsys, "feedback", "keep", sha, "--generator", "image.digits", "--user", user, *at)[0] == 0
    (tmp_path / "folder").mkdir()
    (tmp_path / "plain").write_text("not a folder")
    os.mkfifo(tmp_path / "pipe")
    for given, said in ((tmp_path / "folder", "is a folder"),
                        (tmp_path / "missing" / "f.jsonl", "there is no folder"),
                        (tmp_path / "plain" / "f.jsonl", "is a file, not a folder"),
                        (tmp_path / "pipe", "is not a regular file")):
        code, _, err = run(capsys, "feedback", "export", "--user", user, "-o", str(given), *at)
        assert code == 2 and f"-o {given}" in err and said in err and "exported" not in err
    # Nothing was written beside them, and the pipe is still a pipe (not replaced by a file).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "pipe", "plain"]
    assert stat.S_ISFIFO((tmp_path / "pipe").stat().st_mode) and not any((tmp_path / "folder").iterdir())


def test_export_to_dash_writes_json_lines_to_stdout(server: ServerThread, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    at = ("--server", server.address)
    user = fresh_user("export-dash")
    sha = hashlib.sha256(b"export-dash").hexdigest()
    assert run(capsys, "feedback", "keep", sha, "--generator", "image.digits", "--user", user, *at)[0] == 0
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "feedback", "export", "--user", user, "-o", "-", *at)
    assert code == 0 and "exported 1 events" in err
    assert json.loads(out)["artifact"]["sha256"] == sha and list(tmp_path.iterdir()) == []
