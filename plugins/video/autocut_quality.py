"""Footage whose every shot is known good or bad, and how much of a cut comes from the good ones.

Used by the tests and ``bench.autocut`` (not by the effect): a shot is a slow pan over one of the
held-out photographs (good), the same view still and blurred (soft), nearly black (dark), or
washed out to a flat grey (flat). A cut's quality is the share of its frames taken from good
shots, against cuts of the same shape placed at random or evenly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from .shot_data import HELD_OUT_PHOTOS, photo

SIZE = (256, 144)


@dataclass(frozen=True)
class Footage:
    shots: tuple[str, ...]  # "kind:photo", e.g. "good:coffee"
    shot_frames: int

    @property
    def frames(self) -> int:
        return len(self.shots) * self.shot_frames

    def good(self) -> np.ndarray:
        """[frames] bool: the frame lies in a good shot."""
        return np.repeat([s.startswith("good") for s in self.shots], self.shot_frames)


def shot_frames(kind: str, name: str, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One shot of ``count`` frames (SIZE) of the held-out photograph named ``name``."""
    picture = photo(next(p for p in HELD_OUT_PHOTOS if name in p))
    height, width = picture.shape[:2]
    crop_w = int(width * 0.6)
    crop_h = min(height, int(crop_w * SIZE[1] / SIZE[0]))
    x0, y0 = int(rng.integers(0, width - crop_w)), int(rng.integers(0, max(1, height - crop_h)))
    frames = []
    for t in range(count):
        x = x0 if kind == "soft" else int(x0 + (width - crop_w - x0) * t / count * 0.8)
        view = Image.fromarray(picture[y0:y0 + crop_h, x:x + crop_w]).resize(SIZE)
        if kind == "soft":
            view = view.filter(ImageFilter.GaussianBlur(6))
        pixels = np.asarray(view, np.float32)
        if kind == "dark":
            pixels *= 0.04
        elif kind == "flat":
            pixels = 200 + 0.05 * (pixels - pixels.mean())
        frames.append(np.clip(pixels, 0, 255).astype(np.uint8))
    return frames


def write_footage(path: Path, footage: Footage, fps: int, seed: int, tone: bool) -> Path:
    """The footage as an H.264 MP4 (CRF 18), with a quiet tone as its sound when ``tone``."""
    import av

    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(fps), options={"crf": "18"})
        video.width, video.height, video.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        sound = out.add_stream("aac", rate=48000) if tone else None
        number = 0
        for shot in footage.shots:
            kind, name = shot.split(":")
            for rgb in shot_frames(kind, name, footage.shot_frames, rng):
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts, number = number, number + 1
                out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = number * 48000 // fps
            wave = (0.2 * np.sin(2 * np.pi * 330 * np.arange(samples) / 48000)).astype(np.float32)
            for start in range(0, samples, 1024):
                part = wave[None, start:start + 1024]
                chunk = av.AudioFrame.from_ndarray(part, format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, start
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


def good_share(spans: Sequence[tuple[int, int, int]], footages: Sequence[Footage]) -> float:
    """The share of a cut's frames taken from good shots; ``spans`` are (video, start, frames)."""
    good = [f.good() for f in footages]
    taken = sum(int(good[video][start:start + frames].sum()) for video, start, frames in spans)
    return taken / max(1, sum(frames for _, _, frames in spans))


def random_spans(rng: np.random.Generator, footages: Sequence[Footage], lengths: Sequence[int]
                 ) -> list[tuple[int, int, int]]:
    """A cut of the same shot lengths with each shot from a random video at a random place."""
    spans = []
    for length in lengths:
        video = int(rng.integers(len(footages)))
        spans.append((video, int(rng.integers(0, footages[video].frames - length + 1)), length))
    return spans


def even_spans(footages: Sequence[Footage], lengths: Sequence[int]) -> list[tuple[int, int, int]]:
    """A cut of the same shot lengths spread evenly over the videos end to end (a naive editor)."""
    total = sum(f.frames for f in footages)
    offsets = np.cumsum([0] + [f.frames for f in footages])
    spans = []
    for number, length in enumerate(lengths):
        at = int((number + 0.5) * total / len(lengths)) - length // 2
        video = int(np.searchsorted(offsets, at, side="right") - 1)
        start = min(max(0, at - int(offsets[video])), footages[video].frames - length)
        spans.append((video, start, length))
    return spans
