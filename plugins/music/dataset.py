"""The parsed melody dataset: built once from music21's corpus, cached as one .npz.

Parsing the three collections takes minutes (music21 reads each score in full), so the
result is cached. A copy ships in the repository (``plugins/music/data/melodies.npz``,
a few hundred KB) so tests and exports start at once; ``python -m
museforge.plugins.music.dataset`` rebuilds it from the installed music21 corpus, and a
test checks that the shipped copy matches a fresh parse of sample pieces.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from museforge.export.datasets import TrainingData

from .npz_cache import read_cache, write_cache
from .tokens import STYLES, Melody, NoteEvent

DATA_FILE = Path(__file__).parent / "data" / "melodies.npz"
# Per-style caps keep the parse to a few minutes and the styles within 4x of each other
# (the chorales are about 370 pieces in all).
LIMITS = {"chorale": None, "folk": 1500, "celtic": 1500}


@dataclass(frozen=True)
class MelodySet:
    """Melodies with where they came from; ``fingerprint`` hashes the content."""

    melodies: tuple[Melody, ...]
    source: str
    fingerprint: str

    def split(self, held_out: bool) -> list[Melody]:
        from .corpus import is_held_out

        return [m for m in self.melodies if is_held_out(m.id) == held_out]

    def of_style(self, style: str, held_out: bool | None = None) -> list[Melody]:
        pool = self.melodies if held_out is None else self.split(held_out)
        return [m for m in pool if m.style == style]


def fingerprint(melodies: Sequence[Melody]) -> str:
    digest = hashlib.sha256()
    for m in melodies:
        digest.update(json.dumps([m.id, m.style, m.metre, m.tonic, m.mode,
                                  [(e.pitch, e.start, e.length) for e in m.events]]).encode())
    return digest.hexdigest()


def save(melodies: Sequence[Melody], source: str, path: Path = DATA_FILE) -> MelodySet:
    counts = np.array([len(m.events) for m in melodies], np.int32)
    events = np.array([(e.pitch, e.start, e.length) for m in melodies for e in m.events], np.int32)
    meta = [{"id": m.id, "style": m.style, "metre": list(m.metre), "tonic": m.tonic, "mode": m.mode}
            for m in melodies]
    print_ = fingerprint(melodies)
    write_cache(path, {"pieces": meta, "source": source, "fingerprint": print_}, counts=counts, events=events)
    return MelodySet(tuple(melodies), source, print_)


def load(path: Path = DATA_FILE) -> MelodySet:
    (counts, events), info = read_cache(path, "museforge.plugins.music.dataset", "counts", "events")
    melodies, cursor = [], 0
    for meta, count in zip(info["pieces"], counts.tolist(), strict=True):
        rows = events[cursor:cursor + count].tolist()
        cursor += count
        melodies.append(Melody(meta["id"], meta["style"], (meta["metre"][0], meta["metre"][1]),
                               meta["tonic"], meta["mode"], tuple(NoteEvent(*r) for r in rows)))
    return MelodySet(tuple(melodies), info["source"], info["fingerprint"])


def build(path: Path = DATA_FILE, limits: dict[str, int | None] | None = None,
          quiet: bool = False) -> MelodySet:
    """Parse the corpus (minutes) and write the cache; prints what was kept and skipped."""
    import music21

    from .corpus import ParseReport, parse_style

    report = ParseReport()
    melodies: list[Melody] = []
    started = time.monotonic()
    for style in STYLES:
        def tick(name: str, count: int) -> None:
            if not quiet and count % 100 == 0:
                print(f"  {name}: {count} melodies, {time.monotonic() - started:.0f} s", file=sys.stderr)

        melodies += parse_style(style, (limits or LIMITS)[style], report, tick)
    source = (f"music21 {music21.__version__} corpus: Bach chorales (soprano), Essen folksongs "
              f"(German books), O'Neill's 1850 + Ryan's Mammoth; kept {dict(report.kept)}")
    result = save(melodies, source, path)
    if not quiet:
        for reason, count in sorted(report.skipped.items()):
            print(f"  skipped {count:5d}  {reason}", file=sys.stderr)
        print(f"wrote {path} ({path.stat().st_size // 1024} KB, {len(melodies)} melodies, "
              f"{time.monotonic() - started:.0f} s)", file=sys.stderr)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m museforge.plugins.music.dataset",
        description="Parse music21's corpus into the melody cache the music recipe trains on.")
    parser.add_argument("--output", type=Path, default=DATA_FILE, help=f"cache file (default {DATA_FILE})")
    args = parser.parse_args(argv)
    build(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# What the recipes train on, and the terms it comes under (see docs/licences.md).
MELODY_TRAINING_DATA = (
    TrainingData(
        name=('J.S. Bach four-part chorales, soprano lines (music21 corpus bach/*.mxl, *.xml), 343 '
              'pieces kept'),
        licence='unverified',
        registry='pypi', package='music21'),
    TrainingData(
        name=('Essen Folksong Collection, German books altdeu/ballad/boehme (ABC by Seymour Shlien, '
              'music21 corpus essenFolksong/), 1500 pieces kept'),
        licence="non-commercial use only (the Essen collection's permission to music21)",
        attribution=('Essen Folksong Collection (EsAC), encoded under the supervision of Helmut '
                     'Schaffrath, maintained by Ewa Dahlig-Turek (https://www.esac-data.org); ABC '
                     'encodings by Seymour Shlien'),
        commercial_use=False, registry='pypi', package='music21'),
    TrainingData(
        name=("O'Neill's Music of Ireland (1850 melodies), ABC transcriptions (music21 corpus "
              'oneills1850/), 1228 pieces kept'),
        licence='unverified',
        registry='pypi', package='music21'),
    TrainingData(
        name=("Ryan's Mammoth Collection (1883), ABC transcriptions (music21 corpus ryansMammoth/), "
              '272 pieces kept'),
        licence='unverified',
        registry='pypi', package='music21'),
)
