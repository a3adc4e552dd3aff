"""``python -m bench.video``: what a video container costs a frame-wise effect, and memory on long input.

1. Container cost. The same 1080p frames as an H.264 MP4 and as a PNG sequence go through
   the same effect in the same in-process Engine (as ``museforge apply --local`` runs it):
   the MP4 decoded and re-encoded by museforge.engine.codecs.video (with its AAC sound
   carried), the PNG files read and written one by one. The effect's own work is the same
   in both, so the difference is what the container costs (target: under 10%).
2. A batch job over the same MP4 (ranges of a quarter of its frames, joined at the end), with
   one and two ranges in flight, beside ``museforge apply``'s single stream.
3. Memory on a long input. A 10-minute 1080p MP4 (25 fps, 15,000 frames, made here with
   libx264 "ultrafast"): ``video.shots`` reads the whole of it; a frame-wise effect runs
   over its first frames and over the same count of frames of a 10-second clip, and a batch
   job over as many frames from the middle of the long file (a seek, then those frames).
   Equal peaks say memory does not grow with the length of the file.

Every row runs in a fresh spawned process; peak RSS is that process's maximum.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .effects import frame
from .inprocess import in_child
from .report import table

FPS = 25
EFFECTS: tuple[tuple[str, dict[str, Any]], ...] = (("effect.restore", {}), ("effect.denoise", {}))
CONTAINER_TARGET = 0.10
CONTAINER_HEADER = ["effect", "size", "frames", "PNG frames/s", "MP4 frames/s", "container cost",
                    "PNG peak MB", "MP4 peak MB"]


def progress(message: str) -> None:
    print(f"[bench.video] {message}", file=sys.stderr, flush=True)


def peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage: Linux carries ru_maxrss over
    fork and exec, so a child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def frames(count: int, size: tuple[int, int], seed: int = 0) -> Any:
    """``count`` frames of a slow pan over a photo-like picture (height, width), round and round."""
    height, width = size
    base = frame(height, width, seed)
    base = np.concatenate([base, base[:, ::-1], base], axis=1)  # mirrored: the wrap has no seam
    for number in range(count):
        start = (number * 4) % (2 * width)
        yield np.ascontiguousarray(base[:, start:start + width])


def write_clip(path: Path, count: int, size: tuple[int, int], preset: str = "medium") -> Path:
    """An H.264 MP4 at 25 fps with a 440 Hz AAC tone as its sound."""
    import av

    with av.open(str(path), "w") as out:
        video: Any = out.add_stream("libx264", rate=Fraction(FPS), options={"crf": "18", "preset": preset})
        video.width, video.height, video.pix_fmt = size[1], size[0], "yuv420p"
        sound: Any = out.add_stream("aac", rate=48000)
        for number, rgb in enumerate(frames(count, size)):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            picture.pts, picture.time_base = number, Fraction(1, FPS)
            out.mux(video.encode(picture))
        out.mux(video.encode(None))
        samples = 48000 * count // FPS
        for start in range(0, samples, 48000):
            part = (0.2 * np.sin(2 * np.pi * 440 * np.arange(start, min(samples, start + 48000)) / 48000))
            chunk = av.AudioFrame.from_ndarray(part.astype(np.float32)[None], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 48000, start
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))
    return path


def write_pngs(folder: Path, count: int, size: tuple[int, int]) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, rgb in enumerate(frames(count, size)):
        paths.append(folder / f"frame-{number:06d}.png")
        Image.fromarray(rgb).save(paths[-1])  # Pillow's default compression, as film tools write
    return paths


@dataclass
class Run:
    frames: int
    seconds: float
    peak_mb: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


def _engine() -> Any:
    import logging

    from museforge.engine.catalogue import Engine

    logging.disable(logging.WARNING)
    return Engine().start()


def run_pngs(effect: str, params: dict[str, Any], sources: list[Path], out: Path) -> Run:
    from museforge.engine.catalogue import EffectInput

    engine = _engine()
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for path in sources:
        [made] = engine.apply_effect(effect, params, [EffectInput(path.read_bytes(), path.name)], fmt="png")
        (out / path.name).write_bytes(made.data)
    return Run(len(sources), time.perf_counter() - started, peak_mb())


def run_video(effect: str, params: dict[str, Any], source: Path, out: Path, limit: int | None = None) -> Run:
    """The loop of ``museforge apply EFFECT in.mp4 -o out.mp4 --local`` (its own helpers), optionally
    stopping after ``limit`` frames."""
    from museforge.engine.catalogue import EffectInput
    from museforge.engine.codecs.video import VideoWriter, probe, read_frames
    from museforge.engine.codecs.video_frames import pixels_of, png_of

    engine = _engine()
    info = probe(source)
    started = time.perf_counter()
    with VideoWriter(out, info) as writer:
        for number, rgb in enumerate(read_frames(info)):
            if limit is not None and number >= limit:
                break
            [made] = engine.apply_media(effect, params, [EffectInput(png_of(rgb), f"f{number:06d}.png")])
            writer.write(pixels_of(made))
    return Run(writer.written, time.perf_counter() - started, peak_mb())


def run_job(effect: str, params: dict[str, Any], source: Path, out: Path, workers: int, per_item: int,
            first: int | None = None, last: int | None = None) -> Run:
    """A batch job over the video, as a server runs it (its store, its executor, its sandbox); its
    frames, the time until the joined video is on disk, and the process's peak memory."""
    import shutil

    from google.protobuf import struct_pb2

    from museforge.jobs.paths import Sandbox
    from museforge.jobs.plan import plan_job
    from museforge.jobs.runner import LocalExecutor
    from museforge.jobs.store import JobStore
    from museforge.v1 import jobs_pb2

    engine = _engine()
    work = out.parent / f"{out.stem}-job"
    shutil.rmtree(work, ignore_errors=True)
    sandbox = Sandbox.of([source.parent], [work])
    store = JobStore(work / "jobs.sqlite3")
    spec = jobs_pb2.JobSpec(output_pattern=out.name, seed=1)
    parameters = struct_pb2.Struct()
    parameters.update(params)
    spec.steps.add(effect=effect, parameters=parameters)
    spec.input.video, spec.input.frames_per_item = source.name, per_item
    if first is not None and last is not None:
        spec.input.first_frame, spec.input.last_frame = first, last
    started = time.perf_counter()
    plan = plan_job(spec, engine, sandbox, 100_000)
    job, _ = store.create(plan.spec, plan.items, "local")
    executor = LocalExecutor(store, engine, sandbox, workers=workers).start()
    executor.submit(job.id)
    while not (current := store.get(job.id)) or not current.state.finished:
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    executor.close()
    if current.failed:
        raise RuntimeError(f"the job failed: {store.items(job.id)[-1].error}")
    return Run(int(plan.spec["input"]["last_frame"]) - int(plan.spec["input"].get("first_frame", 0)) + 1,
               seconds, peak_mb())


