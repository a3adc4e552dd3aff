"""Where `generate` and `apply` put their files, as a user runs them against a real server:
a file or a folder, several inputs, folders of inputs, inputs never overwritten, nothing left
behind by a failure, and -p text for text fields."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from museforge.engine.codecs.encoders import read_png_provenance
from museforge.engine.codecs.png_writer import write_png
from tests.core.test_cli import museforge
from tests.servers import ServerThread


def pictures(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for place, name in enumerate(names):
        (folder / name).write_bytes(write_png((np.arange(32 * 32).reshape(32, 32) * (place + 1) % 256)
                                              .astype(np.uint8)))
        made.append(folder / name)
    return made


def test_generate_into_a_file_or_numbered_beside_it(server: ServerThread, tmp_path: Path) -> None:
    one = museforge("generate", "image.digits", "--seed", "4", "-o", str(tmp_path / "seven.png"),
                    "--server", server.address)
    assert one.returncode == 0, one.stderr
    assert (tmp_path / "seven.png").is_file() and not (tmp_path / "seven.png").is_dir()
    many = museforge("generate", "image.digits", "-n", "2", "--seed", "4", "-o", str(tmp_path / "d.jpg"),
                     "--server", server.address)
    assert many.returncode == 0, many.stderr
    assert sorted(p.name for p in tmp_path.glob("d-*.jpg")) == ["d-0000.jpg", "d-0001.jpg"]
    assert (tmp_path / "d-0000.jpg").read_bytes()[:2] == b"\xff\xd8"  # the extension chose JPEG
    assert museforge("generate", "image.digits", "-f", "jpg", "-o", str(tmp_path / "f"),
                     "--server", server.address).returncode == 0  # jpg is jpeg
    assert list((tmp_path / "f").glob("*.jpeg")) or list((tmp_path / "f").glob("*.jpg"))


def test_stems_into_a_file_keep_their_names_beside_it(server: ServerThread, tmp_path: Path) -> None:
    made = museforge("generate", "music.melody", "-p", "bars=2", "-p", "stems=true", "--seed", "1",
                     "-o", str(tmp_path / "song.wav"), "--server", server.address)
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "song-bass.wav", "song-chords.wav", "song-melody.wav", "song.wav"]


def test_apply_takes_several_files_and_folders_one_at_a_time(server: ServerThread, tmp_path: Path) -> None:
    first, second = pictures(tmp_path / "in", ["a.png", "b.png"])
    pictures(tmp_path / "more", ["c.png"])
    done = museforge("apply", "effect.denoise", str(first), str(second), str(tmp_path / "more"),
                     "-o", str(tmp_path / "out"), "--seed", "1", "--server", server.address)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a-denoise.png", "b-denoise.png", "c-denoise.png"]
    alone = museforge("apply", "effect.denoise", str(first), "-o", str(tmp_path / "alone.png"), "--seed", "1",
                      "--server", server.address)
    assert alone.returncode == 0, alone.stderr
    assert (tmp_path / "out" / "a-denoise.png").read_bytes() == (tmp_path / "alone.png").read_bytes()
    to_file = museforge("apply", "effect.denoise", str(first), str(second), "-o", str(tmp_path / "x.png"),
                        "--server", server.address)
    assert to_file.returncode == 2 and "-o names a folder" in to_file.stderr


def test_a_folder_of_drawings_into_a_several_input_effect_is_a_batch(server: ServerThread,
                                                                     tmp_path: Path) -> None:
    """effect.sketch takes up to 4 inputs: a folder of 2 scans was read as a sketch and its hints
    (one result), one of 5 refused as too many inputs."""
    for count in (2, 5):
        names = [f"s{i}.png" for i in range(count)]
        pictures(tmp_path / f"scans{count}", names)
        done = museforge("apply", "effect.sketch", str(tmp_path / f"scans{count}"), "-o",
                         str(tmp_path / f"out{count}"), "--seed", "1", "--server", server.address)
        assert done.returncode == 0, done.stderr
        assert sorted(p.name for p in (tmp_path / f"out{count}").iterdir()) == [
            f"s{i}-sketch.png" for i in range(count)]
    alone = museforge("apply", "effect.sketch", str(tmp_path / "scans2" / "s1.png"), "-o",
                      str(tmp_path / "alone.png"), "--seed", "1", "--server", server.address)
    assert alone.returncode == 0, alone.stderr
    assert (tmp_path / "out2" / "s1-sketch.png").read_bytes() == (tmp_path / "alone.png").read_bytes()


def test_a_folder_with_a_damaged_file_goes_on_and_names_it(server: ServerThread, tmp_path: Path) -> None:
    # Before, the run stopped at the damaged frame with "inputs[0]: input is empty", naming no file.
    pictures(tmp_path / "frames", ["a.png", "c.png"])
    (tmp_path / "frames" / "b.png").write_bytes(b"")
    for where in (("--server", server.address), ("--local",)):
        out = tmp_path / f"out-{len(where)}"
        done = museforge("apply", "effect.denoise", str(tmp_path / "frames"), "-o", str(out), *where)
        assert done.returncode == 1, done.stderr
        assert sorted(p.name for p in out.iterdir()) == ["a-denoise.png", "c-denoise.png"]
        assert f"museforge: {tmp_path / 'frames' / 'b.png'}: inputs[0]: " in done.stderr, done.stderr
        assert "2 file(s) written from 3 inputs; 1 refused, named above" in done.stderr


def test_apply_never_writes_over_its_input(server: ServerThread, tmp_path: Path) -> None:
    [source] = pictures(tmp_path, ["plate.png"])
    before = source.read_bytes()
    refused = museforge("apply", "effect.denoise", str(source), "-o", str(source), "--server", server.address)
    assert refused.returncode == 2 and "would overwrite it" in refused.stderr
    same_folder = museforge("apply", "effect.denoise", str(source), str(source), "-o", str(tmp_path),
                            "--server", server.address)
    assert same_folder.returncode == 0, same_folder.stderr  # written as plate-denoise.png beside it
    assert source.read_bytes() == before and (tmp_path / "plate-denoise.png").is_file()


def test_a_failed_command_leaves_no_empty_folder(server: ServerThread, tmp_path: Path) -> None:
    failed = museforge("generate", "image.digits", "-p", "digit=12", "-o", str(tmp_path / "new" / "deeper"),
                       "--server", server.address)
    assert failed.returncode == 1 and "parameters.digit" in failed.stderr
    assert not (tmp_path / "new").exists()


def test_text_fields_take_number_like_text_from_the_command_line(server: ServerThread,
                                                                 tmp_path: Path) -> None:
    # music.melody's key is text: -p key=7 would have been the number 7, refused as not a string.
    made = museforge("generate", "music.melody", "-p", "bars=2", "-p", "key=7", "-f", "mid", "--seed", "2",
                     "-o", str(tmp_path), "--server", server.address)
    assert made.returncode == 1 and "parameters.key" in made.stderr and "unknown key '7'" in made.stderr
    digits = museforge("generate", "image.digits", "-p", "digit=7", "--seed", "1", "-o", str(tmp_path / "d"),
                       "--server", server.address, "--json")
    assert digits.returncode == 0, digits.stderr
    [path] = json.loads(digits.stdout)["files"]
    provenance = read_png_provenance(Path(path).read_bytes())
    assert json.loads(provenance["parameters"])["digit"] == 7  # a number field still gets a number


def test_an_existing_folder_with_a_dot_in_its_name_is_a_folder(server: ServerThread, tmp_path: Path) -> None:
    folder = tmp_path / "renders.png"  # a folder, however it is named
    folder.mkdir()
    made = museforge("generate", "image.digits", "--seed", "2", "-o", str(folder), "--server", server.address)
    assert made.returncode == 0, made.stderr
    [source] = list(folder.iterdir())
    applied = museforge("apply", "effect.denoise", str(source), "-o", str(folder), "--server", server.address)
    assert applied.returncode == 0, applied.stderr
    assert len(list(folder.iterdir())) == 2 and folder.is_dir()


def test_text_or_nothing_fields_keep_null_and_take_number_like_text() -> None:
    from museforge.cli.options import as_schema_says, parse_param

    schema = {"properties": {"label": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                             "look": {"$ref": "#/$defs/Look"}, "size": {"type": "integer"}},
              "$defs": {"Look": {"enum": ["stone", "7"]}}}
    given = [parse_param(text) for text in ("label=123", "look=7", "size=7")]
    assert as_schema_says(given, schema) == {"label": "123", "look": "7", "size": 7}
    assert as_schema_says([parse_param("label=null")], schema) == {"label": None}


def test_an_extension_and_a_format_that_disagree_are_refused(server: ServerThread, tmp_path: Path) -> None:
    # Before, the file was written with the --format's bytes under the other extension's name.
    [source] = pictures(tmp_path / "in", ["plate.png"])
    target = ("--server", server.address)
    for command in (["generate", "mesh.props", "-o", str(tmp_path / "prop.obj"), "-f", "glb"],
                    ["generate", "image.digits", "-o", str(tmp_path / "seven.png"), "-f", "jpeg"],
                    ["generate", "image.digits", "-o", str(tmp_path / "deep.jpg"), "-f", "png16"],
                    ["apply", "effect.denoise", str(source), "-o", str(tmp_path / "mism.png"), "-f", "exr"]):
        refused = museforge(*command, *target)
        assert refused.returncode == 2, (command, refused.stderr)
        assert f"--format {command[-1]} disagree" in refused.stderr, refused.stderr
    assert "(-o " + str(tmp_path / "prop.glb") + ")" in museforge(
        "generate", "mesh.props", "-o", str(tmp_path / "prop.obj"), "-f", "glb", *target).stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing written


def test_an_extension_and_a_format_that_agree_are_written_as_asked(server: ServerThread,
                                                                   tmp_path: Path) -> None:
    [source] = pictures(tmp_path / "in", ["plate.png"])
    target = ("--server", server.address, "--seed", "3")
    for command, name, starts in (
            (["generate", "image.digits", "-f", "jpg"], "a.jpeg", b"\xff\xd8"),
            (["generate", "image.digits", "-f", "JPEG"], "b.jpg", b"\xff\xd8"),
            (["generate", "image.digits", "-f", "png"], "c.png", b"\x89PNG"),
            (["generate", "music.melody", "-p", "bars=1", "-f", "mid"], "d.midi", b"MThd"),
            (["generate", "music.melody", "-p", "bars=1", "-f", "midi"], "e.mid", b"MThd"),
            (["generate", "mesh.props", "-f", "glb"], "f.glb", b"glTF"),
            (["apply", "effect.denoise", str(source), "-f", "exr"], "g.exr", b"\x76\x2f\x31\x01")):
        made = museforge(*command, "-o", str(tmp_path / name), *target)
        assert made.returncode == 0, (command, made.stderr)
        assert (tmp_path / name).read_bytes().startswith(starts), name
    for command in (["generate", "image.digits"], ["apply", "effect.denoise", str(source)]):
        deep = tmp_path / f"{command[0]}16.png"  # a 16-bit PNG is a .png
        assert museforge(*command, "-f", "png16", "-o", str(deep), *target).returncode == 0
        assert deep.read_bytes()[24] == 16  # IHDR bit depth


def test_generate_refuses_a_media_extension_its_generator_cannot_write(server: ServerThread,
                                                                       tmp_path: Path) -> None:
    # Before, -o song.mp3 made a folder song.mp3/ with an .ogg inside, and -o song.png failed on the
    # server as an invalid request (exit 1).
    for name in ("song.mp3", "song.png"):
        refused = museforge("generate", "music.melody", "-p", "bars=1", "-o", str(tmp_path / name),
                            "--server", server.address)
        assert refused.returncode == 2, refused.stderr
        assert f"music.melody cannot write {name[5:]}; it writes ogg, wav, flac, mid" in refused.stderr
        assert not (tmp_path / name).exists()
    local = museforge("generate", "music.melody", "-o", str(tmp_path / "song.mp3"), "--local", "--plugins",
                      "music")
    assert local.returncode == 2 and "it writes ogg, wav, flac, mid" in local.stderr, local.stderr
    target = ("--server", server.address)
    video = museforge("generate", "image.digits", "-o", str(tmp_path / "clip.mp4"), *target)
    assert video.returncode == 2 and "it writes png, png16, jpeg, webp, exr" in video.stderr, video.stderr
    # An extension museforge does not know stays a folder, as the README says.
    folder = museforge("generate", "image.digits", "-o", str(tmp_path / "renders.v2"), *target)
    assert folder.returncode == 0, folder.stderr
    assert [p.suffix for p in (tmp_path / "renders.v2").iterdir()] == [".png"]


def test_a_file_named_on_the_command_line_that_is_missing_is_a_usage_error(server: ServerThread,
                                                                            tmp_path: Path) -> None:
    missing = str(tmp_path / "nothing-here")
    for command, said in (
            (["models", "add", missing + ".onnx", "--name", "studio.x", "--repository", str(tmp_path)],
             "no such file"),
            (["plugins", "--tls-ca", missing + ".pem", "--server", server.address], "--tls-ca"),
            (["generate", "image.digits", "--tls-cert", missing + ".pem", "--tls-key", missing + ".key",
              "--server", server.address], "--tls-cert"),
            (["generators", "--config", missing + ".toml", "--server", server.address], "does not exist"),
            (["apply", "effect.upscale", missing + ".png", "-o", str(tmp_path / "o.png"), "--server",
              server.address], "cannot read")):
        result = museforge(*command)
        assert result.returncode == 2, (command, result.stderr)  # was 1, or 0 for an unread --config
        assert said in result.stderr and missing in result.stderr, result.stderr
