"""music.melody through a real server with the shipped model: formats, streaming, loops, bad input."""

from __future__ import annotations

import io
import json
from typing import Any

import grpc
import music21
import numpy as np
import pyloudnorm
import pytest
import soundfile

from museforge.client import Client, field_violations
from museforge.plugins.music.audio_formats import read_audio_provenance
from museforge.plugins.music.melody import STYLE_METRES, TARGET_LUFS
from museforge.plugins.music.theory import in_scale_fraction

RATE = 48000


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
    assert music_seconds < len(samples) / rate <= music_seconds + 2.0  # plus a release tail
    measured = pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64))
    assert abs(measured - TARGET_LUFS) <= 1.0, measured  # gain set from the first bars only
    assert float(artifact.metadata["x.loudness_lufs"]) == pytest.approx(measured, abs=0.2)
    assert np.abs(samples).max() <= 10 ** (-1 / 20) + 1e-3  # the limiter's ceiling, -1 dBFS
    provenance = read_audio_provenance(artifact.data)
    assert provenance["generator"] == "music.melody" and provenance["seed"] == "11"


def test_midi_has_the_requested_bars_metre_and_key(client: Client) -> None:
    params = {"style": "celtic", "key": "D", "mode": "dorian", "bars": 16, "time_signature": "6/8"}
    data = client.generate("music.melody", params, seed=5, fmt="mid").artifacts[0].data
    score: Any = music21.converter.parse(data, format="midi")
    melody = score.parts[0]
    signature = melody.recurse().getElementsByClass("TimeSignature")[0]
    assert signature.ratioString == "6/8"
    assert melody.highestTime == pytest.approx(16 * 3.0)  # 16 bars of 6/8 = 48 quarter notes
    key = melody.recurse().getElementsByClass("KeySignature")[0]
    assert key.sharps == 0  # D dorian has C major's signature
    pitches = [n.pitch.midi for n in melody.recurse().notes]
    assert pitches[-1] % 12 == 2  # ends on the tonic
    assert in_scale_fraction(pitches, 2, "dorian") >= 0.85


def test_same_seed_same_bytes_and_count_does_not_change_a_piece(client: Client) -> None:
    params = {"style": "folk", "bars": 4}
    one = client.generate("music.melody", params, seed=3, fmt="wav").artifacts
    again = client.generate("music.melody", params, seed=3, fmt="wav").artifacts
    three = client.generate("music.melody", params, seed=3, count=3, fmt="wav").artifacts
    assert one[0].data == again[0].data
    assert len({a.data for a in three}) == 3
    first, _ = decode(one[0].data)
    # Artifacts come as pieces finish; piece 0 of three is the lone piece (provenance aside).
    batched, _ = decode(next(a for a in three if a.index == 0).data)
    assert sorted(a.index for a in three) == [0, 1, 2]
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


def test_loop_is_whole_bars_and_wraps_without_a_click(client: Client) -> None:
    params = {"style": "chorale", "mode": "minor", "key": "A", "bars": 4, "tempo": 90, "loop": True,
              "instrument": "organ"}
    samples, rate = decode(client.generate("music.melody", params, seed=2, fmt="wav").artifacts[0].data)
    assert len(samples) == round(4 * 4 * 60 / 90 * rate)
    steps = np.abs(np.diff(samples, axis=0)).max(axis=1)
    wrap = np.abs(samples[0] - samples[-1]).max()
    assert wrap <= max(4 * np.percentile(steps, 99), 2 / 32768)


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


def test_unknown_format_names_the_field(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.generate("music.melody", {}, fmt="mp3")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "format" in dict(field_violations(caught.value))
