"""music.melody through a real server with the shipped model: formats, streaming, loops, bad input."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import grpc
import music21
import numpy as np
import pretty_midi
import pyloudnorm
import pytest
import soundfile

from museforge.client import Client, field_violations
from museforge.plugins.music.audio_formats import read_audio_provenance
from museforge.plugins.music.harmony_quality import tune_against_chords
from museforge.plugins.music.loop_points import read_loop_points
from museforge.plugins.music.melody import STYLE_METRES, TARGET_LUFS
from museforge.plugins.music.score import Note
from museforge.plugins.music.theory import in_scale_fraction

RATE = 48000


def read_notes(midi: bytes) -> list[Note]:
    """A MIDI file's notes as :class:`Note` (quarter-note beats), each voice named after its track."""
    score = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    quarter = 60.0 / float(score.get_tempo_changes()[1][0])
    return [Note(n.start / quarter, (n.end - n.start) / quarter, n.pitch, n.velocity, track.name.lower())
            for track in score.instruments for n in track.notes]


def decode(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples, rate


def test_listed_with_a_schema(client: Client) -> None:
    info = {g.name: g for g in client.generators()}["music.melody"]
    schema = json.loads(info.parameters_schema)
    assert info.modality == "audio" and set(info.formats) == {"ogg", "wav", "flac", "mid"}
    assert schema["properties"]["style"]["enum"] == ["chorale", "folk", "celtic"]
    assert schema["properties"]["bars"]["maximum"] == 128


@pytest.mark.parametrize("style", ["chorale", "folk", "celtic"])
def test_audio_is_stereo_loudness_normalised_and_as_long_as_the_bars(client: Client, style: str) -> None:
    params = {"style": style, "key": "G", "mode": "major", "bars": 12, "tempo": 120}
    reply = client.generate("music.melody", params, seed=11, fmt="flac")
    artifact = reply.artifacts[0]
    samples, rate = decode(artifact.data)
    metre = STYLE_METRES[style][0]
    numerator, denominator = (int(x) for x in metre.split("/"))
    beat_quarters = 1.5 if denominator == 8 and numerator % 3 == 0 else 4 / denominator
    music_seconds = 12 * numerator * 4 / denominator * 60 / (120 * beat_quarters)
    assert rate == RATE and samples.shape[1] == 2
    bar_quarters = numerator * 4 / denominator
    rest_quarters = (bar_quarters - float(artifact.metadata["x.pickup_beats"])) % bar_quarters
    pickup_rest = rest_quarters * 60 / (120 * beat_quarters)
    # From the first note (a pickup's rest is not played), plus a release tail.
    assert len(samples) / rate == pytest.approx(music_seconds - pickup_rest + 2.0, abs=0.01)
    measured = pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64))
    assert abs(measured - TARGET_LUFS) <= 1.0, measured  # gain set from the first bars only
    assert float(artifact.metadata["x.loudness_lufs"]) == pytest.approx(measured, abs=0.2)
    assert np.abs(samples).max() <= 10 ** (-1 / 20) + 1e-3  # the limiter's ceiling, -1 dBFS
    provenance = read_audio_provenance(artifact.data)
    assert provenance["generator"] == "music.melody" and provenance["seed"] == "11"


def test_midi_has_the_requested_bars_metre_and_key(client: Client) -> None:
    params = {"style": "celtic", "key": "D", "mode": "dorian", "bars": 16, "time_signature": "6/8"}
    artifact = client.generate("music.melody", params, seed=5, fmt="mid").artifacts[0]
    score: Any = music21.converter.parse(artifact.data, format="midi")
    melody = score.parts[0]
    # The piece opens on a pickup of an eighth: a 1/8 bar, then 6/8 (the rest before it is not played).
    signatures = melody.recurse().getElementsByClass("TimeSignature")
    assert [s.ratioString for s in signatures] == ["1/8", "6/8"]
    assert artifact.metadata["x.pickup_beats"] == "0.5"
    assert melody.highestTime == pytest.approx(15 * 3.0 + 0.5)  # 15 bars of 6/8 after the pickup
    key = melody.recurse().getElementsByClass("KeySignature")[0]
    assert key.sharps == 0  # D dorian has C major's signature
    pitches = [n.pitch.midi for n in melody.recurse().notes]
    assert pitches[-1] % 12 == 2  # ends on the tonic
    assert in_scale_fraction(pitches, 2, "dorian") >= 0.85


