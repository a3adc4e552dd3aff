"""What the shot model sees of a video: a few numbers per frame, from small copies of the frames.

Frames are analysed at ``ANALYSIS`` (256 x 144, what the decoder scales to) and then
averaged in 4 x 4 blocks to 64 x 36: training renders its clips at 256 x 144 and takes
the same path, so the model meets the same numbers when serving. Each frame is compared
with the frames just before it (what is needed of them kept in small rings, so memory
does not grow with the video): colour and edge differences, the difference left after the
best global shift (a pan explains itself, a cut does not), colour histograms near and far,
how well the previous frame is the mean of its neighbours (true through a dissolve or a
fade, not through motion), and the brightness and contrast a fade drives to black. The
temporal network looks at a window of these vectors around each frame. numpy only.
"""

from __future__ import annotations

from collections import deque

import numpy as np

ANALYSIS = (256, 144)  # (width, height) frames are decoded at
BLOCK = 4  # analysis pixels averaged per side: 64 x 36 features frames
SMALL = (ANALYSIS[1] // BLOCK, ANALYSIS[0] // BLOCK)  # (height, width)
LOOKBACK = 8  # farthest earlier frame compared
HIST_BINS = 4  # per RGB channel: 64 joint bins
FEATURES = (
    "diff", "diff_shifted", "edges", "hist", "hist_far", "diff_2", "changed",
    "blend_residual", "diff_correlation", "shift_peak", "shift", "brightness", "contrast",
    "brightness_step",
)
NUM_FEATURES = len(FEATURES)
_GREY = np.array([0.299, 0.587, 0.114], np.float32)


def small_frame(rgb: np.ndarray) -> np.ndarray:
    """An analysis-size uint8 RGB frame (ANALYSIS) as float32 64 x 36 x 3 in [0, 1]."""
    height, width = SMALL
    if rgb.shape[:2] != (height * BLOCK, width * BLOCK):
        raise ValueError(f"frames are analysed at {ANALYSIS[0]}x{ANALYSIS[1]}, got "
                         f"{rgb.shape[1]}x{rgb.shape[0]}")
    blocks = rgb.reshape(height, BLOCK, width, BLOCK, 3).astype(np.float32)
    return blocks.mean(axis=(1, 3)) * np.float32(1 / 255)


def colour_histogram(frame: np.ndarray) -> np.ndarray:
    bins = np.minimum((frame * HIST_BINS).astype(np.int64), HIST_BINS - 1)
    index = (bins[..., 0] * HIST_BINS + bins[..., 1]) * HIST_BINS + bins[..., 2]
    counts = np.bincount(index.ravel(), minlength=HIST_BINS ** 3).astype(np.float32)
    return counts / counts.sum()


def _edges(grey: np.ndarray) -> np.ndarray:
    gy = np.zeros_like(grey)
    gx = np.zeros_like(grey)
    gy[1:-1] = grey[2:] - grey[:-2]
    gx[:, 1:-1] = grey[:, 2:] - grey[:, :-2]
    return np.sqrt(gx * gx + gy * gy)


_WINDOW = np.outer(np.hanning(SMALL[0]), np.hanning(SMALL[1])).astype(np.float32)


def _spectrum(grey: np.ndarray) -> np.ndarray:
    """The windowed spectrum phase correlation compares (computed once per frame)."""
    return np.fft.rfft2((grey - grey.mean()) * _WINDOW)


def _global_shift(before: np.ndarray, after: np.ndarray) -> tuple[int, int, float]:
    """The whole-pixel shift (dy, dx) that best maps the frame of spectrum ``before`` onto that
    of ``after`` (phase correlation), and the correlation peak: near 1 when one shift explains all."""
    cross = after * np.conj(before)
    cross /= np.abs(cross) + 1e-6
    height, width = SMALL
    surface = np.fft.irfft2(cross, s=SMALL)
    peak = int(np.argmax(surface))
    dy, dx = divmod(peak, width)
    if dy > height // 2:
        dy -= height
    if dx > width // 2:
        dx -= width
    return dy, dx, float(surface.flat[peak])


def _shifted_difference(before: np.ndarray, after: np.ndarray, dy: int, dx: int) -> float:
    """Mean absolute difference over the overlap once ``before`` is moved by (dy, dx)."""
    height, width = before.shape[:2]
    if abs(dy) >= height // 2 or abs(dx) >= width // 2:
        return float(np.abs(after - before).mean())
    a = before[max(0, -dy):height - max(0, dy), max(0, -dx):width - max(0, dx)]
    b = after[max(0, dy):height - max(0, -dy), max(0, dx):width - max(0, -dx)]
    return float(np.abs(b - a).mean())


class FrameFeatures:
    """Feature vectors of a stream of frames, one per frame pushed (the first compares with itself).

    What a frame's features need of it again later (its grey, edges, spectrum, histogram) is
    kept from when it was pushed, so each frame is analysed once."""

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None  # the last frame pushed
        self._greys: deque[np.ndarray] = deque(maxlen=2)
        self._edges: np.ndarray | None = None
        self._spectrum: np.ndarray | None = None
        self._hists: deque[np.ndarray] = deque(maxlen=LOOKBACK + 1)
        self._last_difference: np.ndarray | None = None

    def push(self, frame: np.ndarray) -> np.ndarray:
        """The features of ``frame`` (a :func:`small_frame`) against the frames before it."""
        grey = frame @ _GREY
        hist = colour_histogram(frame)
        edges = _edges(grey)
        spectrum = _spectrum(grey)
        previous = frame if self._previous is None else self._previous
        previous_grey = self._greys[-1] if self._greys else grey
        before_last = self._greys[-2] if len(self._greys) > 1 else previous_grey
        far_hist = self._hists[0] if self._hists else hist
        near_hist = self._hists[-1] if self._hists else hist

        difference = grey - previous_grey
        dy, dx, peak = _global_shift(spectrum if self._spectrum is None else self._spectrum, spectrum)
        change = np.abs(frame - previous).mean(axis=2)
        span = np.abs(grey - before_last).mean()
        residual = np.abs(previous_grey - 0.5 * (before_last + grey)).mean() / (span + 0.01)
        last = self._last_difference
        correlation = 0.0
        if last is not None:
            norm = float(np.linalg.norm(last) * np.linalg.norm(difference))
            correlation = float((last * difference).sum()) / norm if norm > 1e-8 else 0.0
        brightness = float(grey.mean())
        values = (
            float(change.mean()),
            _shifted_difference(previous_grey, grey, dy, dx),
            float(np.abs(edges - (edges if self._edges is None else self._edges)).mean()),
            0.5 * float(np.abs(hist - near_hist).sum()),
            0.5 * float(np.abs(hist - far_hist).sum()),
            float(span),
            float((change > 0.1).mean()),
            float(min(residual, 2.0)),
            correlation,
            peak,
            float(np.hypot(dy / SMALL[0], dx / SMALL[1])),
            brightness,
            float(grey.std()),
            brightness - float(previous_grey.mean()),
        )
        self._previous, self._edges, self._spectrum = frame, edges, spectrum
        self._greys.append(grey)
        self._hists.append(hist)
        self._last_difference = difference
        return np.asarray(values, np.float32)


def features_of(frames: np.ndarray) -> np.ndarray:
    """[T, NUM_FEATURES] for analysis-size frames [T, 144, 256, 3] uint8 (training and tests)."""
    stream = FrameFeatures()
    return np.stack([stream.push(small_frame(f)) for f in frames])
