"""The token encoding round-trips, and the sampler's constraints hold whatever the model says."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from museforge.plugins.music.sampler import MelodySampler, PieceRequest, beat_length
from museforge.plugins.music.theory import detect_mode, in_scale_fraction, pitch_class, scale_pitch_classes
from museforge.plugins.music.tokens import (
    BAR,
    END,
    TIE,
    VOCABULARY,
    NoteEvent,
    bar_length,
    decode,
    encode,
    is_pitch_slot,
)

STATE = (2, 8)


def test_encode_decode_round_trip_with_pickup_and_tie() -> None:
    # 3/4: a quarter pickup, then a note tied over the bar line.
    events = (NoteEvent(67, 8, 4), NoteEvent(72, 12, 8), NoteEvent(71, 20, 8), NoteEvent(-1, 28, 4),
              NoteEvent(72, 32, 4))
    encoded = encode(events, (3, 4))
    assert encoded.tokens[0] == BAR and encoded.tokens[-1] == END
    assert TIE in encoded.tokens.tolist()  # 71 runs from 20 to 28, over the bar line at 24
    assert encoded.tokens.tolist().count(BAR) == 3  # bars 0, 1, 2
    decoded = decode(encoded.tokens)
    # The pickup's leading silence comes back as a rest; the tie is merged again.
    assert decoded == [NoteEvent(-1, 0, 8), *events]


def test_clock_features_follow_the_bar() -> None:
    events = (NoteEvent(60, 0, 4), NoteEvent(62, 4, 4), NoteEvent(64, 8, 8), NoteEvent(65, 16, 16))
    encoded = encode(events, (4, 4))
    tokens, positions = encoded.tokens.tolist(), encoded.positions.tolist()
    bars_left = encoded.bars_left.tolist()
    # After the third note's duration the bar is full: position 0, one bar left.
    third_duration = [i for i, t in enumerate(tokens) if not is_pitch_slot(t) and t not in (BAR, END)][2]
    assert positions[third_duration] == 0 and bars_left[third_duration] == 1
    assert positions[1] == 0 and positions[3] == 4  # pitch slots keep the clock; durations move it


def test_mode_detection_tells_dorian_from_minor() -> None:
    d_dorian = [NoteEvent(p, i * 4, 4) for i, p in enumerate([62, 64, 65, 67, 69, 71, 72, 74, 71, 69, 62])]
    d_minor = [NoteEvent(p, i * 4, 4) for i, p in enumerate([62, 64, 65, 67, 69, 70, 72, 74, 70, 69, 62])]
    modes = ("major", "minor", "dorian", "mixolydian")
    assert detect_mode(d_dorian, 2, modes) == "dorian"
    assert detect_mode(d_minor, 2, modes) == "minor"
    assert detect_mode(d_dorian, 2, ("major", "minor")) is None  # B natural is not D minor


def test_scales_and_key_names() -> None:
    assert pitch_class("Bb") == pitch_class("A#") == 10
    with pytest.raises(ValueError, match="unknown key"):
        pitch_class("H")
    assert scale_pitch_classes(9, "minor") == {9, 11, 0, 2, 4, 5, 7, 6, 8}  # A minor + F#, G#
    assert in_scale_fraction([60, 61, 62, 64], 0, "major") == 0.75


class UniformModel:
    """A model that knows nothing: every token equally likely. Constraints must still hold."""

    def __call__(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = len(feed["token"])
        return {"logits": np.zeros((batch, VOCABULARY), np.float32),
                "next_state": np.asarray(feed["state"])}


@pytest.mark.parametrize("metre", [(4, 4), (3, 4), (6, 8), (9, 8), (3, 2)])
def test_pieces_have_whole_bars_and_end_on_the_tonic(metre: tuple[int, int]) -> None:
    sampler = MelodySampler(UniformModel(), STATE)
    requests = [PieceRequest("folk", tonic, "major", metre, bars)
                for tonic, bars in ((2, 4), (7, 1), (11, 9))]
    rngs = [np.random.default_rng([5, i]) for i in range(len(requests))]
    bars = list(sampler.sample(requests, rngs))
    bar16 = bar_length(metre)
    for index, request in enumerate(requests):
        mine = [b for b in bars if b.piece == index]
        assert [b.bar for b in mine] == list(range(request.bars))  # every bar once, in order
        events = [e for b in mine for e in b.events]
        assert sum(e.length for e in events) == request.bars * bar16  # exactly the bars asked for
        assert all(b.bar * bar16 <= e.start < (b.bar + 1) * bar16 for b in mine for e in b.events)
        notes = [e for e in events if e.pitch >= 0]
        assert notes[-1].pitch % 12 == request.tonic
        assert notes[-1].start + notes[-1].length == request.bars * bar16  # no trailing rest


def test_sampling_is_seeded_and_independent_of_batch() -> None:
    sampler = MelodySampler(UniformModel(), STATE)
    one = PieceRequest("celtic", 2, "dorian", (6, 8), 4, end_on_tonic=False)

    def run(count: int) -> list[NoteEvent]:
        out = list(sampler.sample([one] * count, [np.random.default_rng([9, i]) for i in range(count)]))
        return [e for b in out if b.piece == 0 for e in b.events]

    assert run(1) == run(1) == run(3)


def test_top_k_one_is_greedy() -> None:
    class Prefers:
        def __call__(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            logits = np.zeros((len(feed["token"]), VOCABULARY), np.float32)
            logits[:, 5 + 72 - 36] = 5.0  # C5 pitch token
            logits[:, -24 + 3] = 5.0  # a quarter note (4 sixteenths)
            return {"logits": logits, "next_state": np.asarray(feed["state"])}

    request = PieceRequest("folk", 0, "major", (4, 4), 2, top_k=1)
    events = [e for b in MelodySampler(Prefers(), STATE).sample([request], [np.random.default_rng(0)])
              for e in b.events]
    assert events == [NoteEvent(72, i * 4, 4) for i in range(8)]


def test_compound_metres_beat_in_dotted_quarters() -> None:
    assert beat_length((6, 8)) == 6 and beat_length((3, 8)) == 2 and beat_length((4, 4)) == 4
