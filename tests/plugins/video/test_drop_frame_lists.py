"""Drop-frame sources in the shot and cut lists: an editor reading the EDL or JSON back lands on the
same source frames as the OpenTimelineIO file says (a 29.97 source at 01:00:00;00 is frame 107,892)."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from museforge.engine.codecs.timecode import frames_of
from museforge.engine.generator import Media
from museforge.plugins.video.autocut_plan import Picked
from museforge.plugins.video.cut_lists import Cut, Source
from museforge.plugins.video.shot_boundaries import Boundary
from museforge.plugins.video.shot_lists import ShotList
from museforge.plugins.video.video_encoders import VIDEO_ENCODERS
from tests.core.test_cli import museforge
from tests.core.test_video import make_video

DF = Fraction(30000, 1001)
ENCODERS = {e.name: e for e in VIDEO_ENCODERS}
EVENT = re.compile(r"^(\d{3})\s+\S+\s+(V|AA)\s+C\s+(\S+) (\S+) (\S+) (\S+)$")


def edl_events(edl: str, fps: Fraction) -> list[tuple[int, int, int, int]]:
    """Each event's source in/out and record in/out as frames, read as its separators say."""
    found = []
    for line in edl.splitlines():
        match = EVENT.match(line)
        if match:
            found.append(tuple(frames_of(tc, fps, drop_frame=True) for tc in match.groups()[2:]))
    return found


def encoded(name: str, data: object) -> str:
    return ENCODERS[name].encode(Media(kind="video", data=data, index=0), {"effect": "test"}).decode()


def test_a_drop_frame_source_gives_a_drop_frame_edl_and_json() -> None:
    otio = pytest.importorskip("opentimelineio")
    shots = ShotList("take.mov", DF, 2000, "01:00:00;00", (Boundary("cut", 1800, 1800, 0.9),))
    edl = encoded("edl", shots)
    assert "FCM: DROP FRAME" in edl and "NON-DROP" not in edl
    # 1,800 frames on is past the first minute: 01:01:00;02 (two frame numbers skipped).
    assert edl_events(edl, DF) == [(107_892, 109_692, 107_892, 109_692), (109_692, 109_892, 109_692, 109_892)]
    assert "01:00:00;00 01:01:00;02" in edl
    from_edl = otio.adapters.read_from_string(edl, "cmx_3600", rate=float(DF))
    from_otio = otio.adapters.read_from_string(encoded("otio", shots), "otio_json")
    starts = [[round(c.source_range.start_time.value) for c in t.find_clips()] for t in (from_edl, from_otio)]
    assert starts[0] == starts[1] == [107_892, 109_692]
    document = json.loads(encoded("json", shots))
    assert document["start_timecode"] == "01:00:00;00"
    assert [s["start_timecode"] for s in document["shots"]] == ["01:00:00;00", "01:01:00;02"]
    assert document["boundaries"][0]["timecode"] == "01:01:00;02"


def test_a_non_drop_source_keeps_non_drop_timecodes() -> None:
    shots = ShotList("take.mov", DF, 100, "01:00:00:00", (Boundary("cut", 40, 40, 0.9),))
    edl = encoded("edl", shots)
    assert "FCM: NON-DROP FRAME" in edl and ";" not in edl.split("* museforge")[0]
    assert edl_events(edl, DF)[0][0] == 108_000


def test_a_cut_of_drop_frame_and_25_fps_sources_says_which_is_which() -> None:
    otio = pytest.importorskip("opentimelineio")
    sources = (Source("a.mov", DF, 3000, 64, 48, "01:00:00;00", False),
               Source("b.mp4", Fraction(25), 500, 64, 48, "10:00:00:00", False))
    shots = (Picked(0, 1800, 60, 0, 60, 0.5, True), Picked(1, 100, 50, 60, 60, 0.5, True))
    cut = Cut("reel", DF, 120, 64, 48, sources, shots, None, 0.0, (), None, None)
    edl = encoded("edl", cut)
    lines = edl.splitlines()
    assert lines[1] == "FCM: DROP FRAME" and "FCM: NON-DROP FRAME" in lines
    events = edl_events(edl, DF)
    assert events[0][:2] == (107_892 + 1800, 107_892 + 1860)
    assert events[0][2:] == (0, 60) and events[1][2:] == (60, 120)
    assert frames_of(EVENT.match(lines[lines.index("FCM: NON-DROP FRAME") + 1]).group(3),  # type: ignore[union-attr]
                     Fraction(25)) == 900_000 + 100
    from_otio = otio.adapters.read_from_string(encoded("otio", cut), "otio_json")
    assert round(from_otio.tracks[0][0].source_range.start_time.value) == events[0][0]
    document = json.loads(encoded("json", cut))
    assert [s["source_in_timecode"] for s in document["shots"]] == ["01:01:00;02", "10:00:04:00"]


def test_video_shots_over_a_drop_frame_mov_writes_a_drop_frame_edl(tmp_path: Path) -> None:
    source = make_video(tmp_path / "df.mov", frames=12, fps=DF, audio=False, timecode="01:00:00;00")
    result = museforge("apply", "video.shots", str(source), "-o", str(tmp_path / "df.edl"), "--local",
                       "--plugins", "video")
    assert result.returncode == 0, result.stderr
    edl = (tmp_path / "df.edl").read_text()
    assert "FCM: DROP FRAME" in edl and "01:00:00;00 01:00:00;12" in edl
    assert edl_events(edl, DF)[0][:2] == (107_892, 107_904)
