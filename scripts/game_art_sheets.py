"""Sample sheets of image.tiles and image.icons beside held-out real tiles and emoji.

Usage: ``python scripts/game_art_sheets.py DOCS_IMAGES_DIR`` writes
``tiles_samples.png`` (per kind and look: 8 generated tiles, then 4 held-out real ones),
``tiles_sheets.png`` (generated 4x4-tile sheets, each repeated 2x2 to show that it wraps)
and ``icons_samples.png`` (per category: 8 generated icons, then 4 held-out real ones), all
sampled exactly as the server does and drawn over a checkerboard where there is alpha.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw

from museforge.plugins.image import icons, tiles
from museforge.plugins.image.icons_data import icons_held_out
from museforge.plugins.image.icons_quality import generate_with_session as icons_from
from museforge.plugins.image.tiles_data import tiles_held_out
from museforge.plugins.image.tiles_quality import generate_with_session as tiles_from

GENERATED, REAL, GAP, LABEL = 8, 4, 12, 96


def session(models_dir: Path) -> ort.InferenceSession:
    """The newest shipped version: what a server serves by default."""
    newest = max(int(p.name) for p in models_dir.iterdir() if p.name.isdigit())
    path = models_dir / str(newest) / "model.onnx"
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def over_checkerboard(rgba: np.ndarray, square: int = 8) -> np.ndarray:
    """Straight RGBA (H, W, 4) composited over a light grey checkerboard."""
    h, w = rgba.shape[:2]
    board = ((np.arange(h)[:, None] // square + np.arange(w)[None, :] // square) % 2) * 0.15 + 0.75
    alpha = rgba[..., 3:]
    return np.asarray(rgba[..., :3] * alpha + board[..., None] * (1.0 - alpha))


def row(images: list[np.ndarray], real: list[np.ndarray]) -> np.ndarray:
    size = images[0].shape[0]
    gap = np.full((size, GAP, 3), 0.15)
    return np.concatenate([*images, gap, *real], axis=1)


def save(rows: list[tuple[str, np.ndarray]], scale: int, out: Path) -> None:
    width = rows[0][1].shape[1] * scale + LABEL
    height = sum(r.shape[0] * scale + 4 for _, r in rows)
    sheet = Image.new("RGB", (width, height), (38, 38, 38))
    draw = ImageDraw.Draw(sheet)
    top = 0
    for label, pixels in rows:
        image = Image.fromarray((np.clip(pixels, 0, 1) * 255).round().astype(np.uint8))
        sheet.paste(image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST),
                    (LABEL, top))
        draw.text((4, top + 4), label, fill=(230, 230, 230))
        top += pixels.shape[0] * scale + 4
    sheet.save(out, optimize=True)
    print(out, sheet.size)


def tiles_sheets(out_dir: Path) -> None:
    generated, kinds, looks, _ = tiles_from(session(tiles.MODELS_DIR), GENERATED)
    held = tiles_held_out()
    rows = []
    for k, kind in enumerate(tiles.KINDS):
        for lk, look in enumerate(tiles.LOOKS):
            mine = list(generated[(kinds == k) & (looks == lk)][:GENERATED])
            real = list(held.unit()[(held.kind == k) & (held.look == lk)][:REAL])
            rows.append((f"{kind}, {look}", row(mine, real)))
    save(rows, 3, out_dir / "tiles_samples.png")
    sheets = []
    decoder = session(tiles.MODELS_DIR)
    for k, kind in enumerate(tiles.KINDS):
        picks = []
        for lk in (0, 1, 2, 5):
            noise = np.random.default_rng(100 + 10 * k + lk).standard_normal(
                (1, *tiles.noise_shape(4, 4))).astype(np.float32)
            feed = {"noise": noise, "kind": np.array([k]), "look": np.array([lk])}
            image = decoder.run(["image"], feed)[0][0]
            sheet = tiles.quantise(np.transpose(image, (1, 2, 0)), 16)
            picks.append(np.tile(sheet, (2, 2, 1)))
        gap = np.full((256, GAP, 3), 0.15)
        strip = [p for pick in picks for p in (pick, gap)][:-1]
        sheets.append((f"{kind} sheets", np.concatenate(strip, axis=1)))
    save(sheets, 1, out_dir / "tiles_sheets.png")


def icons_sheet(out_dir: Path) -> None:
    generated, wanted = icons_from(session(icons.MODELS_DIR), GENERATED)
    held = icons_held_out()
    rows = []
    for c, name in enumerate(icons.CATEGORIES):
        mine = [over_checkerboard(x) for x in generated[wanted == c][:GENERATED]]
        real = [over_checkerboard(x) for x in held.unit()[held.category == c][:REAL]]
        rows.append((name, row(mine, real)))
    save(rows, 1, out_dir / "icons_samples.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, help="directory for the PNGs (e.g. docs/images)")
    parser.add_argument("--only", choices=("tiles", "icons"), help="one generator's sheets only")
    args = parser.parse_args()
    if args.only != "icons":
        tiles_sheets(args.out_dir)
    if args.only != "tiles":
        icons_sheet(args.out_dir)


if __name__ == "__main__":
    main()
