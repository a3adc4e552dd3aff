"""video.shots served end to end: an MP4 in over gRPC, its shots out as JSON, EDL and OpenTimelineIO,
with the shipped model; and the refusals a damaged or wrong input gets, the server serving on."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import grpc
import numpy as np
import pytest

from museforge.client import Client, field_violations
from museforge.plugins.video.shot_clips import ComposedClip, Material, compose
from museforge.plugins.video.shot_data import HELD_OUT_PHOTOS, photo, write_mp4
from museforge.plugins.video.shots_quality import Detection, count
from tests.core.test_cli import museforge

EFFECT = "video.shots"


@pytest.fixture(scope="module")
def clip() -> ComposedClip:
    """Five shots of photographs the model never saw, hard cuts and gradual transitions mixed."""
    material = Material(tuple(photo(p) for p in HELD_OUT_PHOTOS), ())
    return compose(np.random.default_rng(5), material, shots=5, strong=False,
                   kinds=("cut", "dissolve", "fade"), weights=(0.5, 0.25, 0.25))


@pytest.fixture(scope="module")
def video(clip: ComposedClip, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("shots") / "take.mp4"
    return write_mp4(clip.frames, path, fps=25, timecode="01:00:00:00").read_bytes()


def test_the_shots_of_an_mp4_as_json(client: Client, clip: ComposedClip, video: bytes) -> None:
    [artifact] = client.apply_effect(EFFECT, [("take.mp4", video)], fmt="json").artifacts
    document = json.loads(artifact.data)
    assert document["video"] == "take.mp4" and document["fps"] == "25"
    assert document["frames"] == len(clip.frames) and document["start_timecode"] == "01:00:00:00"
    truths = list(clip.transitions)
    found = [Detection(b["frame"], b["kind"] == "gradual") for b in document["boundaries"]]
    counted = count(truths, found)
    assert counted.f1() >= 0.85, (truths, document["boundaries"])
    assert all(0.0 < b["confidence"] <= 1.0 for b in document["boundaries"])
    edges = [s["start"] for s in document["shots"]]
    assert edges[0] == 0 and document["shots"][-1]["end"] == len(clip.frames)
    provenance = document["museforge"]
    assert provenance["effect"] == EFFECT
    assert json.loads(provenance["inputs"])[0]["frames"] == len(clip.frames)
    assert "public domain" in provenance["training_data"]


def test_edl_and_opentimelineio_from_the_same_request(client: Client, video: bytes) -> None:
    inputs = [("take.mp4", video)]
    edl = client.apply_effect(EFFECT, inputs, fmt="edl").artifacts[0].data.decode()
    assert edl.startswith("TITLE: take.mp4\r\nFCM: NON-DROP FRAME")
    events = [line.split() for line in edl.split("\r\n") if line[:3].isdigit()]
    assert events[0][4] == "01:00:00:00" and len(events) >= 4
    assert all(a[5] == b[4] for a, b in itertools.pairwise(events))  # shots abut
    otio = pytest.importorskip("opentimelineio")
    data = client.apply_effect(EFFECT, inputs, fmt="otio").artifacts[0].data.decode()
    [track] = otio.adapters.read_from_string(data, "otio_json").tracks
    assert len(track) == len(events)
    assert track[0].source_range.start_time.value == 90_000  # 01:00:00:00 at 25 fps


def test_progress_streams_while_frames_are_read(client: Client, video: bytes) -> None:
    events = list(client.stream_apply_effect(EFFECT, [("take.mp4", video)], fmt="json"))
    stages = [e.progress.stage for e in events if e.HasField("progress")]
    assert "reading frames" in stages and "finding boundaries" in stages
    assert sum(e.HasField("artifact") for e in events) == 1


def zeroed_inside(video: bytes) -> bytes:
    """The video with 3,000 bytes of its frames zeroed a third of the way in."""
    start = video.index(b"mdat")
    at = start + (len(video) - start) // 3
    return video[:at] + bytes(3000) + video[at + 3000:]


@pytest.mark.parametrize(("name", "damage", "words"), [
    ("cut.mp4", lambda v: v[:len(v) // 3], "cut.mp4: not a video this build of FFmpeg can read, or damaged"),
    ("empty.mp4", lambda v: b"", "empty"),
    ("noise.mp4", lambda v: v[:12] + bytes(range(256)) * 40, "not a video"),
    ("still.png", lambda v: b"\x89PNG\r\n\x1a\n" + v[8:200], "png input is not accepted"),
    ("mid.mp4", lambda v: zeroed_inside(v), "damaged after frame"),  # passes the first look, then fails
])
def test_bad_files_are_refused_naming_the_input(client: Client, video: bytes, name: str, damage: object,
                                                words: str) -> None:
    data = damage(video)  # type: ignore[operator]
    with pytest.raises(grpc.RpcError) as failure:
        client.apply_effect(EFFECT, [(name, data)], fmt="json")
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = dict(field_violations(failure.value))
    assert words in violations["inputs[0]"], violations
    assert client.apply_effect(EFFECT, [("take.mp4", video)], fmt="json").artifacts  # still serving


def test_videos_sent_to_an_effect_of_two_images_are_told_what_to_do(client: Client, video: bytes) -> None:
    with pytest.raises(grpc.RpcError) as failure:  # one video, a frame-wise effect: see test_video_through
        client.apply_effect("effect.interpolate", [("take.mp4", video), ("next.mp4", video)])
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "takes images, not video files" in dict(field_violations(failure.value))["inputs[0]"]


def test_a_cli_user_gets_the_shot_list_of_a_local_file(tmp_path: Path, video: bytes) -> None:
    source = tmp_path / "take.mp4"
    source.write_bytes(video)
    result = museforge("apply", EFFECT, str(source), "-o", str(tmp_path / "take.edl"), "--local")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "take.edl").read_text().startswith("TITLE: take.mp4")
