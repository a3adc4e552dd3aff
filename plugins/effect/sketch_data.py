"""The drawings ``effect.sketch`` learns from: OpenMoji's line art paired with its colour version.

npm's ``openmoji`` 17.0.0 holds 4,495 emoji drawn twice by the same artists: black line art
(``black/svg``) and the finished colour image (``color/svg``, the same lines over flat colour).
Both are rendered at 64x64 with resvg (``resvg-py``, export path only). Left out: the 2,030
skin-tone variants (recolourings of one drawing that would put near-twins on both sides of the
split), the nine components, and the 270 flags, whose line art is the same rectangle for every
flag (their colours are not in the drawing; colour hints give them). That leaves 2,186 pairs.

15% of each OpenMoji group is held out (seeded). Both splits are committed under ``data/``
(3 MB): the quality checks need the training split too, since the nearest-drawing baseline
retrieves from it and the flat-fill baseline takes its mean colours, and ``--quick`` trains on
96 of its pairs offline. A full export checks they are exactly that split of the archive.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from museforge.export.dataset_sources import RegistrySource, fetch
from museforge.export.datasets import Fingerprint

__all__ = ["GROUPS", "HELD_OUT_FILE", "SIZE", "SKETCH_SOURCE", "SKETCH_TRAINING_DATA", "TRAIN_FILE",
           "SketchPairs", "SketchSplit", "commonest_colours", "ink", "quick_fixture", "read_pairs",
           "sketch_held_out", "sketch_split", "sketch_train", "write_sketch_splits"]

SIZE = 64
GROUPS = ("smileys-emotion", "people-body", "animals-nature", "food-drink", "travel-places", "activities",
          "objects", "symbols", "extras-openmoji", "extras-unicode")
_HELD_OUT = 0.15
_FIXTURE = 96
_SEED = 0

SKETCH_SOURCE = RegistrySource(
    registry="npm",
    package="openmoji",
    version="17.0.0",
    sha256="55ee7d13485dec86e9f38c1f3a645a13382d33ff97c0cd845ee824b0aef45e68",
    licence="CC-BY-SA-4.0",
    attribution="All emojis designed by OpenMoji (https://openmoji.org/), the open-source emoji and icon "
    "project. License: CC BY-SA 4.0",
    licence_files=("package/LICENSE.txt", "package/README.md"),
)
SKETCH_TRAINING_DATA = SKETCH_SOURCE.training_data(
    "OpenMoji line art and colour versions, 2,186 pairs rendered at 64x64, from npm openmoji")
DATA_DIR = Path(__file__).parent / "data"
HELD_OUT_FILE = DATA_DIR / "sketch_heldout.npz"
TRAIN_FILE = DATA_DIR / "sketch_train.npz"


@dataclass(frozen=True)
class SketchPairs:
    """Line art as darkness (uint8 (N, 64, 64), 255 = black ink), colour as straight RGBA (N, 64, 64, 4)."""

    lines: np.ndarray
    colour: np.ndarray
    group: np.ndarray  # index into GROUPS

    def __len__(self) -> int:
        return len(self.lines)

    def subset(self, index: np.ndarray) -> SketchPairs:
        return SketchPairs(self.lines[index], self.colour[index], self.group[index])

    def unit_lines(self) -> np.ndarray:
        """(N, 1, 64, 64) float32 darkness in [0, 1]."""
        return (self.lines.astype(np.float32) / np.float32(255.0))[:, None]

    def unit_colour(self) -> np.ndarray:
        """(N, 4, 64, 64) float32 straight RGBA in [0, 1]."""
        return np.ascontiguousarray(self.colour.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


@dataclass(frozen=True)
class SketchSplit:
    train: SketchPairs
    held_out: SketchPairs
    fingerprint: str
    source: str


def _render(svg: Path) -> np.ndarray:
    """An SVG at SIZE x SIZE as straight RGBA uint8, colour zeroed where fully transparent."""
    import resvg_py  # export path only: serving never renders SVG

    png = bytes(resvg_py.svg_to_bytes(svg_path=str(svg), width=SIZE, height=SIZE))
    with Image.open(io.BytesIO(png)) as im:
        pixels = np.asarray(im.convert("RGBA"))
    return np.where(pixels[..., 3:] == 0, 0, pixels).astype(np.uint8)


def ink(rgba: np.ndarray) -> np.ndarray:
    """Darkness of straight RGBA uint8 pixels as uint8: alpha times (1 - luma)."""
    rgb = rgba[..., :3].astype(np.float32) / 255.0
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.rint(255.0 * (rgba[..., 3].astype(np.float32) / 255.0) * (1.0 - luma)).astype(np.uint8)


def read_pairs(package: Path) -> SketchPairs:
    """Every kept emoji of the unpacked package, in openmoji.json's order."""
    entries = json.loads((package / "data" / "openmoji.json").read_text(encoding="utf-8"))
    lines, colour, groups = [], [], []
    for entry in entries:
        if entry.get("skintone") or entry["group"] not in GROUPS:
            continue
        name = f"{entry['hexcode']}.svg"
        lines.append(ink(_render(package / "black" / "svg" / name)))
        colour.append(_render(package / "color" / "svg" / name))
        groups.append(GROUPS.index(entry["group"]))
    return SketchPairs(np.stack(lines), np.stack(colour), np.array(groups, dtype=np.int64))


