"""music.melody through a real server: no second of silence for a pickup, loudness at slow tempos,
an unknown instrument's message whole."""

from __future__ import annotations

import io
from typing import Any

import grpc
import numpy as np
import pretty_midi
import pyloudnorm
import pytest
import soundfile

from museforge.client import Client, field_violations
from museforge.plugins.music.loop_points import read_loop_points
from museforge.plugins.music.melody import TARGET_LUFS

WINDOW_SECONDS = 0.05
SILENT_DBFS = -60.0
STYLES = ("chorale", "folk", "celtic")


def decode(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float64", always_2d=True)
    return samples, rate


def silent_windows(samples: np.ndarray, rate: int) -> np.ndarray:
    """Per 50 ms window (whole windows only) whether its RMS is below -60 dBFS."""
    size = round(WINDOW_SECONDS * rate)
    windows = samples[:len(samples) // size * size].reshape(-1, size * samples.shape[1])
    rms = np.sqrt((windows**2).mean(axis=1))
    return np.asarray(rms < 10 ** (SILENT_DBFS / 20), bool)


def longest_run(silent: np.ndarray) -> float:
    """Seconds of the longest run of silent windows."""
    longest = run = 0
    for quiet in silent.tolist():
        run = run + 1 if quiet else 0
        longest = max(longest, run)
    return longest * WINDOW_SECONDS


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("intensity", [4, 1])
def test_a_loop_never_drops_out_under_its_pickup(client: Client, style: str, intensity: int) -> None:
    params = {"style": style, "bars": 4, "loop": True, "intensity": intensity}
    for artifact in client.generate("music.melody", params, seed=100, count=4, fmt="wav").artifacts:
        samples, rate = decode(artifact.data)
        assert read_loop_points(artifact.data, "wav") == (0, len(samples))
        twice = np.concatenate([samples, samples])  # played on repeat: across the loop point too
        # The band sounds throughout; the tune alone may rest between phrases (folk, seed 101: 0.35 s)
        # but not for the second or two a pickup's rest was.
        limit = 0.3 if intensity > 1 else 0.5
        assert longest_run(silent_windows(twice, rate)) < limit, (style, intensity, artifact.index)
        steps = np.abs(np.diff(samples, axis=0)).max(axis=1)
        assert np.abs(samples[0] - samples[-1]).max() <= np.percentile(steps, 99)  # still seamless


@pytest.mark.parametrize("style", STYLES)
def test_a_one_shot_starts_at_its_first_note(client: Client, style: str) -> None:
    params = {"style": style, "bars": 2}
    reply = client.generate("music.melody", params, seed=100, count=4, fmt="wav")
    midis = client.generate("music.melody", params, seed=100, count=4, fmt="mid").artifacts
    pickups = 0
    for artifact, midi in zip(reply.artifacts, midis, strict=True):
        samples, rate = decode(artifact.data)
        opening = silent_windows(samples[:2 * rate], rate)
        assert not opening[0] and longest_run(opening) < 0.3, artifact.index  # was up to a bar of silence
        # The MIDI file starts where the audio does: the tune's first note at 0, a pickup as a bar of
        # its own time signature, then the style's metre; the audio ends 2 s of tail after it.
        score = pretty_midi.PrettyMIDI(io.BytesIO(midi.data))
        melody = next(track for track in score.instruments if track.name == "Melody")
        assert min(note.start for note in melody.notes) == 0.0
        assert len(samples) / rate == pytest.approx(score.get_end_time() + 2.0, abs=0.01)
        pickup = float(artifact.metadata["x.pickup_beats"])
        signatures = score.time_signature_changes
        if pickup:
            pickups += 1
            quarter = 60.0 / score.get_tempo_changes()[1][0]
            assert signatures[1].time == pytest.approx(pickup * quarter, abs=1e-3)
            assert signatures[0].numerator * 4 / signatures[0].denominator == pytest.approx(pickup)
        assert (signatures[-1].numerator, signatures[-1].denominator) == {
            "chorale": (4, 4), "folk": (4, 4), "celtic": (6, 8)}[style]
    assert pickups  # seed 100 opens on a pickup in every style


def test_pickups_stream_as_they_are_returned_and_stems_sum_to_the_mix(client: Client) -> None:
    for loop in (False, True):
        params = {"style": "chorale", "bars": 3, "loop": loop, "stems": True}
        events = list(client.stream_generate("music.melody", params, seed=101, fmt="wav"))
        pcm = b"".join(e.chunk.data for e in events if e.WhichOneof("event") == "chunk")
        artifacts = [e.artifact for e in events if e.WhichOneof("event") == "artifact"]
        mix, _ = decode(artifacts[0].data)
        assert soundfile.read(io.BytesIO(artifacts[0].data), dtype="int16")[0].tobytes() == pcm
        unary = client.generate("music.melody", params, seed=101, fmt="wav").artifacts
        assert [a.data for a in unary] == [a.data for a in artifacts]
        error = sum(decode(a.data)[0] for a in artifacts[1:]) - mix
        assert 20 * np.log10(np.sqrt((error**2).mean()) / np.sqrt((mix**2).mean())) < -60


@pytest.mark.parametrize("params, count", [
    ({"style": "chorale", "bars": 8, "tempo": 30}, 6),
    ({"style": "celtic", "bars": 16, "tempo": 30, "time_signature": "9/8"}, 4),
])
def test_slow_tempos_are_normalised_too(client: Client, params: dict[str, Any], count: int) -> None:
    for artifact in client.generate("music.melody", params, seed=1, count=count, fmt="wav").artifacts:
        samples, rate = decode(artifact.data)
        measured = pyloudnorm.Meter(rate).integrated_loudness(samples)
        assert abs(measured - TARGET_LUFS) <= 1.0, (artifact.index, measured)


def test_an_unknown_instrument_is_told_the_closest_names_whole(client: Client) -> None:
    for value, suggested in (("kazoo", "Koto"), ("violn", "Violin"), ("Acoustic Guitar nylom", "nylon")):
        with pytest.raises(grpc.RpcError) as caught:
            client.generate("music.melody", {"instrument": value}, seed=1, fmt="mid")
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        description = dict(field_violations(caught.value))["parameters.instrument"]
        assert not description.endswith("…") and description.endswith("docs/music.md)"), description
        assert suggested in description and f"'{value}'" in description


def test_a_request_over_the_length_bound_speaks_of_music_for_midi_too(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.generate("music.melody", {"bars": 128, "tempo": 30}, seed=1, fmt="mid")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "seconds of music, over the 600" in dict(field_violations(caught.value))["parameters.bars"]
    schema = {g.name: g for g in client.generators()}["music.melody"].parameters_schema
    assert "the half note in 2/2 and 3/2" in schema
