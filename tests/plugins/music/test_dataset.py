"""The shipped melody cache is what a fresh parse of music21's corpus gives, and splits are whole pieces."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from museforge.plugins.music import corpus, dataset
from museforge.plugins.music.tokens import STYLES, encode


@pytest.fixture(scope="module")
def data() -> dataset.MelodySet:
    return dataset.load()


def test_cache_matches_a_fresh_parse_of_sample_pieces(data: dataset.MelodySet) -> None:
    from music21 import converter

    cached = {m.id: m for m in data.melodies}
    checked: Counter[str] = Counter()
    bach = [p for p in corpus._corpus_paths("bach") if p.stem in ("bwv10.7", "bwv26.6", "bwv3.6")]
    for path in bach:
        score: Any = converter.parse(path)
        bass: Any = [n for n in score.parts[-1].flatten().notes if n.quarterLength > 0][-1]
        melody, problem = corpus.melody_from_part(f"bach/{path.stem}", "chorale", score.parts[0],
                                                  int(bass.pitch.midi) % 12)
        assert melody is not None, problem
        assert cached[melody.id] == melody
        checked["chorale"] += 1
    sources = {"folk": ("essenFolksong", "ballad10", "essen"),
               "celtic": ("ryansMammoth", "7thRegimentReel", "ryansMammoth")}
    for style, (folder, stem, prefix) in sources.items():
        paths = [p for p in corpus._corpus_paths(folder) if p.stem == stem]
        for piece_id, part, tonic in corpus._abc_tunes(paths, prefix):
            melody, _ = corpus.melody_from_part(piece_id, style, part, tonic)
            if melody is not None and piece_id in cached:
                assert cached[piece_id] == melody
                checked[style] += 1
    assert all(checked[s] >= 1 for s in STYLES), checked


def test_every_piece_encodes_and_held_out_pieces_are_whole(data: dataset.MelodySet) -> None:
    train, held = data.split(held_out=False), data.split(held_out=True)
    assert not {m.id for m in train} & {m.id for m in held}
    for style in STYLES:
        share = len(data.of_style(style, held_out=True)) / len(data.of_style(style))
        assert 0.05 < share < 0.15, (style, share)
    for melody in data.melodies[::25]:
        encoded = encode(melody.events, melody.metre)
        assert len(encoded.tokens) == len(encoded.positions) == len(encoded.bars_left)
    assert dataset.fingerprint(data.melodies) == data.fingerprint