@pytest.mark.parametrize("style", ["folk", "celtic"])
def test_folk_and_celtic_tunes_sit_on_their_chords_better_than_on_one_triad_a_bar(client: Client,
                                                                                  style: str) -> None:
    reply = client.generate("music.melody", {"style": style, "key": "C", "bars": 16}, seed=21, count=6,
                            fmt="mid")
    totals: Counter[str] = Counter()
    for artifact in reply.artifacts:
        notes = read_notes(artifact.data)
        numerator, denominator = (int(x) for x in STYLE_METRES[style][0].split("/"))
        totals.update(tune_against_chords(notes, numerator * 4 / denominator, 0, "major"))
    assert totals["notes"] > 300
    # The model's chords change on the beat, so passing notes meet more chords than under one
    # triad a bar chosen to cover the most notes; but chord and note together still make a chord
    # more often.
    assert totals["fits"] > totals["fits_triad"], totals


def test_same_seed_same_bytes_and_count_does_not_change_a_piece(client: Client) -> None:
    params = {"style": "folk", "bars": 4}
    one = client.generate("music.melody", params, seed=3, fmt="wav").artifacts
    again = client.generate("music.melody", params, seed=3, fmt="wav").artifacts
    three = client.generate("music.melody", params, seed=3, count=3, fmt="wav").artifacts
    assert one[0].data == again[0].data
    assert len({a.data for a in three}) == 3
    first, _ = decode(one[0].data)
    # Pieces finish in any order (as their bars run out); the reply holds them in request order,
    # and piece 0 of three is the lone piece (provenance aside).
    assert [a.index for a in three] == [0, 1, 2]
    batched, _ = decode(three[0].data)
    assert np.array_equal(first, batched)


def test_stream_sends_audio_while_later_bars_are_sampled(client: Client) -> None:
    params = {"style": "celtic", "bars": 32, "tempo": 120}
    events = list(client.stream_generate("music.melody", params, seed=8, fmt="wav"))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "seed" and kinds[-1] == "artifact"
    first_chunk = kinds.index("chunk")
    later_progress = [e.progress.completed for e in events[first_chunk:]
                      if e.WhichOneof("event") == "progress"]
    assert later_progress and min(later_progress) < 32  # bars were still being sampled after it
    chunks = [e.chunk for e in events if e.WhichOneof("event") == "chunk"]
    assert chunks[0].media_type == "audio/pcm;rate=48000;channels=2;format=s16le"
    assert [c.offset for c in chunks] == list(np.cumsum([0] + [len(c.data) for c in chunks[:-1]]))
    pcm = b"".join(c.data for c in chunks)
    samples, _ = soundfile.read(io.BytesIO(events[-1].artifact.data), dtype="int16", always_2d=True)
    assert samples.tobytes() == pcm  # the chunks are exactly the file's samples
    unary = client.generate("music.melody", params, seed=8, fmt="wav").artifacts[0]
    assert unary.data == events[-1].artifact.data


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg"])
def test_loop_is_whole_bars_wraps_seamlessly_and_carries_loop_points(client: Client, fmt: str) -> None:
    params = {"style": "celtic", "key": "D", "bars": 4, "tempo": 100, "loop": True}
    data = client.generate("music.melody", params, seed=2, fmt=fmt).artifacts[0].data
    samples, rate = decode(data)
    frames = round(4 * 2 * 60 / 100 * rate)  # 6/8: two dotted-quarter beats a bar, 100 of them a minute
    assert read_loop_points(data, fmt) == (0, frames)
    if fmt != "ogg":  # Vorbis decoders add a little encoder delay at the edges; PCM is exact
        assert len(samples) == frames
        steps = np.abs(np.diff(samples, axis=0)).max(axis=1)
        wrap = np.abs(samples[0] - samples[-1]).max()
        assert wrap <= np.percentile(steps, 99)  # the loop point is no bigger a step than the music's


