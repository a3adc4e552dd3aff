"""SMPTE timecode: non-drop-frame as counted, and drop-frame (";") at 29.97 and 59.94, where a
part cut from a video must start at the label a clock-true count shows."""

from __future__ import annotations

from fractions import Fraction

import pytest

from museforge.engine.codecs.timecode import advanced, frames_of, is_drop_frame, length_text, timecode_of

NTSC = Fraction(30000, 1001)


def test_a_drop_frame_start_advances_as_drop_frame() -> None:
    assert advanced("01:00:00;00", 17, NTSC) == "01:00:00;17"
    assert advanced("01:00:00;00", 17_982, NTSC) == "01:10:00;00"  # ten minutes of 29.97
    assert advanced("00:00:59;29", 1, NTSC) == "00:01:00;02"  # ;00 and ;01 are skipped
    assert advanced("00:09:59;29", 1, NTSC) == "00:10:00;00"  # but not at a tenth minute
    assert advanced("00:00:59;59", 1, Fraction(60000, 1001)) == "00:01:00;04"
    # Non-drop-frame, and ";" at a rate that has no drop-frame, count as before.
    assert advanced("01:00:00:00", 17_982, NTSC) == "01:09:59:12"
    assert advanced("01:00:00;00", 25, Fraction(25)) == "01:00:01:00"
    assert not is_drop_frame("01:00:00;00", Fraction(25)) and is_drop_frame("01:00:00;00", NTSC)


@pytest.mark.parametrize("fps", [NTSC, Fraction(60000, 1001)])
def test_drop_frame_labels_and_frames_go_both_ways(fps: Fraction) -> None:
    for frame in range(0, 2 * 3600 * 60, 13):
        label = timecode_of(frame, fps, drop_frame=True)
        assert frames_of(label, fps, drop_frame=True) == frame, label
    # The shot and cut lists read every label as non-drop-frame, as they write them.
    assert frames_of("01:00:00;00", NTSC) == 108_000


@pytest.mark.parametrize(("seconds", "said"), [
    (7204, "2 h 00 min 04 s"), (7200, "2 h 00 min 00 s"), (750.5, "12 min 30.5 s"), (61, "1 min 01 s"),
    (59, "59 s"), (0.25, "0.25 s")])
def test_a_length_reads_as_people_say_it(seconds: float, said: str) -> None:
    # A file of 2 h 0 min 4 s was "2.0 hours long; at most 2 hours are taken": a refusal that read as none.
    assert length_text(seconds) == said
