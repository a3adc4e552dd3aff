"""Bach's four voices on an eighth-note grid: what the harmony model learns from.

The chorales in music21's corpus have all four parts. Each is read with the melody
parser (:func:`corpus.melody_from_part`: sixteenth grid, pickup placed in its bar, ties
merged), so soprano, alto, tenor and bass line up bar for bar, then sampled at every
eighth note: the pitch sounding there (-1 for a rest) and whether a note starts there.

The result is cached in ``plugins/music/data/chorale_voices.npz`` (tens of KB), which
ships in the repository; ``python -m museforge.plugins.music.chorale_voices`` rebuilds
it from the installed corpus. Only :func:`load` is used by training and tests; parsing
needs music21 (export path only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .harmony_features import STEP, on_steps
from .npz_cache import read_cache, write_cache
from .tokens import bar_length

DATA_FILE = Path(__file__).parent / "data" / "chorale_voices.npz"
VOICES = ("soprano", "alto", "tenor", "bass")


@dataclass(frozen=True)
class Chorale:
    """One chorale in four voices: ``pitches``/``onsets`` are int8/bool [4, steps], S A T B."""

    id: str
    metre: tuple[int, int]
    tonic: int
    mode: str
    pitches: np.ndarray
    onsets: np.ndarray

    @property
    def bar_steps(self) -> int:
        return bar_length(self.metre) // STEP


@dataclass(frozen=True)
class ChoraleSet:
    chorales: tuple[Chorale, ...]
    source: str
    fingerprint: str

    def split(self, held_out: bool) -> list[Chorale]:
        from .corpus import is_held_out

        return [c for c in self.chorales if is_held_out(c.id) == held_out]


def fingerprint(chorales: Sequence[Chorale]) -> str:
    digest = hashlib.sha256()
    for c in chorales:
        digest.update(json.dumps([c.id, c.metre, c.tonic, c.mode]).encode())
        digest.update(c.pitches.astype(np.int8).tobytes() + c.onsets.tobytes())
    return digest.hexdigest()


def save(chorales: Sequence[Chorale], source: str, path: Path = DATA_FILE) -> ChoraleSet:
    meta = [{"id": c.id, "metre": list(c.metre), "tonic": c.tonic, "mode": c.mode,
             "steps": int(c.pitches.shape[1])} for c in chorales]
    printed = fingerprint(chorales)
    write_cache(path, {"pieces": meta, "source": source, "fingerprint": printed},
                pitches=np.concatenate([c.pitches for c in chorales], 1).astype(np.int8),
                onsets=np.concatenate([c.onsets for c in chorales], 1))
    return ChoraleSet(tuple(chorales), source, printed)


def load(path: Path = DATA_FILE) -> ChoraleSet:
    (pitches, onsets), info = read_cache(path, "museforge.plugins.music.chorale_voices", "pitches", "onsets")
    chorales, cursor = [], 0
    for meta in info["pieces"]:
        end = cursor + meta["steps"]
        chorales.append(Chorale(meta["id"], (meta["metre"][0], meta["metre"][1]), meta["tonic"], meta["mode"],
                                pitches[:, cursor:end].astype(np.int16), onsets[:, cursor:end].copy()))
        cursor = end
    return ChoraleSet(tuple(chorales), info["source"], info["fingerprint"])


def chorale_from_path(path: Path) -> tuple[Chorale | None, str | None]:
    """One corpus file as a :class:`Chorale`, or None and why it was skipped."""
    from music21 import converter

    from .corpus import _melody_events, melody_from_part

    piece_id = f"bach/{path.stem}"
    try:
        parts = list(converter.parse(path).parts)  # type: ignore[union-attr]
        if len(parts) != 4:
            return None, f"{len(parts)} parts"
        bass_notes = [n for n in parts[3].flatten().notes if n.quarterLength > 0]
        tonic = int(max(bass_notes[-1].pitches).midi) % 12
        soprano, problem = melody_from_part(piece_id, "chorale", parts[0], tonic)  # mode from the tune
        lower = [_melody_events(part, bar_length(soprano.metre)) for part in parts[1:]] if soprano else []
    except Exception as error:  # a malformed score: count it, go on
        return None, f"parse error {type(error).__name__}"
    problem = problem or next((p for _, p in lower if p), None)
    if soprano is None or problem is not None:
        return None, problem or "no soprano"
    lines = [soprano.events, *(tuple(events) for events, _ in lower)]
    end = max(line[-1].start + line[-1].length for line in lines)
    steps = -(-end // STEP)
    grids = [on_steps(line, 0, steps) for line in lines]
    return Chorale(piece_id, soprano.metre, soprano.tonic, soprano.mode,
                   np.stack([g.pitches for g in grids]), np.stack([g.onsets for g in grids])), None


def parse(progress: bool = True) -> tuple[list[Chorale], Counter[str]]:
    """Every four-part chorale whose voices all parse on the grid, in one metre and a served mode."""
    from .corpus import _corpus_paths

    kept: list[Chorale] = []
    skipped: Counter[str] = Counter()
    for path in _corpus_paths("bach"):
        if path.suffix not in (".mxl", ".xml"):
            continue
        chorale, problem = chorale_from_path(path)
        if chorale is None:
            skipped[problem or "?"] += 1
            continue
        kept.append(chorale)
        if progress and len(kept) % 50 == 0:
            print(f"  {len(kept)} chorales", file=sys.stderr)
    return kept, skipped


def build(path: Path = DATA_FILE) -> ChoraleSet:
    import music21

    started = time.monotonic()
    chorales, skipped = parse()
    source = (f"music21 {music21.__version__} corpus: Bach chorales (bach/*.mxl, *.xml), four voices on an "
              f"eighth-note grid; kept {len(chorales)}, skipped {dict(skipped)}")
    result = save(chorales, source, path)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB, {len(chorales)} chorales, "
          f"{time.monotonic() - started:.0f} s)", file=sys.stderr)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m museforge.plugins.music.chorale_voices",
        description="Parse music21's Bach chorales into the four-voice cache the harmony recipe trains on.")
    parser.add_argument("--output", type=Path, default=DATA_FILE, help=f"cache file (default {DATA_FILE})")
    build(parser.parse_args(argv).output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
