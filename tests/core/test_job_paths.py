"""The job sandbox: frame patterns, roots, '..', absolute paths and escaping symlinks."""

from __future__ import annotations

from pathlib import Path

import pytest

from museforge.jobs.paths import PathRefused, Sandbox, frame_path, has_frame_run


def test_frame_patterns() -> None:
    assert frame_path("plates/sh010.####.exr", 1001) == "plates/sh010.1001.exr"
    assert frame_path("f.##.png", 7) == "f.07.png"
    assert frame_path("f.##.png", 123) == "f.123.png"
    assert frame_path("f.###.png", -4) == "f.-004.png"
    assert has_frame_run("a.#.png") and not has_frame_run("a.png") and not has_frame_run("a#.#.png")
    with pytest.raises(ValueError, match="exactly one run"):
        frame_path("a.png", 1)


def test_paths_resolve_inside_the_roots_and_never_outside(tmp_path: Path) -> None:
    inputs, outputs, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "secret"
    for d in (inputs, outputs, elsewhere):
        d.mkdir()
    (inputs / "escape").symlink_to(elsewhere)
    (inputs / "inside").symlink_to(inputs)
    sandbox = Sandbox.of([inputs], [outputs])
    assert sandbox.input_path("plates/a.png") == inputs / "plates" / "a.png"
    assert sandbox.input_path(str(inputs / "b.png")) == inputs / "b.png"
    assert sandbox.input_path("inside/c.png") == inputs / "c.png"  # a symlink that stays is fine
    assert sandbox.output_path("renders/a.exr") == outputs / "renders" / "a.exr"
    for bad in (
        "../secret/a.png",
        "plates/../../secret/a.png",
        str(elsewhere / "a.png"),
        "escape/a.png",
        "/etc/passwd",
    ):
        with pytest.raises(PathRefused) as caught:
            sandbox.input_path(bad)
        assert caught.value.permission, bad
        assert str(elsewhere) not in str(caught.value) or bad.startswith(str(elsewhere)), caught.value
    # Where a link points is not told: only that it leads outside.
    with pytest.raises(PathRefused, match=r"'escape/a\.png' leads through a link to a place outside"):
        sandbox.input_path("escape/a.png")
    with pytest.raises(PathRefused) as caught:
        Sandbox.of([inputs], [outputs], protected=[outputs / "data"]).output_path("data/keys.json")
    assert "server's own files" in str(caught.value) and str(outputs / "data") not in str(caught.value)
    with pytest.raises(PathRefused):
        sandbox.output_path(str(inputs / "a.png"))  # an input root is not an output root
    with pytest.raises(PathRefused) as caught:
        sandbox.input_path("")
    assert not caught.value.permission
    with pytest.raises(PathRefused, match="no input roots"):
        Sandbox.of([], [outputs]).input_path("a.png")


def test_a_written_frame_is_as_readable_as_any_file_the_process_makes(tmp_path: Path) -> None:
    import os

    from museforge.jobs.chain import write_atomic

    write_atomic(tmp_path / "out" / "a.0001.png", b"frame")
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    # Not mkstemp's private 0600: a render farm's other users read the renders.
    assert os.stat(tmp_path / "out" / "a.0001.png").st_mode & 0o777 == os.stat(plain).st_mode & 0o777