def test_a_loop_longer_than_the_loudness_look_ahead_is_normalised(client: Client) -> None:
    params = {"style": "folk", "bars": 8, "tempo": 100, "loop": True}  # 19.2 s, all of it held to the end
    artifact = client.generate("music.melody", params, seed=4, fmt="wav").artifacts[0]
    samples, rate = decode(artifact.data)
    assert abs(pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64)) - TARGET_LUFS) <= 1.0


def test_instruments_and_soundfont_licence_are_in_the_provenance(client: Client) -> None:
    # GM numbers count from 1: 33 is Acoustic Bass.
    params = {"style": "celtic", "bars": 2, "instrument": "flute", "bass_instrument": 33}
    artifact = client.generate("music.melody", params, seed=3, fmt="wav").artifacts[0]
    assert artifact.metadata["x.instrument"] == "Flute"
    assert artifact.metadata["x.instruments"] == (
        "melody: Flute, chords: Orchestral Harp, bass: Acoustic Bass, percussion: GM kit")
    provenance = read_audio_provenance(artifact.data)
    assert provenance["x.soundfont"] == "TimGM6mb" and provenance["x.soundfont_licence"] == "GPL-2.0-only"
    midi = client.generate("music.melody", params, seed=3, fmt="mid").artifacts[0].data
    score: Any = music21.converter.parse(midi, format="midi")
    assert len(score.parts) == 4  # melody, chords, bass, bodhrán: one track each


def test_stems_are_as_long_as_the_mix_and_sum_to_it(client: Client) -> None:
    params = {"style": "celtic", "key": "G", "bars": 6, "stems": True}
    artifacts = client.generate("music.melody", params, seed=9, fmt="flac").artifacts
    assert [a.filename.rsplit("-", 1)[-1] for a in artifacts] == ["0000.flac", "melody.flac", "bass.flac",
                                                                   "chords.flac", "percussion.flac"]
    mix, _ = decode(artifacts[0].data)
    stems = {a.metadata["part"]: decode(a.data)[0] for a in artifacts[1:]}
    assert all(stem.shape == mix.shape for stem in stems.values())
    error = sum(stems.values()) - mix
    assert 20 * np.log10(np.sqrt((error**2).mean()) / np.sqrt((mix**2).mean())) < -60
    assert all(np.sqrt((stem**2).mean()) > 0.01 for stem in stems.values())  # every layer plays
    assert read_audio_provenance(artifacts[2].data)["part"] == "bass"
    # Each stem speaks of itself, not of the mix: its instrument, notes and loudness.
    own = {a.metadata["part"]: a.metadata for a in artifacts[1:]}
    assert (own["bass"]["x.instrument"], own["percussion"]["x.instrument"]) == ("Cello", "GM kit")
    assert own["melody"]["x.instrument"] == artifacts[0].metadata["x.instrument"] == "Violin"
    assert own["melody"]["x.notes"] == artifacts[0].metadata["x.notes"] != own["bass"]["x.notes"]
    for part, stem in stems.items():
        measured = pyloudnorm.Meter(48000).integrated_loudness(stem.astype(np.float64))
        assert float(own[part]["x.loudness_lufs"]) == pytest.approx(measured, abs=0.2), part
    assert float(own["bass"]["x.loudness_lufs"]) < float(artifacts[0].metadata["x.loudness_lufs"]) - 3
    # Without stems every layer is played in one pass: the same mix but for the synthesizer's 16-bit output.
    one_pass = client.generate("music.melody", {**params, "stems": False}, seed=9, fmt="flac").artifacts[0]
    alone, _ = decode(one_pass.data)
    assert 20 * np.log10(np.sqrt(((alone - mix) ** 2).mean()) / np.sqrt((mix**2).mean())) < -60


