"""Where `generate` and `apply` may write, as a user runs them against a real server: results that
would share a name, extensions of files no generator writes, a mistake in the call over many files,
`-o -` for stdout, an -o that cannot be written, and a video's -o."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.core.test_cli import museforge
from tests.core.test_cli_files import pictures
from tests.servers import ServerThread


def museforge_bytes(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """The command line with its stdout as bytes (a file written to stdout)."""
    return subprocess.run([sys.executable, "-m", "museforge.cli", *args], capture_output=True, timeout=300,
                          cwd=cwd, env=dict(os.environ))


def test_results_that_would_share_a_name_are_refused_before_any_work(server: ServerThread,
                                                                     tmp_path: Path) -> None:
    # Before, x.png, x.jpg and x.webp with -f png were each written as out/x-denoise.png, said three
    # times, "3 file(s) written", exit 0, and one file left.
    [plate] = pictures(tmp_path / "coll", ["x.png"])
    with Image.open(plate) as image:
        image.convert("RGB").save(tmp_path / "coll" / "x.jpg")
        image.convert("RGB").save(tmp_path / "coll" / "x.webp")
    target = ("--server", server.address)
    mixed = museforge("apply", "effect.denoise", str(tmp_path / "coll"), "-f", "png",
                      "-o", str(tmp_path / "out"), *target)
    assert mixed.returncode == 2, mixed.stderr
    named = ", ".join(str(tmp_path / "coll" / name) for name in ("x.jpg", "x.png", "x.webp"))
    assert f"{named} would all be written as x-denoise.*" in mixed.stderr, mixed.stderr
    assert "drop --format png" in mixed.stderr and not (tmp_path / "out").exists()
    kept = museforge("apply", "effect.denoise", str(tmp_path / "coll"), "-o", str(tmp_path / "out"), *target)
    assert kept.returncode == 0, kept.stderr  # each in its own format: three names
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "x-denoise.jpg", "x-denoise.png", "x-denoise.webp"]

    first, second = pictures(tmp_path / "c1", ["x.png"]) + pictures(tmp_path / "c2", ["x.png"])
    folders = museforge("apply", "effect.denoise", str(first), str(second), "-o", str(tmp_path / "both"),
                        *target)
    assert folders.returncode == 2, folders.stderr
    assert f"{first}, {second} would all be written as x-denoise.*" in folders.stderr
    assert "-o folders of their own" in folders.stderr and not (tmp_path / "both").exists()

    twice = museforge("apply", "effect.denoise", str(first), str(tmp_path / "c1"),
                      "-o", str(tmp_path / "once"), *target)
    assert twice.returncode == 0, twice.stderr  # one file named twice is done once, said once
    assert twice.stdout.splitlines() == [str(tmp_path / "once" / "x-denoise.png")]


def test_generate_refuses_extensions_of_files_it_cannot_write(server: ServerThread, tmp_path: Path) -> None:
    # Before, -o prop.fbx (or seven.tif, .gif, .bmp) made a folder of that name with a GLB or PNG inside.
    target = ("--server", server.address)
    for generator, name, writes in (
            ("mesh.props", "prop.fbx", "glb, gltf, obj, ply, stl, usda, usdz"),
            ("mesh.props", "prop.tiff", "glb, gltf, obj, ply, stl, usda, usdz"),
            ("image.digits", "seven.tif", "png, png16, jpeg, webp, exr"),
            ("image.digits", "seven.gif", "png, png16, jpeg, webp, exr"),
            ("image.digits", "seven.bmp", "png, png16, jpeg, webp, exr")):
        refused = museforge("generate", generator, "-o", str(tmp_path / name), *target)
        assert refused.returncode == 2, (name, refused.stderr)
        fmt = {"tif": "tiff"}.get(name.rpartition(".")[2], name.rpartition(".")[2])
        assert f"{generator} cannot write {fmt}; it writes {writes}" in refused.stderr, refused.stderr
        assert not (tmp_path / name).exists()
    usd = museforge("generate", "mesh.props", "--seed", "1", "-o", str(tmp_path / "prop.usd"), *target)
    assert usd.returncode == 0, usd.stderr
    assert (tmp_path / "prop.usd").read_bytes().startswith(b"#usda 1.0")  # a file, USD as text
    agree = museforge("generate", "mesh.props", "--seed", "1", "-f", "usd", "-o", str(tmp_path / "p2.usd"),
                      *target)
    assert agree.returncode == 0, agree.stderr


def test_a_mistake_in_the_call_over_many_files_stops_at_the_first_and_is_said_once(server: ServerThread,
                                                                                   tmp_path: Path) -> None:
    # Before, each file was refused in turn (every one sent), the same parameter error blamed on each.
    names = ["a.png", "b.png", "c.png", "d.png"]
    paths = [str(p) for p in pictures(tmp_path / "in", names)]
    for where in (("--server", server.address), ("--local", "--plugins", "effect")):
        for flags, field in ((["-p", "sigm=10"], "parameters.sigm: unknown parameter"),
                             (["-f", "tiff"], "format: 'tiff' is not supported")):
            out = tmp_path / "perr"
            refused = museforge("apply", "effect.denoise", *flags, *paths, "-o", str(out), *where)
            assert refused.returncode == 1, refused.stderr  # as for one file: a request that failed
            assert refused.stderr.count(field) == 1, refused.stderr
            assert not any(f"{path}:" in refused.stderr for path in paths), refused.stderr
            assert not out.exists()


def test_dash_writes_the_one_result_to_stdout(server: ServerThread, tmp_path: Path) -> None:
    # Before, -o - made a folder named "-".
    target = ("--server", server.address)
    made = museforge_bytes("generate", "image.digits", "--seed", "5", "-o", "-", *target, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert museforge("generate", "image.digits", "--seed", "5", "-o", str(tmp_path / "f.png"),
                     *target).returncode == 0
    assert made.stdout == (tmp_path / "f.png").read_bytes()
    applied = museforge_bytes("apply", "effect.denoise", "f.png", "--seed", "1", "-o", "-", *target,
                              cwd=tmp_path)
    assert applied.returncode == 0 and applied.stdout.startswith(b"\x89PNG"), applied.stderr
    for command in (["generate", "image.digits", "-n", "2"],
                    ["generate", "music.melody", "-p", "bars=1", "-p", "stems=true", "-f", "wav"],
                    ["generate", "image.digits", "--json"],
                    ["apply", "effect.denoise", "f.png", "f.png", "--format", "png"]):
        refused = museforge_bytes(*command, "-o", "-", *target, cwd=tmp_path)
        assert refused.returncode == 2 and refused.stdout == b"", (command, refused.stderr)
        assert b"-o - writes " in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]  # no folder "-"


def test_an_output_that_cannot_be_written_is_said_plainly(server: ServerThread, tmp_path: Path) -> None:
    # Before: "File exists: afile" and "No such file or directory: /proc/foo.png.part", exit 1.
    (tmp_path / "afile").write_text("keep")
    (tmp_path / "notes").write_text("keep")
    [plate, other] = pictures(tmp_path / "in", ["p.png", "q.png"])
    target = ("--server", server.address)
    for command, said in (
            (["generate", "image.digits", "-o", str(tmp_path / "afile" / "x.png")],
             f"{tmp_path / 'afile'} is a file, not a folder, so nothing can be written inside it"),
            (["apply", "effect.denoise", str(plate), "-o", str(tmp_path / "afile" / "deeper" / "x.png")],
             f"{tmp_path / 'afile'} is a file, not a folder"),
            (["generate", "image.digits", "-n", "2", "-o", str(tmp_path / "notes")],
             f"-o {tmp_path / 'notes'} is a file, not a folder: give a folder for the results"),
            (["apply", "effect.denoise", str(plate), str(other), "-o", str(tmp_path / "notes")],
             f"-o {tmp_path / 'notes'} is a file, not a folder"),
            (["generate", "image.digits", "-o", "/proc/foo.png"], "files cannot be written into /proc")):
        refused = museforge(*command, *target)
        assert refused.returncode == 2, (command, refused.stderr)
        assert said in refused.stderr and ".part" not in refused.stderr, refused.stderr
    assert (tmp_path / "afile").read_text() == (tmp_path / "notes").read_text() == "keep"
    # A file that cannot be written once the run is under way names the file asked for.
    (tmp_path / "out" / "image.digits-1-0000.png").mkdir(parents=True)
    blocked = museforge("generate", "image.digits", "--seed", "1", "-o", str(tmp_path / "out"), *target)
    assert blocked.returncode == 1, blocked.stderr
    assert f"{tmp_path / 'out' / 'image.digits-1-0000.png'}\n" in blocked.stderr, blocked.stderr
    assert ".part" not in blocked.stderr


def test_a_videos_output_is_checked_before_any_frame(server: ServerThread, tmp_path: Path) -> None:
    # Before: -o shot.mp4 over its own input replaced the source (exit 0); a path under a file or in
    # /proc failed after the effect was set up ("File exists", "[Errno 2]", exit 1); -o out.png said
    # only "name the output video with -o", not what was given.
    from tests.core.test_video import make_video

    source = make_video(tmp_path / "shot.mp4", frames=3, audio=False)
    other = make_video(tmp_path / "take.mp4", frames=3, audio=False)
    [plate] = pictures(tmp_path, ["plate.png"])
    (tmp_path / "afile").write_text("keep")
    (tmp_path / "renders").mkdir()
    os.mkfifo(tmp_path / "pipe.mp4")
    before = {path: path.read_bytes() for path in (source, other, plate)}
    kinds = ".mp4 (H.264 in MP4) or .mov (ProRes 422 HQ in QuickTime)"
    for inputs, output, said in (
            ([source], tmp_path / "out.png",
             f"-o {tmp_path / 'out.png'} is not a video museforge writes (.png)"),
            ([source], tmp_path / "out.fbx", f"{kinds}; e.g. -o {tmp_path / 'out.mp4'}"),
            ([source], tmp_path / "out.mkv", "is not a video museforge writes (.mkv)"),
            ([source], tmp_path / "renders",
             f"-o {tmp_path / 'renders'} names a folder: a video is written to one file, {kinds}; e.g. -o "
             f"{tmp_path / 'renders' / 'shot-denoise.mp4'}"),
            ([source], tmp_path / "afile" / "x.mp4", f"{tmp_path / 'afile'} is a file, not a folder"),
            ([source], Path("/proc/x.mp4"), "files cannot be written into /proc"),
            ([source], tmp_path / "pipe.mp4",
             "exists and is not a regular file; give the name of a video file"),
            ([source], source, f"-o {source} is an input: the result would overwrite it"),
            ([source, other], tmp_path / "both.mp4", f"a video is applied alone, and 2 inputs were given "
             f"({source}, {other}); apply each video in a run of its own"),
            ([plate, source], tmp_path / "mixed.mp4", "the pictures in a run of their own")):
        refused = museforge("apply", "effect.denoise", *map(str, inputs), "-o", str(output),
                            "--server", server.address)
        assert refused.returncode == 2, (output, refused.stderr)
        assert said in refused.stderr and "partial" not in refused.stderr, refused.stderr
        assert refused.stdout == ""
    assert {path: path.read_bytes() for path in (source, other, plate)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "pipe.mp4", "plate.png", "renders",
                                                           "shot.mp4", "take.mp4"]
    assert not list((tmp_path / "renders").iterdir())


def test_a_video_that_fails_leaves_no_folder_it_made(server: ServerThread, tmp_path: Path) -> None:
    # Before, the folders of -o were made first and left behind by a video that failed.
    from tests.core.test_video import make_video

    source = make_video(tmp_path / "shot.mp4", frames=3, audio=False)
    failed = museforge("apply", "effect.sketch", str(source), "-p", "count=2", "-o",
                       str(tmp_path / "new" / "deeper" / "more.mp4"), "--server", server.address)
    assert failed.returncode == 1 and "the effect made 2 images of one frame" in failed.stderr, failed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.mp4"]
    made = museforge("apply", "effect.denoise", str(source), "-o", str(tmp_path / "new" / "clean.mov"),
                     "--server", server.address)
    assert made.returncode == 0, made.stderr
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["clean.mov"]