def run_shots(source: Path) -> Run:
    from museforge.engine.catalogue import EffectInput

    engine = _engine()
    started = time.perf_counter()
    [made] = engine.apply_effect("video.shots", {}, [EffectInput(b"", source.name, path=source)], fmt="json")
    import json

    return Run(int(json.loads(made.data)["frames"]), time.perf_counter() - started, peak_mb())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.video", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=16, help="1080p frames per container-cost row")
    parser.add_argument("--long-minutes", type=float, default=10.0, help="length of the long input")
    parser.add_argument("--memory-frames", type=int, default=24, help="frames of the effect on each input")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each container row; the best counts")
    parser.add_argument("--skip-long", action="store_true", help="the container rows only")
    parser.add_argument("--quick", action="store_true", help="960x540, 3 frames, a 20-second long input")
    args = parser.parse_args(argv)
    size = (540, 960) if args.quick else (1080, 1920)
    if args.quick:
        args.frames, args.long_minutes, args.memory_frames = 3, 1 / 3, 3
    lines: list[list[str]] = []
    targets: list[tuple[str, str, bool]] = []
    applied: dict[str, Run] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        progress(f"writing {args.frames} frames of {size[1]}x{size[0]} as an MP4 and as PNG files")
        clip = write_clip(folder / "clip.mp4", args.frames, size)
        pngs = write_pngs(folder / "pngs", args.frames, size)
        for effect, params in EFFECTS:
            png_runs, mp4_runs = [], []
            for turn in range(args.repeat):  # alternated, so a slow spell of the machine hits both
                progress(f"{effect}: PNG sequence, then MP4 ({turn + 1} of {args.repeat})")
                png_runs.append(in_child(run_pngs, effect, params, pngs, folder / "out-pngs", timeout=3600))
                mp4_runs.append(in_child(run_video, effect, params, clip, folder / "out.mp4", timeout=3600))
            png_run = max(png_runs, key=lambda r: r.fps)
            mp4_run = max(mp4_runs, key=lambda r: r.fps)
            cost = png_run.fps / mp4_run.fps - 1
            lines.append([effect, f"{size[1]}x{size[0]}", str(args.frames), f"{png_run.fps:.3f}",
                          f"{mp4_run.fps:.3f}", f"{cost * 100:+.1f}%", f"{png_run.peak_mb:.0f}",
                          f"{mp4_run.peak_mb:.0f}"])
            targets.append((f"{effect}: the MP4 container costs < {CONTAINER_TARGET:.0%}",
                            f"{cost * 100:+.1f}%", cost < CONTAINER_TARGET))
            applied[effect] = mp4_run
        effect, params = EFFECTS[0]
        per_item = max(args.frames // 4, 1)
        jobs = [[f"{effect}: museforge apply (one stream)", str(args.frames),
                 f"{applied[effect].fps:.3f}", f"{applied[effect].peak_mb:.0f}"]]
        for workers in (1, 2):
            progress(f"{effect}: a batch job over the MP4, ranges of {per_item}, {workers} in flight")
            run = in_child(run_job, effect, params, clip, folder / "job.mp4", workers, per_item, timeout=3600)
            jobs.append([f"{effect}: batch job, ranges of {per_item}, {workers} in flight", str(run.frames),
                         f"{run.fps:.3f}", f"{run.peak_mb:.0f}"])
        job_table = table(jobs, ["video through a frame-wise effect", "frames", "frames/s", "peak RSS MB"],
                          right={1, 2, 3})
        if args.skip_long:
            print(table(lines, CONTAINER_HEADER, right={2, 3, 4, 5, 6, 7}) + "\n\n" + job_table)
            return 0
        long_frames = round(args.long_minutes * 60 * FPS)
        progress(f"writing a {args.long_minutes:g}-minute {size[1]}x{size[0]} MP4 ({long_frames} frames)")
        started = time.perf_counter()
        long_clip = write_clip(folder / "long.mp4", long_frames, size, preset="ultrafast")
        megabytes = long_clip.stat().st_size / 1e6
        progress(f"written in {time.perf_counter() - started:.0f} s ({megabytes:.0f} MB)")
        short_clip = write_clip(folder / "short.mp4", 10 * FPS, size)
        first = args.memory_frames
        middle, ranges, minutes = long_frames // 2, max(first // 2, 1), f"{args.long_minutes:g}"
        memory = [
            (f"video.shots, the whole {args.long_minutes:g}-minute file",
             in_child(run_shots, long_clip, timeout=7200)),
            (f"{effect}, first {first} frames of the {args.long_minutes:g}-minute file",
             in_child(run_video, effect, params, long_clip, folder / "a.mp4", first, timeout=3600)),
            (f"{effect}, first {first} frames of a 10-second file",
             in_child(run_video, effect, params, short_clip, folder / "b.mp4", first, timeout=3600)),
            (f"{effect}, batch job over frames {middle}-{middle + first - 1} of the {minutes}-minute file",
             in_child(run_job, effect, params, long_clip, folder / "c.mp4", 2, ranges, middle,
                      middle + first - 1, timeout=3600)),
            (f"{effect}, batch job over frames 0-{first - 1} of a 10-second file",
             in_child(run_job, effect, params, short_clip, folder / "d.mp4", 2, ranges, 0, first - 1,
                      timeout=3600)),
        ]
    grows = memory[1][1].peak_mb - memory[2][1].peak_mb
    targets.append(("effect on the long file: peak within 5% of the short file's",
                    f"{grows:+.0f} MB", abs(grows) <= 0.05 * memory[2][1].peak_mb))
    jumped = memory[3][1].peak_mb - memory[4][1].peak_mb
    targets.append(("batch job in the middle of the long file: peak within 5% of the short file's",
                    f"{jumped:+.0f} MB", abs(jumped) <= 0.05 * memory[4][1].peak_mb))
    out = [table(lines, CONTAINER_HEADER, right={2, 3, 4, 5, 6, 7}), "", job_table, "",
           table([[what, str(run.frames), f"{run.fps:.1f}", f"{run.peak_mb:.0f}"] for what, run in memory],
                 ["long input", "frames", "frames/s", "peak RSS MB"], right={1, 2, 3}), "",
           table([[w, m, "PASS" if ok else "MISS"] for w, m, ok in targets], ["target", "measured", ""],
                 right={1})]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
