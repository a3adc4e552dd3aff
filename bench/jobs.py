"""``python -m bench.jobs``: frames/s of a two-effect batch job on 1920x1080 frames.

One table, side by side in one run, against a real ``museforge serve`` subprocess:

- the local job executor with 1 and with 2 frames in flight (``job_workers``), from
  SubmitJob to the job's end (reading frames from disk, writing results atomically,
  committing each item to SQLite);
- the Ray executor with two actors on a local Ray on this machine (the ``[ray]`` extra);
- the same chain done by a client without jobs: two ApplyEffect calls per frame, one
  frame after another, sending and receiving the bytes.

The chain is effect.denoise (sigma 15) then effect.upscale x2: 1080p PNG in, 4K PNG out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from museforge.client import Client
from museforge.v1 import jobs_pb2

from .effects import HD, frame
from .report import table
from .servers import ServerSettings, museforge_server, wait_serving

CHAIN = (("effect.denoise", {"sigma": 15}), ("effect.upscale", {"scale": 2}))


def write_frames(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        Image.fromarray(frame(*HD, seed=k)).save(directory / f"plate.{k + 1:04d}.png", compress_level=1)


def job_spec(count: int, output: str) -> jobs_pb2.JobSpec:
    spec = jobs_pb2.JobSpec(output_pattern=output, seed=1)
    for effect, parameters in CHAIN:
        spec.steps.add(effect=effect).parameters.update(parameters)
    spec.input.pattern = "plate.####.png"
    spec.input.first_frame, spec.input.last_frame = 1, count
    return spec


def run_job(root: Path, count: int, workers: int, executor: str = "local") -> float:
    """Seconds from SubmitJob to the job's end with ``workers`` frames in flight (or Ray actors)."""
    tag = f"{executor}{workers}"
    extra = (
        f'data_dir = "{root / f"data-{tag}"}"',
        f'job_input_roots = ["{root / "in"}"]',
        f'job_output_roots = ["{root / "out"}"]',
        f"job_workers = {workers}",
        f'job_executor = "{executor}"',
        f"ray_workers = {workers}",
    )
    with museforge_server(ServerSettings(extra=extra)) as server:
        wait_serving(server)
        with Client(server.address, timeout=600) as client:
            start = time.perf_counter()
            operation = client.submit_job(job_spec(count, f"{tag}/plate.####.png"))
            done = client.wait_job(operation.name, 3600)
            seconds = time.perf_counter() - start
            meta = jobs_pb2.JobMetadata()
            done.metadata.Unpack(meta)
            if meta.state != jobs_pb2.JOB_STATE_SUCCEEDED:
                raise RuntimeError(f"job ended {jobs_pb2.JobState.Name(meta.state)}")
    return seconds


def run_client_loop(root: Path, count: int) -> float:
    """Seconds for two ApplyEffect calls per frame, frame after frame, writing each result."""
    with museforge_server(ServerSettings()) as server:
        wait_serving(server)
        with Client(server.address, timeout=600) as client:
            start = time.perf_counter()
            for k in range(count):
                name = f"plate.{k + 1:04d}.png"
                data = (root / "in" / name).read_bytes()
                for number, (effect, parameters) in enumerate(CHAIN):
                    fmt = "png16" if number < len(CHAIN) - 1 else "png"
                    data = (
                        client.apply_effect(effect, [(name, data)], parameters, seed=1, fmt=fmt)
                        .artifacts[0]
                        .data
                    )
                (root / "out" / "loop").mkdir(parents=True, exist_ok=True)
                (root / "out" / "loop" / name).write_bytes(data)
            return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=6, help="frames per row (default 6)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="museforge-bench-jobs-") as tmp:
        root = Path(tmp)
        write_frames(root / "in", args.frames)
        timings = {
            "job, local executor, 1 frame in flight": run_job(root, args.frames, 1),
            "job, local executor, 2 frames in flight": run_job(root, args.frames, 2),
            "job, Ray executor, 2 actors (local Ray)": run_job(root, args.frames, 2, "ray"),
            "client loop: 2 ApplyEffect calls per frame": run_client_loop(root, args.frames),
        }
        reference = root / "out" / "local1"
        same = all(
            (reference / p.name).read_bytes() == p.read_bytes()
            for tag in ("local2", "ray2")
            for p in (root / "out" / tag).iterdir()
        )
    loop = timings["client loop: 2 ApplyEffect calls per frame"]
    rows = [
        [label, str(args.frames), f"{seconds:.1f}", f"{args.frames / seconds:.3f}", f"{loop / seconds:.2f}x"]
        for label, seconds in timings.items()
    ]
    print(f"{' -> '.join(e for e, _ in CHAIN)}, 1920x1080 PNG in, 3840x2160 PNG out")
    print(table(rows, ["row", "frames", "seconds", "frames/s", "vs client loop"], right={1, 2, 3, 4}))
    print(f"\noutputs of every job row byte-identical: {'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
