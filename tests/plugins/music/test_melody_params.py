"""music.melody's request plumbing without a server: the size estimate, a loop's drum, the banks listed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from museforge.plugins.music import soundfont
from museforge.plugins.music.melody import MelodyParams, bar_notes, build_piece, estimate
from museforge.plugins.music.sampler import SampledBar


def test_stems_are_estimated_for_the_layers_that_sound() -> None:
    def size(**settings: object) -> int:
        return estimate(MelodyParams(stems=True, **settings), 1).bytes

    # Folk and chorale have no drum: intensity 4 is the same band, and the same files, as 3.
    assert size(style="folk", intensity=4) == size(style="folk", intensity=3)
    assert size(style="chorale", intensity=4) == size(style="chorale", intensity=3)
    assert size(style="celtic", intensity=4) > size(style="celtic", intensity=3)
    assert size(style="folk", accompaniment=False) == size(style="folk", intensity=1)


@pytest.mark.parametrize("loop", [False, True])
def test_the_drum_plays_through_a_loops_last_bar(loop: bool) -> None:
    piece = build_piece(MelodyParams(style="celtic", bars=4, loop=loop))
    strokes = [sum(note.voice == "percussion" for note in bar_notes(SampledBar(0, bar, ()), piece, "celtic"))
               for bar in range(piece.bars)]
    assert strokes[:3] == [strokes[0]] * 3 and strokes[0] > 1
    # A piece that ends stops on one stroke; a loop's last bar leads back into its first.
    assert strokes[3] == (strokes[0] if loop else 1)


def test_only_banks_a_request_can_name_are_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSEFORGE_SOUNDFONT_PATH", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "nothing-here"))
    for name in (".hidden", "Default", "TimGM6mb", "Studio"):
        shutil.copyfile(soundfont.default_soundfont().path, tmp_path / f"{name}.sf2")
    listed = soundfont.available_soundfonts()
    # Banks the machine has (/usr/share/sounds/sf2, ...) are listed too; of these files, one.
    assert sorted(name for name, path in listed.items() if path.parent == tmp_path) == ["Studio"]
    assert not {".hidden", "Default", "TimGM6mb"} & set(listed)
    assert listed["default"] == soundfont.default_soundfont().path
