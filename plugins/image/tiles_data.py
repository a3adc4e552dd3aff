"""The pixel-art tiles ``image.tiles`` learns from: Dungeon Crawl Stone Soup floors and walls (no torch).

Debian's ``crawl-tiles-data`` holds ``floor.png`` (960 cells) and ``wall.png`` (1,344 cells),
sheets of 32x32 RGBA tiles on a grid; they are fetched at export time by pinned version and
sha256, the licence from the ``copyright`` file of ``crawl-common`` (the tiles package's doc
folder links there). Cells that are not whole tiles (any transparency: doors, decorations
cut to shape) or nearly flat (std < 8 of 255: blank cells, placeholders) are dropped,
and byte-for-byte repeats are kept once, which leaves 2,068 tiles.

Appearance clusters ("looks") are found in the data: k-means on each tile's mean hue
(saturation-weighted), saturation and value, six clusters named by what they look like.
The hold-out is every fifth run of 16 consecutive cells of each sheet: a tile set (a run
of variants of one floor or wall) lands mostly on one side, so held-out tiles are new
designs rather than near-twins of training tiles. Both sides of the split (1.7 MB) and the
cluster centres are committed under ``data/``: the quality checks measure distances to the
whole training split offline, ``--quick`` trains on a seeded 96-tile subset of it, and a
full export checks the committed files are exactly that split of the fetched archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from museforge.export.dataset_sources import RegistrySource, fetch
from museforge.export.datasets import Fingerprint

__all__ = [
    "HELD_OUT_FILE",
    "KINDS",
    "LOOKS",
    "TILE",
    "TILES_SOURCE",
    "TILES_TRAINING_DATA",
    "TRAIN_FILE",
    "TileSet",
    "TilesSplit",
    "assign_looks",
    "cut_tiles",
    "look_features",
    "tiles_held_out",
    "tiles_split",
    "tiles_train",
    "tiles_train_fixture",
    "write_tiles_fixtures",
]

TILE = 32
KINDS = ("floor", "wall")  # must equal tiles.KINDS
# Named by what each cluster looks like on the contact sheets (docs/images/tiles_looks.png);
# ``_LOOK_ANCHORS`` gives each name its place in the feature space, so a re-run of k-means
# names its clusters the same way whatever order they come out in.
LOOKS = ("stone", "teal", "ochre", "violet", "green", "red")  # must equal tiles.LOOKS
_LOOK_ANCHORS = np.array([  # (s*cos h, s*sin h, value, saturation) of each named look
    [0.0, 0.0, 0.27, 0.18],
    [-0.73, -0.12, 0.31, 0.77],
    [0.52, 0.49, 0.34, 0.75],
    [-0.07, -0.63, 0.31, 0.71],
    [-0.35, 0.61, 0.25, 0.75],
    [0.75, 0.02, 0.28, 0.77],
])
_SHEETS = ("usr/share/crawl/dat/tiles/floor.png", "usr/share/crawl/dat/tiles/wall.png")
_MIN_STD = 8.0  # of 255: flatter cells are blanks and placeholders, not tiles
_RUN = 16  # consecutive cells that go to the same side of the split
_HELD_OUT_RUN = 2  # runs with index % 5 == 2 are held out
_FIXTURE = 96  # training tiles of quick mode, stratified by kind and look
_SEED = 0

TILES_SOURCE = RegistrySource(
    registry="debian",
    package="crawl-tiles-data",
    version="2:0.28.0-1.1",
    sha256="6eae80f1d2c1ba9d6c9c8e276d1007dd2e900aab58f55427913c20605988fda3",
    licence="GPL-2.0-or-later",
    attribution="Dungeon Crawl Stone Soup tiles (floor.png, wall.png), copyright 1997-2016 Linley "
    "Henzell, the Stone Soup team and contributors; the game is GPL-2.0-or-later and its copyright "
    "file states most tiles are public domain or CC0 (the RLTiles project)",
)
# Where the licence text is: crawl-tiles-data's doc folder is a link into this package.
COPYRIGHT_SOURCE = RegistrySource(
    registry="debian",
    package="crawl-common",
    version="2:0.28.0-1.1",
    sha256="50c8f0091ba88538dde6585e5eddba02677bfe94d3ee4dc90a5bd3a788650f59",
    licence="GPL-2.0-or-later",
    attribution=TILES_SOURCE.attribution,
    licence_files=("usr/share/doc/crawl-common/copyright",),
)
TILES_TRAINING_DATA = TILES_SOURCE.training_data(
    "Dungeon Crawl Stone Soup floor and wall tiles, 2,068 of 32x32 from Debian crawl-tiles-data")
DATA_DIR = Path(__file__).parent / "data"
HELD_OUT_FILE = DATA_DIR / "tiles_heldout.npz"
TRAIN_FILE = DATA_DIR / "tiles_train.npz"


@dataclass(frozen=True)
class TileSet:
    """Tiles with their labels: uint8 RGB (N, 32, 32, 3), kind and look indices (N,)."""

    tiles: np.ndarray
    kind: np.ndarray
    look: np.ndarray

    def __len__(self) -> int:
        return len(self.tiles)

    def subset(self, index: np.ndarray) -> TileSet:
        return TileSet(self.tiles[index], self.kind[index], self.look[index])

    def unit(self) -> np.ndarray:
        """The tiles as float32 in [0, 1]."""
        return np.ascontiguousarray(self.tiles, dtype=np.float32) / np.float32(255.0)


@dataclass(frozen=True)
class TilesSplit:
    train: TileSet
    held_out: TileSet
    centres: np.ndarray  # (len(LOOKS), 4) k-means centres in look_features space, in LOOKS order
    fingerprint: str
    source: str


def cut_tiles(sheet: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An RGBA sheet -> (whole tiles as uint8 RGB (N, 32, 32, 3), their cell indices (N,))."""
    if sheet.ndim != 3 or sheet.shape[2] != 4 or sheet.shape[0] % TILE or sheet.shape[1] % TILE:
        raise ValueError(f"expected an RGBA sheet of {TILE}-px cells, got shape {sheet.shape}")
    rows, cols = sheet.shape[0] // TILE, sheet.shape[1] // TILE
    cells = sheet.reshape(rows, TILE, cols, TILE, 4).transpose(0, 2, 1, 3, 4).reshape(-1, TILE, TILE, 4)
    opaque = (cells[..., 3] == 255).all(axis=(1, 2))
    textured = cells[..., :3].reshape(len(cells), -1).std(axis=1) >= _MIN_STD
    keep = np.flatnonzero(opaque & textured)
    return np.ascontiguousarray(cells[keep, ..., :3]), keep