@pytest.mark.parametrize("intensity, layers", [(1, ["melody"]), (2, ["melody", "bass"]),
                                               (3, ["melody", "bass", "chords"])])
def test_intensity_chooses_the_layers_that_sound(client: Client, intensity: int, layers: list[str]) -> None:
    params = {"style": "celtic", "key": "G", "bars": 3, "stems": True, "intensity": intensity}
    artifacts = client.generate("music.melody", params, seed=9, fmt="wav").artifacts
    assert [a.metadata.get("part", "") for a in artifacts] == ["", *layers]
    midi = client.generate("music.melody", params, seed=9, fmt="mid").artifacts[0].data
    score: Any = music21.converter.parse(midi, format="midi")
    assert len(score.parts) == len(layers)


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"style": "jazz"}, "parameters.style", ""),
    ({"key": "H"}, "parameters.key", "unknown key"),
    ({"style": "chorale", "mode": "dorian"}, "parameters.mode", "major, minor"),
    ({"tempo": 500}, "parameters.tempo", ""),
    ({"style": "chorale", "time_signature": "6/8"}, "parameters.time_signature", "4/4"),
    ({"bars": 0}, "parameters.bars", ""),
    ({"bars": 1000}, "parameters.bars", ""),
    ({"temperature": 0}, "parameters.temperature", ""),
    ({"sample_rate": 22050}, "parameters.sample_rate", ""),
    ({"loop": "sometimes"}, "parameters.loop", ""),
    ({"volume": 11}, "parameters.volume", ""),
    ({"instrument": "kazoo"}, "parameters.instrument", "unknown instrument 'kazoo'"),
    ({"chords_instrument": 0}, "parameters.chords_instrument", "1-128"),
    ({"soundfont": "../../etc/passwd"}, "parameters.soundfont", "is a path"),
    ({"soundfont": "NoSuchBank"}, "parameters.soundfont", "no SoundFont 'NoSuchBank': available are"),
    ({"intensity": 5}, "parameters.intensity", ""),
    ({"instrument": True}, "parameters.instrument", "General MIDI name"),
    ({"bass_instrument": "x" * 65}, "parameters.bass_instrument", "at most 64"),
    ({"stems": "all"}, "parameters.stems", ""),
    ({"bars": True}, "parameters.bars", "not a boolean"),
    ({"top_k": True}, "parameters.top_k", "not a boolean"),
    # 591 s of audio is allowed, but celtic's four stems beside the mix are over the 1 GiB output limit.
    ({"style": "celtic", "time_signature": "4/4", "bars": 128, "tempo": 52, "stems": True},
     "parameters.stems", ""),
]


@pytest.mark.parametrize(("params", "field", "words"), BAD)
def test_bad_parameters_name_the_field(client: Client, params: dict[str, Any], field: str,
                                       words: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.generate("music.melody", params, seed=1, fmt="ogg")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = dict(field_violations(caught.value))
    assert field in violations, violations
    assert words in violations[field]


def test_midi_makes_no_audio_so_its_length_is_not_bounded_by_audio(client: Client) -> None:
    # The same request refused above as audio (stems over the output limit) is notes only as MIDI.
    params = {"style": "celtic", "time_signature": "4/4", "bars": 128, "tempo": 52, "stems": True}
    for fmt in ("mid", "MID"):  # formats are read whatever their case
        [artifact] = client.generate("music.melody", params, seed=1, fmt=fmt).artifacts
        assert artifact.data[:4] == b"MThd"


def test_unknown_format_names_the_field(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.generate("music.melody", {}, fmt="mp3")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "format" in dict(field_violations(caught.value))
