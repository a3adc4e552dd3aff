"""video.shots' parts without a server: features, decoding, matching, timecodes, the three file formats."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from museforge.engine.codecs.timecode import frames_of, timecode_of
from museforge.engine.generator import Media
from museforge.plugins.video.shot_boundaries import Boundary, boundaries
from museforge.plugins.video.shot_clips import Material, compose, labels
from museforge.plugins.video.shot_features import ANALYSIS, FEATURES, features_of
from museforge.plugins.video.shot_lists import ShotList
from museforge.plugins.video.shots_quality import Detection, Truth, count
from museforge.plugins.video.video_encoders import VIDEO_ENCODERS

WIDTH, HEIGHT = ANALYSIS


def scene(seed: int) -> np.ndarray:
    """A textured picture wider than the frame, to pan over."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 4, 3), dtype=np.uint8)
    return np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)  # HEIGHT x 2*WIDTH


def test_a_cut_stands_out_where_a_pan_explains_itself() -> None:
    first, second = scene(1), scene(2)
    pan = [first[:, 4 * t:4 * t + WIDTH] for t in range(6)]  # 4 px a frame: 1 feature pixel
    frames = np.stack([*pan, second[:, :WIDTH]])
    f = features_of(frames)
    diff, shifted = FEATURES.index("diff"), FEATURES.index("diff_shifted")
    assert f[1:6, diff].min() > 0.05  # the pan changes every pixel...
    assert f[1:6, shifted].max() < 0.02  # ...but one shift explains it
    assert f[6, shifted] > 5 * f[1:6, shifted].max()  # the cut is not explained by any shift


def test_boundaries_from_probabilities() -> None:
    p = np.zeros((60, 2), np.float32)
    p[10, 0] = 0.9  # a cut
    p[11, 0] = 0.7  # its neighbour: not a second cut
    p[30:38, 1] = 0.8  # a dissolve
    p[33, 0] = 0.9  # a cut inside the dissolve is the dissolve
    p[50:52, 1] = 0.9  # too short to be a transition
    found = boundaries(p)
    assert found == [Boundary("cut", 10, 10, pytest.approx(0.9)),
                     Boundary("gradual", 30, 37, pytest.approx(0.8))]
    assert found[1].frame == 33
    assert boundaries(p, threshold=0.95) == []
    assert [b.start for b in boundaries(p, threshold=0.6)] == [10, 30]


def test_matching_tolerances_and_false_alarms() -> None:
    truths = [Truth("cut", 20, 20), Truth("dissolve", 40, 52)]
    counts = count(truths, [Detection(21, False), Detection(37, True), Detection(80, False)])
    assert counts.found == {"cut": 1, "gradual": 1} and counts.false == {"cut": 1, "gradual": 0}
    late = count(truths, [Detection(22, False), Detection(56, True)])  # 2 frames late; 4 past the end
    assert late.missed == {"cut": 1, "gradual": 1} and late.false == {"cut": 1, "gradual": 1}
    one = count([Truth("cut", 20, 20)], [Detection(19, False), Detection(20, False)])
    assert one.found["cut"] == 1 and one.false["cut"] == 1  # one detection per transition
    assert count(truths, [Detection(20, False), Detection(46, True)]).f1() == 1.0


def test_composed_clips_label_what_they_show() -> None:
    rng = np.random.default_rng(3)
    photos = tuple(scene(s) for s in range(4))
    clip = compose(rng, Material(photos, ()), shots=6, strong=False)
    target = labels(clip)
    assert len(clip.transitions) == 5 and clip.frames.shape[1:] == (HEIGHT, WIDTH, 3)
    for t in clip.transitions:
        if t.kind == "cut":
            assert target[0, t.start] == 1 and t.start == t.end
        else:
            assert target[1, t.start:t.end + 1].all() and 6 <= t.end - t.start <= 30
    assert target[0].sum() == sum(t.kind == "cut" for t in clip.transitions)


