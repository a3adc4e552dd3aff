"""Before/after crops of every built-in effect on held-out photographs, through the real Engine.

    python scripts/effect_samples.py [--output docs/effects/samples]

Each sheet is one row of labelled panels: the degraded input, the classical method,
the effect (run exactly as `museforge apply` runs it: PNG in, tiles, PNG out) and the
truth. The photographs are held out from every effect's training.
"""

from __future__ import annotations

import argparse
import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from museforge.config import Settings
from museforge.engine.catalogue import EffectInput, Engine
from museforge.engine.codecs.png_writer import write_png
from museforge.plugins.effect.baselines import bicubic_upscale, downscale
from museforge.plugins.effect.photo_data import load_photo

Panel = tuple[str, np.ndarray]


def as_png(image: np.ndarray) -> bytes:
    return write_png((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))


def run(engine: Engine, effect: str, params: dict[str, object], *images: np.ndarray) -> list[np.ndarray]:
    inputs = [EffectInput(as_png(im), f"in{k}.png") for k, im in enumerate(images)]
    return [np.asarray(Image.open(io.BytesIO(a.data)).convert("RGB"), np.float32) / 255
            for a in engine.apply_effect(effect, params, inputs)]


def sheet(panels: list[Panel], zoom: int = 2) -> Image.Image:
    height = max(p.shape[0] for _, p in panels) * zoom
    tiles = []
    for label, image in panels:
        img = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
        img = img.resize((image.shape[1] * zoom, image.shape[0] * zoom), Image.Resampling.NEAREST)
        canvas = Image.new("RGB", (img.width, height + 16), "white")
        canvas.paste(img, (0, 16))
        ImageDraw.Draw(canvas).text((2, 2), label, fill="black")
        tiles.append(canvas)
    out = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), height + 16), "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + 4
    return out


def upscale(engine: Engine, crop: np.ndarray) -> list[Panel]:
    small = downscale(crop, 2)
    return [("input (1/2)", np.repeat(np.repeat(small, 2, 0), 2, 1)),
            ("bicubic x2", bicubic_upscale(small, 2)),
            ("effect.upscale x2", run(engine, "effect.upscale", {"scale": 2}, small)[0]),
            ("truth", crop)]


def denoise(engine: Engine, crop: np.ndarray) -> list[Panel]:
    from museforge.plugins.effect.denoise_quality import gaussian_blur

    noisy = np.clip(crop + np.random.default_rng(0).normal(0, 25 / 255, crop.shape), 0, 1)
    return [("noisy sigma 25", noisy), ("Gaussian blur", gaussian_blur(noisy.astype(np.float32), 1.0)),
            ("effect.denoise", run(engine, "effect.denoise", {"sigma": 25}, noisy)[0]),
            ("truth", crop)]


def restore(engine: Engine, crop: np.ndarray) -> list[Panel]:
    from museforge.plugins.effect.restore_quality import jpeg_round_trip

    jpeg = jpeg_round_trip(crop.astype(np.float32), 15)
    return [("JPEG q15", jpeg), ("effect.restore", run(engine, "effect.restore", {"quality": 15}, jpeg)[0]),
            ("truth", crop)]


def stylize(engine: Engine, crop: np.ndarray) -> list[Panel]:
    from typing import get_args

    from museforge.plugins.effect.stylize import StylizeParams

    styles = get_args(StylizeParams.model_fields["style"].annotation)
    return [("input", crop)] + [
        (f"style {s}", run(engine, "effect.stylize", {"style": s}, crop)[0]) for s in styles]


def interpolate(engine: Engine, crop: np.ndarray) -> list[Panel]:
    a, b = crop[:, :-12], crop[:, 12:]  # a 12-px pan
    truth = crop[:, 6:-6]
    return [("frame 0", a), ("linear blend", (a + b) / 2),
            ("effect.interpolate", run(engine, "effect.interpolate", {"frames": 1}, a, b)[0]),
            ("truth (t = 0.5)", truth), ("frame 1", b)]


SAMPLES: dict[str, Callable[[Engine, np.ndarray], list[Panel]]] = {
    "effect.upscale": upscale, "effect.denoise": denoise, "effect.restore": restore,
    "effect.stylize": stylize, "effect.interpolate": interpolate,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("docs/effects/samples"))
    args = parser.parse_args()
    logging.getLogger("museforge").setLevel(logging.ERROR)
    engine = Engine(Settings()).start()
    args.output.mkdir(parents=True, exist_ok=True)
    coffee = load_photo("skimage:coffee").astype(np.float32) / 255
    flower = load_photo("sklearn:flower.jpg").astype(np.float32) / 255
    crops = {"coffee": coffee[60:188, 330:458], "flower": flower[150:278, 250:378]}
    for effect, make in SAMPLES.items():
        if effect not in engine.effects or not engine.available(engine.effects[effect]):
            print(f"skipped {effect}: not available")
            continue
        for name, crop in crops.items():
            path = args.output / f"{effect.split('.')[1]}-{name}.png"
            sheet(make(engine, crop)).save(path, optimize=True)
            print(path)
    engine.close()


if __name__ == "__main__":
    main()
