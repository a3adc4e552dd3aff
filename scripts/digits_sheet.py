"""Side-by-side sheet of image.digits versions beside held-out real MNIST, 8 per digit.

Usage: ``python scripts/digits_sheet.py OUT.png [VERSION ...]`` (default: every shipped version),
e.g. ``python scripts/digits_sheet.py docs/images/digits_v1_v2_mnist.png 1 2``.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw

from museforge.plugins.image.digits import MODELS_DIR, sample_inputs
from museforge.plugins.image.digits_data import mnist_held_out

PER, SCALE, GAP, HEAD = 8, 2, 16, 22
TITLES = {1: "v1: scikit-learn digits", 2: "v2: MNIST"}


def generated(version: int) -> np.ndarray:
    session = ort.InferenceSession(str(MODELS_DIR / str(version) / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    return np.stack([session.run(["image"], sample_inputs(1000 + d, PER, d))[0][:, 0] for d in range(10)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="the PNG to write")
    parser.add_argument("versions", nargs="*", type=int, help="model versions (default: all shipped)")
    args = parser.parse_args()
    versions = args.versions or sorted(int(p.name) for p in MODELS_DIR.iterdir() if p.name.isdigit())
    held_x, held_y = mnist_held_out()
    panels = [(TITLES.get(v, f"v{v}"), generated(v)) for v in versions]
    panels.append(("held-out real MNIST", np.stack([held_x[held_y == d][:PER] for d in range(10)])))
    cell = 28 * SCALE
    width, height = PER * cell, 10 * cell
    sheet = Image.new("L", (len(panels) * width + (len(panels) - 1) * GAP, height + HEAD), 40)
    draw = ImageDraw.Draw(sheet)
    for i, (title, images) in enumerate(panels):
        grid = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
        grid = grid.transpose(0, 2, 1, 3).reshape(10 * 28, PER * 28)
        left = i * (width + GAP)
        sheet.paste(Image.fromarray(grid).resize((width, height), Image.Resampling.NEAREST), (left, HEAD))
        draw.text((left + 4, 5), title, fill=230)
    sheet.save(args.out, optimize=True)
    print(args.out, sheet.size)


if __name__ == "__main__":
    main()