def test_timecodes() -> None:
    assert timecode_of(90_000, Fraction(25)) == "01:00:00:00"
    assert frames_of("01:00:00:00", Fraction(25)) == 90_000
    assert frames_of("00:00:01:05", Fraction(30000, 1001)) == 35  # counted at 30 (non-drop)
    assert timecode_of(frames_of("10:59:59:23", Fraction(24)) + 1, Fraction(24)) == "11:00:00:00"
    assert frames_of("junk", Fraction(25)) == 0 and frames_of(None, Fraction(25)) == 0


def shot_list() -> ShotList:
    return ShotList("take 1.mp4", Fraction(25), 100, "01:00:00:00",
                    (Boundary("cut", 40, 40, 0.97), Boundary("gradual", 60, 71, 0.8)))


def test_the_three_formats() -> None:
    shots = shot_list()
    assert shots.shots == [(0, 40), (40, 65), (65, 100)]
    encoders = {e.name: e for e in VIDEO_ENCODERS}
    media = Media(kind="video", data=shots, index=0)
    provenance = {"effect": "video.shots", "seed": "0"}
    document = json.loads(encoders["json"].encode(media, provenance))
    assert [b["timecode"] for b in document["boundaries"]] == ["01:00:01:15", "01:00:02:15"]
    assert document["shots"][1] == {"start": 40, "end": 65, "start_timecode": "01:00:01:15",
                                    "end_timecode": "01:00:02:15"}
    assert document["museforge"] == provenance
    edl = encoders["edl"].encode(media, provenance).decode()
    events = [line for line in edl.split("\r\n") if line[:3].isdigit()]
    assert events[0].split()[1:] == ["TAKE1", "V", "C", "01:00:00:00", "01:00:01:15", "01:00:00:00",
                                     "01:00:01:15"]
    assert len(events) == 3 and "GRADUAL TRANSITION: FRAMES 60-71" in edl
    with pytest.raises(TypeError, match="ShotList or Cut"):
        encoders["edl"].encode(Media(kind="video", data=np.zeros(3), index=0), provenance)


def test_opentimelineio_reads_the_timeline() -> None:
    otio = pytest.importorskip("opentimelineio")
    media = Media(kind="video", data=shot_list(), index=0)
    data = {e.name: e for e in VIDEO_ENCODERS}["otio"].encode(media, {"effect": "video.shots"})
    timeline = otio.adapters.read_from_string(data.decode(), "otio_json")
    [track] = timeline.tracks
    ranges = [(c.source_range.start_time.value, c.source_range.duration.value) for c in track]
    assert ranges == [(90_000, 40), (90_040, 25), (90_065, 35)]
    assert track[1].metadata["museforge"]["boundary"] == "cut"
    assert track.duration().value == 100


@pytest.mark.parametrize(("fps", "start"), [(Fraction(24000, 1001), "01:00:00:00"),
                                            (Fraction(30000, 1001), "00:10:00;00"),
                                            (Fraction(60000, 1001), "01:00:00;00")])
def test_the_timeline_starts_where_the_sources_timecode_says(fps: Fraction, start: str) -> None:
    # Before, a 23.976 source's 01:00:00:00 was written 86 frames early (rescaled as clock time).
    otio = pytest.importorskip("opentimelineio")
    shots = ShotList("take 1.mp4", fps, 100, start, (Boundary("cut", 40, 40, 0.97),))
    data = {e.name: e for e in VIDEO_ENCODERS}["otio"].encode(Media(kind="video", data=shots, index=0), {})
    [track] = otio.adapters.read_from_string(data.decode(), "otio_json").tracks
    expected = otio.opentime.from_timecode(start, float(fps))
    assert track[0].source_range.start_time.value == expected.value
    assert track[1].source_range.start_time.value == expected.value + 40
    assert otio.opentime.to_timecode(track[0].source_range.start_time, float(fps)) == start
