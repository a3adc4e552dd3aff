"""The effect.sketch sample sheet: held-out OpenMoji sketches and mouse drawings, through the real Engine.

    python scripts/sketch_samples.py [--output docs/images/sketch_samples.png]

Block 1, one held-out drawing per row: the clean sketch, two seeds' results, the same sketch
roughened as a hand draws it (strength 1) and its result, the two baselines, and OpenMoji's
own colour version. Block 2: drawings made here the way a mouse draws (a shaky polyline,
two pixels wide): two seeds, a colour hint and its result, and a redone region. Every result
is made as ``museforge apply effect.sketch`` makes it: PNG in, PNG out.
"""

from __future__ import annotations

import argparse
import io
import itertools
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from museforge.config import Settings
from museforge.engine.catalogue import EffectInput, Engine
from museforge.engine.codecs.png_writer import write_png
from museforge.plugins.effect.sketch_baselines import FlatFill, NearestDrawing
from museforge.plugins.effect.sketch_data import sketch_held_out, sketch_train
from museforge.plugins.effect.sketch_quality import held_out_drawings

ZOOM = 3
ROWS = (0, 37, 70, 104, 142, 175, 210, 263)  # held-out drawings across the groups
Panel = tuple[str, np.ndarray]  # label, (H, W, 4) straight RGBA in [0, 1]


def png(rgba: np.ndarray) -> bytes:
    return write_png((np.clip(rgba, 0, 1) * 255 + 0.5).astype(np.uint8))


def paper(lines: np.ndarray) -> np.ndarray:
    """(H, W) ink -> RGBA black strokes on white."""
    grey = 1.0 - lines
    return np.stack([grey, grey, grey, np.ones_like(grey)], axis=2)


def apply(engine: Engine, images: Sequence[np.ndarray], params: dict[str, object], seed: int) -> np.ndarray:
    inputs = [EffectInput(png(im), f"in{k}.png") for k, im in enumerate(images)]
    [artifact] = engine.apply_effect("effect.sketch", params, inputs, seed=seed)
    return np.asarray(Image.open(io.BytesIO(artifact.data)).convert("RGBA"), np.float32) / 255


def shaky(points: Sequence[tuple[float, float]], rng: np.random.Generator) -> list[tuple[float, float]]:
    """A polyline as a mouse draws it: sampled every pixel, drifting and trembling."""
    out: list[tuple[float, float]] = []
    drift = np.zeros(2)
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        steps = max(2, int(np.hypot(x1 - x0, y1 - y0)))
        for t in np.linspace(0, 1, steps, endpoint=False):
            drift = 0.85 * drift + rng.normal(0, 0.35, 2)
            out.append((x0 + t * (x1 - x0) + drift[0], y0 + t * (y1 - y0) + drift[1]))
    out.append(points[-1])
    return out


def circle(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    return [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 24)]


def mouse_drawings() -> list[tuple[str, list[list[tuple[float, float]]]]]:
    return [
        ("apple", [circle(32, 36, 18), [(32, 18), (33, 10)], [(33, 14), (40, 9), (44, 12), (36, 16)]]),
        ("house", [[(14, 30), (32, 12), (50, 30)], [(17, 28), (17, 54), (47, 54), (47, 28)],
                   [(28, 54), (28, 40), (36, 40), (36, 54)]]),
        ("sun", [circle(32, 32, 12), *[[(32 + 16 * np.cos(a), 32 + 16 * np.sin(a)),
                                          (32 + 24 * np.cos(a), 32 + 24 * np.sin(a))]
                                         for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)]]),
        ("fish", [[(*p,) for p in circle(28, 32, 16)], [(43, 32), (56, 22), (56, 42), (43, 32)],
                  circle(20, 28, 2)]),
        ("cat", [circle(32, 36, 19), [(16, 28), (14, 10), (26, 19)], [(38, 19), (50, 10), (48, 28)],
                 circle(25, 33, 2), circle(39, 33, 2), [(29, 42), (32, 44), (35, 42)],
                 [(10, 40), (24, 42)], [(40, 42), (54, 40)]]),
        ("balloon", [circle(32, 26, 16), [(32, 42), (30, 50), (34, 56), (31, 62)]]),
    ]


