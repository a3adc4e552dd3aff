"""``python -m bench.x264``: the H.264 encoder as museforge runs it, beside x264 choosing its kernels.

museforge stops x264 at its AVX2 kernels where the processor has AVX-512
(``museforge.engine.codecs.x264_settings``): the AVX-512 ones made the same frames other
bytes from one run to the next. This encodes the same frames both ways, alternating, in one
process, and reports frames a second and whether repeated encodes gave the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from .report import table
from .video import frames

FPS = 25


def encode(pictures: list[np.ndarray], options: dict[str, str]) -> tuple[float, str]:
    """(seconds, sha256) of ``pictures`` encoded to an in-memory MP4 with libx264 ``options``."""
    import av

    buffer = io.BytesIO()
    started = time.perf_counter()
    with av.open(buffer, "w", format="mp4") as out:
        stream: Any = out.add_stream("libx264", rate=Fraction(FPS), options=options)
        stream.height, stream.width = pictures[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for number, rgb in enumerate(pictures):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            picture.pts, picture.time_base = number, Fraction(1, FPS)
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    return time.perf_counter() - started, hashlib.sha256(buffer.getvalue()).hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    from museforge.engine.codecs.x264_settings import QUALITY, cpu_flags, x264_options

    parser = argparse.ArgumentParser(prog="python -m bench.x264", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=48, help="frames a run (default 48)")
    parser.add_argument("--size", default="720x1280", help="height x width (default 720x1280)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternating (default 3)")
    args = parser.parse_args(argv)
    height, width = (int(side) for side in args.size.lower().split("x"))
    pictures = list(frames(args.frames, (height, width)))
    served = x264_options()
    ways = {"museforge (" + served.get("x264-params", "x264 chooses") + ")": served,
            "x264 chooses its kernels": dict(QUALITY)}
    runs: dict[str, list[tuple[float, str]]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, options in ways.items():
            runs[name].append(encode(pictures, options))
    rows = []
    for name, done in runs.items():
        seconds = sorted(s for s, _ in done)
        hashes = {h for _, h in done}
        rows.append([name, f"{args.frames / seconds[len(seconds) // 2]:.1f}", str(len(done)),
                     "yes" if len(hashes) == 1 else f"no ({len(hashes)} different)"])
    avx512 = any(flag.startswith("avx512") for flag in cpu_flags())
    print(f"{args.frames} frames of {width}x{height}, crf 18, preset medium; "
          f"this processor {'has' if avx512 else 'has no'} AVX-512\n")
    print(table(rows, ["encoder", "median fps", "runs", "same bytes every run"], {1, 2}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
