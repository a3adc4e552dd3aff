"""A video written at another rate than its source's (effect.interpolate) starts at the same moment:
its timecode is counted at the new rate, drop-frame only where that rate has it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from museforge.engine.codecs.video import probe
from tests.core.test_cli import museforge
from tests.core.test_video import make_video


@pytest.mark.parametrize(("fps", "start", "made", "rate", "expected"), [
    (Fraction(24), "01:00:00:12", 1, Fraction(48), "01:00:00:24"),  # half a second past the hour
    (Fraction(30000, 1001), "01:00:00;00", 1, Fraction(60000, 1001), "01:00:00;00"),  # drop-frame both
    # 89.91 fps has no drop-frame: the same frame, counted plainly at 90 a second.
    (Fraction(30000, 1001), "01:00:00;00", 2, Fraction(90000, 1001), "00:59:56:36"),
])
def test_interpolating_moves_the_timecode_to_the_new_rate(tmp_path: Path, fps: Fraction, start: str,
                                                          made: int, rate: Fraction, expected: str) -> None:
    source = make_video(tmp_path / "shot.mov", frames=3, fps=fps, audio=False, timecode=start)
    output = tmp_path / "smooth.mov"
    result = museforge("apply", "effect.interpolate", str(source), "-o", str(output), "--local",
                       "--plugins", "effect", "-p", f"frames={made}")
    assert result.returncode == 0, result.stderr
    info = probe(output)
    assert (info.fps, info.timecode) == (rate, expected)