def commonest_colours(pairs: SketchPairs, count: int) -> tuple[str, ...]:
    """The ``count`` commonest colours of fully opaque pixels, commonest first, as hex
    (``sketch_palette.OPENMOJI_PALETTE`` is this for the training split)."""
    pixels = pairs.colour.reshape(-1, 4)
    pixels = pixels[pixels[:, 3] == 255][:, :3]
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:count]
    return tuple("".join(f"{int(v):02x}" for v in colours[i]) for i in order)


def _split(every: SketchPairs) -> tuple[SketchPairs, SketchPairs]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(every))
    train, held = train_test_split(index, test_size=_HELD_OUT, random_state=_SEED, stratify=every.group)
    # A held-out drawing whose line art is also a training one (OpenMoji reuses a few outlines)
    # would flatter every figure, so the held-out side drops those.
    seen = {every.lines[i].tobytes() for i in train}
    held = np.array([i for i in held if every.lines[i].tobytes() not in seen])
    return every.subset(np.sort(train)), every.subset(np.sort(held))


def _load(path: Path) -> SketchPairs:
    with np.load(path) as npz:
        return SketchPairs(npz["lines"], npz["colour"], npz["group"].astype(np.int64))


def sketch_held_out() -> SketchPairs:
    return _load(HELD_OUT_FILE)


def sketch_train() -> SketchPairs:
    return _load(TRAIN_FILE)


def quick_fixture(train: SketchPairs) -> SketchPairs:
    """The pairs ``--quick`` trains on: every n-th training pair, _FIXTURE of them."""
    return train.subset(np.linspace(0, len(train) - 1, _FIXTURE).round().astype(np.int64))


def held_out_fingerprint() -> str:
    held = sketch_held_out()
    return Fingerprint().add(held.lines, held.colour, held.group).hexdigest()


def _package(cache: Path | None) -> Path:
    return fetch(SKETCH_SOURCE, cache).directory / "package"


def sketch_split(quick: bool = False, cache: Path | None = None) -> SketchSplit:
    """Training pairs (quick: 96 committed ones) and the committed held-out pairs."""
    held, train = sketch_held_out(), sketch_train()
    if quick:
        train = quick_fixture(train)
        source = f"{len(train)} committed OpenMoji training pairs (quick mode)"
    else:
        for name, got, expected in zip(("training", "held-out"), _split(read_pairs(_package(cache))),
                                       (train, held), strict=True):
            same = np.array_equal(got.lines, expected.lines) and np.array_equal(got.colour, expected.colour)
            if not same:
                raise ValueError(f"the committed {name} pairs are not that split of {SKETCH_SOURCE.package} "
                                 f"{SKETCH_SOURCE.version}; rewrite them with write_sketch_splits()")
        source = f"npm {SKETCH_SOURCE.package} {SKETCH_SOURCE.version}, {len(train) + len(held)} pairs"
    fingerprint = Fingerprint().add(train.lines, train.colour, held.lines, held.colour,
                                    f"sketch;size={SIZE};held_out={_HELD_OUT!r};seed={_SEED}")
    return SketchSplit(train=train, held_out=held, fingerprint=fingerprint.hexdigest(), source=source)


def write_sketch_splits(cache: Path | None = None) -> None:
    """(Re)write the committed training and held-out pairs from the archive."""
    train, held = _split(read_pairs(_package(cache)))
    DATA_DIR.mkdir(exist_ok=True)
    for path, part in ((HELD_OUT_FILE, held), (TRAIN_FILE, train)):
        np.savez_compressed(path, lines=part.lines, colour=part.colour, group=part.group.astype(np.uint8))