def look_features(tiles: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) uint8 -> (N, 4): saturation-weighted mean hue (cos, sin), mean value and saturation."""
    hsv = np.stack([np.asarray(Image.fromarray(t).convert("HSV")) for t in tiles]).astype(np.float64) / 255.0
    hue, sat, val = hsv[..., 0] * 2.0 * np.pi, hsv[..., 1], hsv[..., 2]
    return np.stack([(sat * np.cos(hue)).mean(axis=(1, 2)), (sat * np.sin(hue)).mean(axis=(1, 2)),
                     val.mean(axis=(1, 2)), sat.mean(axis=(1, 2))], axis=1)


def assign_looks(tiles: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each tile's nearest look centre (int64 indices into LOOKS)."""
    f = look_features(tiles)
    return np.argmin(((f[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1).astype(np.int64)


def find_looks(tiles: np.ndarray) -> np.ndarray:
    """k-means centres of the tiles' look features, ordered as LOOKS by their nearest anchors."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans

    centres = KMeans(len(LOOKS), n_init=10, random_state=_SEED).fit(look_features(tiles)).cluster_centers_
    cost = ((_LOOK_ANCHORS[:, None, :] - centres[None]) ** 2).sum(axis=2)
    rows, cols = linear_sum_assignment(cost)
    if cost[rows, cols].max() > 0.05:
        raise ValueError("the clusters found do not match the named looks any more: "
                         f"centres {np.round(centres, 2).tolist()}; rename them in LOOKS and _LOOK_ANCHORS")
    return np.asarray(centres[cols[np.argsort(rows)]], dtype=np.float64)


def _read_all(content: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All whole tiles of both sheets: (tiles, kind, held-out mask)."""
    tiles, kinds, held = [], [], []
    for kind, name in enumerate(_SHEETS):
        with Image.open(content / name) as im:
            cut, cells = cut_tiles(np.asarray(im.convert("RGBA")))
        tiles.append(cut)
        kinds.append(np.full(len(cut), kind, dtype=np.int64))
        held.append((cells // _RUN) % 5 == _HELD_OUT_RUN)
    every, kind_of, held_out = np.concatenate(tiles), np.concatenate(kinds), np.concatenate(held)
    # The sheets repeat some tiles byte for byte; keeping only the first copy stops a held-out
    # tile from also being a training tile.
    _, first = np.unique(every.reshape(len(every), -1), axis=0, return_index=True)
    keep = np.sort(first)
    return every[keep], kind_of[keep], held_out[keep]


def _split(content: Path) -> tuple[TileSet, TileSet, np.ndarray]:
    """(training, held out, look centres) of the unpacked archive."""
    tiles, kinds, held = _read_all(content)
    centres = find_looks(tiles[~held])  # found on the training side only
    every = TileSet(tiles, kinds, assign_looks(tiles, centres))
    return every.subset(np.flatnonzero(~held)), every.subset(np.flatnonzero(held)), centres


def _load(path: Path) -> tuple[TileSet, np.ndarray]:
    with np.load(path) as npz:
        return (TileSet(npz["tiles"], npz["kind"].astype(np.int64), npz["look"].astype(np.int64)),
                npz["centres"])


def tiles_held_out() -> TileSet:
    """The committed held-out tiles (never trained on)."""
    return _load(HELD_OUT_FILE)[0]


def tiles_train() -> TileSet:
    """The committed training split (what the shipped model learnt from)."""
    return _load(TRAIN_FILE)[0]


def tiles_train_fixture() -> TileSet:
    """96 tiles of the training split, stratified by kind and look (seeded): what --quick trains on."""
    from sklearn.model_selection import train_test_split

    train = tiles_train()
    fixture, _ = train_test_split(np.arange(len(train)), train_size=_FIXTURE, random_state=_SEED,
                                  stratify=train.kind * len(LOOKS) + train.look)
    return train.subset(np.sort(fixture))


def look_centres() -> np.ndarray:
    return _load(HELD_OUT_FILE)[1]


def held_out_fingerprint() -> str:
    held = tiles_held_out()
    return Fingerprint().add(held.tiles, held.kind, held.look).hexdigest()


def tiles_split(quick: bool = False, cache: Path | None = None) -> TilesSplit:
    """Training tiles (quick: 96 of them) and the held-out tiles, from the committed split.

    A full run fetches the Debian packages (pinned sha256) and refuses to train unless the
    committed files are exactly this split of the archive.
    """
    held, centres = _load(HELD_OUT_FILE)
    if quick:
        train = tiles_train_fixture()
        source = f"{len(train)} committed crawl-tiles-data training tiles (quick mode)"
    else:
        fetch(COPYRIGHT_SOURCE, cache)  # keeps the copyright file beside the data
        want_train, want_held, want_centres = _split(fetch(TILES_SOURCE, cache).directory)
        train = tiles_train()
        fields = ("tiles", "kind", "look")
        for name, got, expected in (("held-out", want_held, held), ("training", want_train, train)):
            if not all(np.array_equal(getattr(got, f), getattr(expected, f)) for f in fields):
                raise ValueError(f"the committed {name} tiles are not that split of {TILES_SOURCE.package} "
                                 f"{TILES_SOURCE.version}; rewrite them with write_tiles_fixtures()")
        if not np.allclose(want_centres, centres):
            raise ValueError("the committed look centres differ from the data's; rewrite them with "
                             "write_tiles_fixtures()")
        source = f"Debian {TILES_SOURCE.package} {TILES_SOURCE.version}, {len(train) + len(held)} tiles"
    fingerprint = Fingerprint().add(train.tiles, train.kind, train.look, held.tiles, held.kind, held.look,
                                    f"tiles;run={_RUN};held={_HELD_OUT_RUN};seed={_SEED}")
    return TilesSplit(train=train, held_out=held, centres=centres, fingerprint=fingerprint.hexdigest(),
                      source=source)


def write_tiles_fixtures(cache: Path | None = None) -> None:
    """(Re)write the committed training and held-out tiles and the look centres from the archive."""
    fetch(COPYRIGHT_SOURCE, cache)
    train, held, centres = _split(fetch(TILES_SOURCE, cache).directory)
    DATA_DIR.mkdir(exist_ok=True)
    for path, part in ((HELD_OUT_FILE, held), (TRAIN_FILE, train)):
        np.savez_compressed(path, tiles=part.tiles, kind=part.kind.astype(np.uint8),
                            look=part.look.astype(np.uint8), centres=centres)