def draw(strokes: list[list[tuple[float, float]]], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = Image.new("L", (64, 64), 0)
    pen = ImageDraw.Draw(image)
    for stroke in strokes:
        pen.line(shaky(stroke, rng), fill=255, width=2, joint="curve")
    return np.asarray(image, np.float32) / 255


def tile(label: str, rgba: np.ndarray) -> Image.Image:
    alpha = rgba[..., 3:]
    checker = (np.indices(rgba.shape[:2]).sum(axis=0) // 4 % 2)[..., None] * 0.08 + 0.92
    rgb = rgba[..., :3] * alpha + checker * (1 - alpha)
    img = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)).resize(
        (rgba.shape[1] * ZOOM, rgba.shape[0] * ZOOM), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (img.width, img.height + 14), "white")
    canvas.paste(img, (0, 14))
    ImageDraw.Draw(canvas).text((2, 1), label, fill="black")
    return canvas


def grid(rows: list[list[Panel]]) -> Image.Image:
    tiles = [[tile(label, image) for label, image in row] for row in rows]
    w, h = tiles[0][0].width + 4, tiles[0][0].height + 4
    out = Image.new("RGB", (w * max(len(r) for r in tiles), h * len(tiles)), "white")
    for y, row in enumerate(tiles):
        for x, t in enumerate(row):
            out.paste(t, (x * w, y * h))
    return out


def held_out_rows(engine: Engine) -> list[list[Panel]]:
    held = sketch_held_out().subset(np.array(ROWS))
    clean, real = held_out_drawings(held, 0.0)
    rough, _ = held_out_drawings(held, 1.0)
    train = sketch_train()
    flat, nearest = FlatFill(train)(clean), NearestDrawing(train)(clean)
    rows = []
    for n in range(len(held)):
        sketch, hand = paper(clean[n, 0]), paper(rough[n, 0])
        rows.append([("sketch", sketch), ("seed 1", apply(engine, [sketch], {}, 1)),
                     ("seed 2", apply(engine, [sketch], {}, 2)), ("rough hand", hand),
                     ("its result", apply(engine, [hand], {}, 1)), ("flat fill", flat[n].transpose(1, 2, 0)),
                     ("nearest", nearest[n].transpose(1, 2, 0)), ("OpenMoji", real[n].transpose(1, 2, 0))])
    return rows


def mouse_rows(engine: Engine) -> list[list[Panel]]:
    hint_colours = [(0.2, 0.8, 0.2), (0.2, 0.4, 0.95), (0.95, 0.3, 0.3), (0.6, 0.2, 0.8), (0.3, 0.3, 0.3),
                    (0.1, 0.7, 0.7)]
    rows = []
    for k, (name, strokes) in enumerate(mouse_drawings()):
        sketch = paper(draw(strokes, k))
        hints = np.zeros((64, 64, 4), np.float32)
        hints[30:33, 26:38] = (*hint_colours[k], 1.0)  # one scribble near the middle
        first = apply(engine, [sketch], {}, 1)
        mask = np.zeros((64, 64, 4), np.float32)
        mask[:32] = 1.0  # redo the top half
        redone = apply(engine, [sketch, first, mask], {"roles": ["sketch", "previous", "mask"]}, 5)
        second = apply(engine, [sketch], {}, 2)
        rows.append([(f"{name} (mouse)", sketch), ("seed 1", first), ("seed 2", second),
                     ("hint", hints), ("with hint", apply(engine, [sketch, hints], {}, 1)),
                     ("top half redone", redone)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("docs/images/sketch_samples.png"))
    args = parser.parse_args()
    logging.getLogger("museforge").setLevel(logging.ERROR)
    engine = Engine(Settings()).start()
    try:
        first, second = grid(held_out_rows(engine)), grid(mouse_rows(engine))
    finally:
        engine.close()
    out = Image.new("RGB", (max(first.width, second.width), first.height + second.height + 10), "white")
    out.paste(first, (0, 0))
    out.paste(second, (0, first.height + 10))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    out.save(args.output, optimize=True)
    print(f"wrote {args.output} ({out.width}x{out.height})")


if __name__ == "__main__":
    main()
