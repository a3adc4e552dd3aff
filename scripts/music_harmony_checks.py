"""Figures behind docs/music.md's harmony and loudness choices, from music.melody run in-process.

Usage::

    python scripts/music_harmony_checks.py fit              # folk/celtic tunes against their chords
    python scripts/music_harmony_checks.py loudness 8 10 6  # whole-piece LUFS error per look-ahead (s)

``fit`` makes 6 pieces of 16 bars in C major per style (seed 21, MIDI) and counts, over tune
notes with a chord sounding, how often the note is a chord tone and how often chord and note
still make one triad or seventh, for the model's chords and for one triad a bar
(:func:`harmony_quality.tune_against_chords`). ``loudness`` makes 8 WAVs of 16 bars per style
(seed 5) with the gain measured on the first N seconds and reports the worst and mean distance
of the whole piece from the target (pyloudnorm).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np


def generate(args: list[str], out: Path) -> list[Path]:
    from museforge.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(["generate", "music.melody", "--local", *args, "-o", str(out)])
    if code:
        raise SystemExit(f"generate failed ({code})")
    return sorted(out.iterdir())


def fit() -> None:
    import pretty_midi

    from museforge.plugins.music.harmony_quality import tune_against_chords
    from museforge.plugins.music.melody import STYLE_METRES
    from museforge.plugins.music.score import Note

    for style in ("folk", "celtic"):
        numerator, denominator = (int(x) for x in STYLE_METRES[style][0].split("/"))
        totals: Counter[str] = Counter()
        with tempfile.TemporaryDirectory() as folder:
            for path in generate(["-p", f"style={style}", "-p", "key=C", "-p", "bars=16", "--count", "6",
                                  "-f", "mid", "--seed", "21"], Path(folder)):
                score = pretty_midi.PrettyMIDI(str(path))
                quarter = 60.0 / float(score.get_tempo_changes()[1][0])
                notes = [Note(n.start / quarter, (n.end - n.start) / quarter, n.pitch, n.velocity,
                              track.name.lower()) for track in score.instruments for n in track.notes]
                totals.update(tune_against_chords(notes, numerator * 4 / denominator, 0, "major"))
        n = totals["notes"]
        print(f"{style}: {n} tune notes; a chord tone: model {totals['in_chord'] / n:.1%}, one triad a bar "
              f"{totals['in_chord_triad'] / n:.1%}; still one triad or seventh: model "
              f"{totals['fits'] / n:.1%}, one triad a bar {totals['fits_triad'] / n:.1%}")


def loudness(seconds: list[float]) -> None:
    import pyloudnorm
    import soundfile

    from museforge.plugins.music import melody

    for lookahead in seconds:
        melody.LOUDNESS_LOOKAHEAD_SECONDS = lookahead
        errors = []
        for style in ("chorale", "folk", "celtic"):
            with tempfile.TemporaryDirectory() as folder:
                for path in generate(["-p", f"style={style}", "-p", "bars=16", "--count", "8", "-f", "wav",
                                      "--seed", "5"], Path(folder)):
                    samples, rate = soundfile.read(path)
                    errors.append(pyloudnorm.Meter(rate).integrated_loudness(samples) - melody.TARGET_LUFS)
        error = np.abs(errors)
        print(f"look-ahead {lookahead:g} s: worst {error.max():.2f} LU, mean {error.mean():.2f} LU "
              f"over {len(error)} pieces")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=("fit", "loudness"))
    parser.add_argument("seconds", nargs="*", type=float, default=[8.0], help="look-ahead seconds (loudness)")
    args = parser.parse_args(argv)
    if args.check == "fit":
        fit()
    else:
        loudness(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
