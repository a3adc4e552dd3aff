"""A video sent to a frame-wise effect in one ApplyEffect call, through a real server: one video
back with the source's rate, colour, timecode and sound, the pixels `museforge apply` makes,
a progress event per frame, and bad requests refused naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import grpc
import numpy as np
import pytest

from museforge.client import Client, field_violations
from museforge.config import Settings
from museforge.engine.codecs.video import probe, read_frames
from tests.core.test_cli import museforge
from tests.core.test_video import decoded, make_video
from tests.servers import ServerThread

SEED = 5


@pytest.fixture(scope="module")
def effects() -> Iterator[Client]:
    with ServerThread(Settings(address="127.0.0.1:0", plugins=["effect"])) as server, \
            Client(server.address, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("through") / "shot.mp4", frames=24, timecode="10:00:00:00")


def test_a_clip_through_a_frame_wise_effect_comes_back_as_the_video_museforge_apply_makes(
    effects: Client, shot: Path, tmp_path: Path
) -> None:
    reply = effects.apply_effect("effect.denoise", [("shot.mp4", shot.read_bytes())], {"sigma": 15},
                                 seed=SEED)
    [video] = reply.artifacts
    assert (video.format, video.media_type) == ("mp4", "video/mp4")
    assert video.filename == "effect.denoise-shot-0000.mp4"
    assert video.metadata["effect"] == "effect.denoise" and video.metadata["seed"] == str(SEED)
    assert '"frames": 24' in video.metadata["inputs"] and video.metadata["x.frames"] == "24"
    (tmp_path / "one-call.mp4").write_bytes(video.data)
    info, frames, seconds = decoded(tmp_path / "one-call.mp4")
    assert (info.width, info.height, info.fps, len(frames), info.timecode) == (64, 48, Fraction(24), 24,
                                                                              "10:00:00:00")
    assert info.colour == {"color_primaries": 1, "color_trc": 1, "colorspace": 1, "color_range": 1}
    assert info.audio == "aac" and seconds == pytest.approx(1.0, abs=0.05)
    # The same frames, seed and encoder as the command line's, so the same file to the byte.
    result = museforge("apply", "effect.denoise", str(shot), "-o", str(tmp_path / "cli.mp4"),
                       "-p", "sigma=15", "--seed", str(SEED), "--local", "--plugins", "effect")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cli.mp4").read_bytes() == video.data
    # And the effect did something: the frames are not the source's.
    source = list(read_frames(probe(shot)))
    pairs = zip(source, frames, strict=True)
    assert max(float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in pairs) > 0.5


def test_a_stream_reports_every_frame_and_mov_asks_for_prores(effects: Client, shot: Path,
                                                              tmp_path: Path) -> None:
    events = list(effects.stream_apply_effect("effect.denoise", [shot.read_bytes()], seed=SEED,
                                              fmt="mov"))
    done = [e.progress.completed for e in events
            if e.HasField("progress") and e.progress.stage == "frames"]
    assert done == list(range(1, 25))
    [video] = [e.artifact for e in events if e.HasField("artifact")]
    assert (video.format, video.media_type) == ("mov", "video/quicktime")
    (tmp_path / "out.mov").write_bytes(video.data)
    info, frames, _ = decoded(tmp_path / "out.mov")
    assert (info.codec, len(frames), info.audio) == ("prores", 24, "aac")  # MOV holds the AAC as it was


@pytest.mark.parametrize(("inputs", "parameters", "fmt", "field", "words"), [
    ("video", {"sigma": -3}, "", "parameters.sigma", "greater than or equal"),
    ("video", {}, "png", "format", "use one of ['mp4', 'mov']"),
    ("damaged", {}, "", "inputs[0]", "shot.mp4"),
    ("cut short", {}, "", "inputs[0]", "cut short"),  # its header passes; its frames run out
    ("two", {}, "", "inputs", "takes 1 input(s), got 2"),
])
def test_bad_video_requests_are_refused_naming_the_field(
    effects: Client, shot: Path, inputs: str, parameters: dict[str, object], fmt: str, field: str, words: str
) -> None:
    data = shot.read_bytes()
    mkv = make_video(shot.with_suffix(".mkv"), frames=48, audio=False).read_bytes()
    sent = {"video": [("shot.mp4", data)], "damaged": [("shot.mp4", data[: len(data) // 3])],
            "cut short": [("shot.mkv", mkv[: len(mkv) * 2 // 3])],
            "two": [("shot.mp4", data), ("again.mp4", data)]}[inputs]
    with pytest.raises(grpc.RpcError) as caught:
        effects.apply_effect("effect.denoise", sent, parameters, fmt=fmt)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = dict(field_violations(caught.value))
    assert field in found and words in found[field], found


def test_an_effect_making_several_images_of_a_frame_is_refused_naming_its_parameters(
    effects: Client, shot: Path
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        effects.apply_effect("effect.sketch", [shot.read_bytes()], {"count": 2})
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = dict(field_violations(caught.value))
    assert "made 2 results of frame 0" in found["parameters"]
    # The server is still there for the next caller.
    assert len(effects.apply_effect("effect.sketch", [shot.read_bytes()]).artifacts) == 1
