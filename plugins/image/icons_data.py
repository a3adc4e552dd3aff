"""The emoji ``image.icons`` learns from: Google's Noto Emoji at 64x64 RGBA, by category (no torch).

npm's ``emoji-datasource-google`` 16.0.0 holds 3,786 Noto Emoji PNGs (64x64 RGBA) and
``emoji.json``, which gives each emoji its category. Skin-tone variants (1,875, all "People &
Body") are left out: five recolourings of one drawing would make that category half the data
and put near-twins on both sides of the split. So are the five skin-tone swatches
("Component"). That leaves 1,906 emoji in nine categories.

15% of each category is held out (seeded); the held-out icons and a 90-icon training fixture
are committed under ``data/`` so the quality checks and ``--quick`` run offline, and a full
export checks they are exactly that split of the archive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from museforge.export.dataset_sources import RegistrySource, fetch
from museforge.export.datasets import Fingerprint

__all__ = [
    "CATEGORIES",
    "HELD_OUT_FILE",
    "ICON",
    "ICONS_SOURCE",
    "ICONS_TRAINING_DATA",
    "TRAIN_FIXTURE_FILE",
    "IconSet",
    "IconsSplit",
    "icons_held_out",
    "icons_split",
    "icons_train_fixture",
    "read_icons",
    "write_icons_fixtures",
]

ICON = 64
# Short names of emoji.json's categories, in this order (must equal icons.CATEGORIES).
CATEGORIES = ("smileys", "people", "animals", "food", "travel", "activities", "objects", "symbols", "flags")
_JSON_NAMES = ("Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places",
               "Activities", "Objects", "Symbols", "Flags")
_HELD_OUT = 0.15
_FIXTURE = 90  # training icons committed for quick mode, stratified by category
_SEED = 0

ICONS_SOURCE = RegistrySource(
    registry="npm",
    package="emoji-datasource-google",
    version="16.0.0",
    sha256="fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438",
    licence="Apache-2.0",
    attribution="Noto Emoji images v2.048 by Google (https://github.com/googlefonts/noto-emoji), "
    "Apache License 2.0; packaged in emoji-datasource-google 16.0.0 by Cal Henderson (MIT)",
    # The package's README states the images' licence; LICENSE is the packaging's (MIT).
    licence_files=("package/README.md", "package/LICENSE"),
)
ICONS_TRAINING_DATA = ICONS_SOURCE.training_data(
    "Noto Emoji, 1,906 of 64x64 RGBA in nine categories, from npm emoji-datasource-google")
DATA_DIR = Path(__file__).parent / "data"
HELD_OUT_FILE = DATA_DIR / "icons_heldout.npz"
TRAIN_FIXTURE_FILE = DATA_DIR / "icons_train_fixture.npz"


@dataclass(frozen=True)
class IconSet:
    """uint8 RGBA icons (N, 64, 64, 4) and their category indices (N,)."""

    icons: np.ndarray
    category: np.ndarray

    def __len__(self) -> int:
        return len(self.icons)

    def subset(self, index: np.ndarray) -> IconSet:
        return IconSet(self.icons[index], self.category[index])

    def unit(self) -> np.ndarray:
        """Straight (not premultiplied) RGBA as float32 in [0, 1]."""
        return np.ascontiguousarray(self.icons, dtype=np.float32) / np.float32(255.0)


@dataclass(frozen=True)
class IconsSplit:
    train: IconSet
    held_out: IconSet
    fingerprint: str
    source: str


def read_icons(package: Path) -> IconSet:
    """Every base emoji with a Google image, in emoji.json's order, as 64x64 RGBA."""
    entries = json.loads((package / "emoji.json").read_text(encoding="utf-8"))
    icons, categories = [], []
    for entry in sorted(entries, key=lambda e: (e["sort_order"], e["image"])):
        if not entry.get("has_img_google") or entry["category"] not in _JSON_NAMES:
            continue
        with Image.open(package / "img" / "google" / "64" / entry["image"]) as im:
            pixels = np.asarray(im.convert("RGBA"))
        if pixels.shape != (ICON, ICON, 4):
            raise ValueError(f"{entry['image']}: expected {ICON}x{ICON} RGBA, got {pixels.shape}")
        # Colour under fully transparent pixels is invisible and arbitrary: make it black.
        icons.append(np.where(pixels[..., 3:] == 0, 0, pixels).astype(np.uint8))
        categories.append(_JSON_NAMES.index(entry["category"]))
    return IconSet(np.stack(icons), np.array(categories, dtype=np.int64))


def _split(every: IconSet) -> tuple[IconSet, IconSet, IconSet]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(every))
    train, held = train_test_split(index, test_size=_HELD_OUT, random_state=_SEED, stratify=every.category)
    fixture, _ = train_test_split(train, train_size=_FIXTURE,
                                  random_state=_SEED, stratify=every.category[train])
    # Noto draws a few emoji identically (14 byte-for-byte repeats); a held-out icon that is also
    # a training icon would flatter the not-copies figure, so the held-out side drops those.
    seen = {every.icons[i].tobytes() for i in train}
    held = np.array([i for i in held if every.icons[i].tobytes() not in seen])
    return every.subset(np.sort(train)), every.subset(np.sort(held)), every.subset(np.sort(fixture))


def _load(path: Path) -> IconSet:
    with np.load(path) as npz:
        return IconSet(npz["icons"], npz["category"].astype(np.int64))


def icons_held_out() -> IconSet:
    return _load(HELD_OUT_FILE)


def icons_train_fixture() -> IconSet:
    return _load(TRAIN_FIXTURE_FILE)


def held_out_fingerprint() -> str:
    held = icons_held_out()
    return Fingerprint().add(held.icons, held.category).hexdigest()


def icons_split(quick: bool = False, cache: Path | None = None) -> IconsSplit:
    """Training icons (quick: the committed fixture) and the committed held-out icons."""
    held = icons_held_out()
    if quick:
        train = icons_train_fixture()
        source = f"{len(train)} committed Noto Emoji training icons (quick mode)"
    else:
        train, want_held, want_fixture = _split(read_icons(fetch(ICONS_SOURCE, cache).directory / "package"))
        for name, got, expected in (("held-out", want_held, held), ("fixture", want_fixture,
                                                                     icons_train_fixture())):
            if not (np.array_equal(got.icons, expected.icons)
                    and np.array_equal(got.category, expected.category)):
                raise ValueError(f"the committed {name} icons are not that split of {ICONS_SOURCE.package} "
                                 f"{ICONS_SOURCE.version}; rewrite them with write_icons_fixtures()")
        source = f"npm {ICONS_SOURCE.package} {ICONS_SOURCE.version}, {len(train) + len(held)} emoji"
    fingerprint = Fingerprint().add(train.icons, train.category, held.icons, held.category,
                                    f"icons;held_out={_HELD_OUT!r};seed={_SEED}")
    return IconsSplit(train=train, held_out=held, fingerprint=fingerprint.hexdigest(), source=source)


def write_icons_fixtures(cache: Path | None = None) -> None:
    """(Re)write the committed held-out icons and training fixture from the archive."""
    _, held, fixture = _split(read_icons(fetch(ICONS_SOURCE, cache).directory / "package"))
    DATA_DIR.mkdir(exist_ok=True)
    for path, part in ((HELD_OUT_FILE, held), (TRAIN_FIXTURE_FILE, fixture)):
        np.savez_compressed(path, icons=part.icons, category=part.category.astype(np.uint8))
