"""``python -m bench.effects``: every shipped effect on a 1920x1080 frame and a 3840x2160 one.

For each effect (and each variant worth telling apart, e.g. x2 and x4), one table row:
frames per second on a 1080p frame through the real Engine (decode, tiles through the
runtime, encode, as ``museforge apply --local`` does), the classical method a user would
otherwise run on the same frame, and the peak memory of a fresh process that applies
the effect to one 4K frame. Every measurement runs in its own spawned process, so
peaks and thread pools never leak from one row into the next.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .inprocess import in_child
from .report import table

HD = (1080, 1920)
UHD = (2160, 3840)

# Variants worth a row of their own; other effects run with their defaults.
VARIANTS: dict[str, tuple[dict[str, Any], ...]] = {
    "effect.upscale": ({"scale": 2}, {"scale": 4}),
}
# The 4K memory row would exceed the output limit for these (x4 of 4K is 15360 x 8640).
SKIP_UHD = {("effect.upscale", '{"scale": 4}')}


def frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A photo-like RGB frame: smooth gradients, edges and grain, uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([np.sin(xx / (40 + 9 * c) + c) * np.cos(yy / (55 - 7 * c)) for c in range(3)], 2)
    edges = ((xx // 97 + yy // 61) % 2)[:, :, None] * 0.25
    image = 0.45 + 0.3 * base + edges + rng.normal(0, 0.03, (height, width, 3))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def png(image: np.ndarray) -> bytes:
    from museforge.engine.codecs.png_writer import write_png

    return write_png(image, level=1)


def inputs_for(count: int, height: int, width: int) -> list[tuple[str, bytes]]:
    # For two-frame effects the second frame is the first, shifted: a camera pan.
    first = frame(height, width)
    frames = [first] + [np.roll(first, 6 * k, axis=1) for k in range(1, count)]
    return [(f"frame{k}.png", png(f)) for k, f in enumerate(frames)]


@dataclass
class Timing:
    frames_per_s: float
    seconds_per_frame: float
    decode_s: float  # decoding the input(s), part of each frame
    runs: int


def time_effect(name: str, params: dict[str, Any], shape: tuple[int, int], min_s: float) -> Timing:
    """In a child: the Engine applies the effect to one frame, again and again."""
    import logging

    from museforge.config import Settings
    from museforge.engine.catalogue import EffectInput, Engine

    logging.getLogger("museforge").setLevel(logging.ERROR)
    engine = Engine(Settings()).start()
    effect = engine.effects[name]
    inputs = [EffectInput(d, n) for n, d in inputs_for(effect.min_inputs, *shape)]
    engine.apply_effect(name, params, inputs)  # warm-up: first runs plan and allocate
    runs, decode, started = 0, 0.0, time.perf_counter()
    while runs < 2 or time.perf_counter() - started < min_s:
        t0 = time.perf_counter()
        request = engine.prepare_effect(name, params, inputs)
        decode += time.perf_counter() - t0
        for _ in engine.run(request):
            pass
        runs += 1
    elapsed = time.perf_counter() - started
    engine.close()
    return Timing(runs / elapsed, elapsed / runs, decode / runs, runs)


def peak_memory(name: str, params: dict[str, Any], shape: tuple[int, int]) -> dict[str, float]:
    """In a fresh child: RSS once the server is up, and the high-water mark after one frame."""
    import logging

    from museforge.config import Settings
    from museforge.engine.catalogue import EffectInput, Engine

    logging.getLogger("museforge").setLevel(logging.ERROR)
    engine = Engine(Settings()).start()
    effect = engine.effects[name]
    inputs = [EffectInput(d, n) for n, d in inputs_for(effect.min_inputs, *shape)]
    with open("/proc/self/statm") as f:
        ready = int(f.read().split()[1]) * resource.getpagesize() / 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    artifacts = engine.apply_effect(name, params, inputs)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine.close()
    return {"ready_mb": ready, "peak_mb": max(peak, before), "seconds": seconds,
            "output_mb": sum(len(a.data) for a in artifacts) / 2**20}


def _resize(image: np.ndarray, scale: int) -> object:
    from PIL import Image

    h, w = image.shape[:2]
    return Image.fromarray(image).resize((w * scale, h * scale), Image.Resampling.BICUBIC)


def _blur(image: np.ndarray, radius: float) -> object:
    from PIL import Image, ImageFilter

    return Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius))


def _blend(a: np.ndarray, b: np.ndarray) -> object:
    return ((a.astype(np.uint16) + b) // 2).astype(np.uint8)


def classical(name: str, params: dict[str, Any]) -> tuple[str, Callable[[np.ndarray], object]] | None:
    """The method a user would otherwise run, on a decoded uint8 frame (no file I/O)."""
    if name == "effect.upscale":
        scale = int(params.get("scale", 2))
        return f"Pillow bicubic x{scale}", lambda im: _resize(im, scale)
    if name in ("effect.denoise", "effect.restore"):
        return "Pillow Gaussian blur r=1.5", lambda im: _blur(im, 1.5)
    if name == "effect.interpolate":
        shifted: dict[int, np.ndarray] = {}

        def blend(im: np.ndarray) -> object:
            other = shifted.setdefault(id(im), np.roll(im, 6, axis=1))
            return _blend(im, other)

        return "linear blend of the two frames", blend
    return None


def time_classical(name: str, params: dict[str, Any], shape: tuple[int, int], min_s: float) -> float | None:
    found = classical(name, params)
    if found is None:
        return None
    image = frame(*shape)
    fn = found[1]
    fn(image)
    runs, started = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - started < min_s:
        fn(image)
        runs += 1
    return runs / (time.perf_counter() - started)


def discover_effects(only: set[str] | None) -> dict[str, int]:
    """Shipped effects on still frames whose models loaded: name -> inputs per request (effects on
    video clips or sounds, such as video.autocut, have benches of their own)."""
    import logging

    from museforge.config import Settings
    from museforge.engine.catalogue import Engine

    logging.getLogger("museforge").setLevel(logging.ERROR)
    engine = Engine(Settings(batching=False)).start()
    try:
        return {n: e.min_inputs for n, e in sorted(engine.effects.items())
                if engine.available(e) and "png" in e.input_formats and (not only or n in only)}
    finally:
        engine.close()


def frame_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` on the command line, (height, width) as the frames are shaped."""
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 1920x1080, not {text!r}")
    return int(height), int(width)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.effects", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="", help="comma-separated effect names (default: all)")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds per 1080p row, at least 2 frames (8; with --quick 2)")
    p.add_argument("--quick", action="store_true", help="2 s rows and a 960x540 'HD' frame (smoke test)")
    p.add_argument("--no-uhd", action="store_true", help="skip the 3840x2160 memory rows")
    p.add_argument("--frame", type=frame_size, default=None, metavar="WIDTHxHEIGHT",
                   help="size of the timed frame (default 1920x1080, 960x540 with --quick)")
    p.add_argument("--json", type=Path, help="also write the raw figures to this file")
    args = p.parse_args(argv)
    hd = args.frame or ((540, 960) if args.quick else HD)
    duration = args.duration if args.duration is not None else 2.0 if args.quick else 8.0
    only = {n.strip() for n in args.only.split(",") if n.strip()} or None
    effects = discover_effects(only)
    if not effects:
        print("no effect available" + (f" matching {sorted(only)}" if only else ""), file=sys.stderr)
        return 2
    rows: list[list[str]] = []
    figures: list[dict[str, Any]] = []
    for name in effects:
        for params in VARIANTS.get(name, ({},)):
            label = json.dumps(params, sort_keys=True)
            print(f"[bench] {name} {label}: {hd[1]}x{hd[0]}", file=sys.stderr, flush=True)
            timing: Timing = in_child(time_effect, name, params, hd, duration, timeout=1800)
            base = in_child(time_classical, name, params, hd, min(duration, 3.0), timeout=600)
            memory: dict[str, float] | None = None
            if not args.no_uhd and (name, label) not in SKIP_UHD:
                print(f"[bench] {name} {label}: {UHD[1]}x{UHD[0]} peak memory", file=sys.stderr, flush=True)
                memory = in_child(peak_memory, name, params, UHD, timeout=3600)
            method = classical(name, params)
            rows.append([
                name, label, f"{timing.frames_per_s:.2f}", f"{timing.seconds_per_frame:.2f}",
                f"{timing.decode_s * 1e3:.0f}",
                f"{base:.1f}" if base else "-", method[0] if method else "-",
                f"{memory['peak_mb']:.0f}" if memory else "-",
                f"{memory['ready_mb']:.0f}" if memory else "-",
                f"{memory['seconds']:.1f}" if memory else "-",
            ])
            figures.append({"effect": name, "params": params, "hd": asdict(timing), "classical_fps": base,
                            "classical": method[0] if method else None, "uhd": memory,
                            "hd_shape": hd})
    header = ["effect", "params", f"{hd[1]}x{hd[0]} frames/s", "s/frame", "decode ms",
              "classical frames/s", "classical method", "4K peak RSS MB", "RSS ready MB", "4K s"]
    print(table(rows, header, right={2, 3, 4, 5, 7, 8, 9}))
    print()
    print("frames/s: the Engine in-process (decode, tiles through the runtime, encode to the input's "
          "format, here PNG), as `museforge apply --local`; default tile 256. classical: the same "
          "frame, already decoded, through the method named (no encoding). 4K peak RSS: high-water "
          "mark of a fresh process that started the server's engine (all shipped models loaded) "
          "and applied the effect once to a 3840x2160 PNG frame.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
