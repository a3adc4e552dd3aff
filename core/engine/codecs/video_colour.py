"""RGB from high-bit-depth video frames (10- and 12-bit: ProRes, 10-bit H.264/HEVC), exactly.

FFmpeg's scaler turns a 10-bit frame into 8-bit RGB about two levels too dark (mid grey 128
stored as Y 504 read back 126; white never reached 255), and 48-bit RGB is still half a level
off. Taking the planes as they are stored (chroma upsampled to 4:4:4, luma untouched) and
applying the frame's own matrix and range here gives the codes back: every pass of a ProRes
plate through an effect no longer darkens it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# (Kr, Kb) of the matrix coefficients FFmpeg names (AVColorSpace): BT.709, BT.601 (470BG and
# SMPTE 170M), BT.2020 non-constant luminance.
# SMPTE 240M and FCC are kept for old tapes.
COEFFICIENTS = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087),
                9: (0.2627, 0.0593)}
LIMITED_RANGE, FULL_RANGE = 1, 2  # AVCOL_RANGE_MPEG, AVCOL_RANGE_JPEG
BT709, BT601 = 1, 6


def matrix_of(frame_tag: int, stream_tag: int, height: int) -> int:
    """The matrix a video's YUV is read and written with: the frame's tag, else the stream's, else
    BT.709 from 720 lines up and BT.601 below (what players assume of an untagged file). Decoding
    and encoding both use it, so an untagged HD ProRes keeps its colours through an effect."""
    for tag in (frame_tag, stream_tag):
        if tag in COEFFICIENTS:
            return tag
    return BT709 if height >= 720 else BT601


def range_of(frame_tag: int, stream_tag: int) -> int:
    """Full or limited range: the frame's tag, else the stream's, else limited (what unspecified means)."""
    for tag in (frame_tag, stream_tag):
        if tag in (LIMITED_RANGE, FULL_RANGE):
            return tag
    return LIMITED_RANGE


def bit_depth(frame: Any) -> int:
    """Bits per luma sample of a decoded frame's format."""
    components = frame.format.components
    return int(components[0].bits) if components else 8


def frame_rgb(frame: Any, matrix: int, colour_range: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """(height, width, 3) uint8 RGB of a decoded frame read with ``matrix`` and ``colour_range``
    (see :func:`matrix_of`), scaled to ``size`` (width, height) by area averaging when given."""
    exact = high_depth_rgb(frame, matrix, colour_range) if size is None else None
    if exact is not None:
        return exact
    scaled = {} if size is None else {"width": size[0], "height": size[1], "interpolation": "AREA"}
    return frame.reformat(format="rgb24", src_colorspace=matrix, src_color_range=colour_range,
                          **scaled).to_ndarray()


def high_depth_rgb(frame: Any, matrix: int | None = None,
                   colour_range: int | None = None) -> np.ndarray | None:
    """(height, width, 3) uint8 RGB of a YUV frame of more than 8 bits (None: let the scaler do it),
    read with ``matrix`` and ``colour_range`` (by default the frame's own, as :func:`matrix_of`)."""
    depth = bit_depth(frame)
    name = frame.format.name
    if depth <= 8 or not name.startswith("yuv") or depth > 16:
        return None
    if matrix is None:
        matrix = matrix_of(frame.colorspace, 0, frame.height)
    if colour_range is None:
        colour_range = range_of(frame.color_range, 0)
    planes = frame.reformat(format="yuv444p16le").to_ndarray().astype(np.float32)
    native = planes / np.float32(1 << (16 - depth))  # the stored codes, at their own depth
    unit = float(1 << (depth - 8))
    if colour_range == FULL_RANGE:
        top = float((1 << depth) - 1)
        luma = native[:, :, 0] / top
        blue, red = ((native[:, :, i] - 128.0 * unit) / top for i in (1, 2))
    else:  # limited ("MPEG") range, what unspecified means
        luma = (native[:, :, 0] - 16.0 * unit) / (219.0 * unit)
        blue, red = ((native[:, :, i] - 128.0 * unit) / (224.0 * unit) for i in (1, 2))
    kr, kb = COEFFICIENTS[matrix]
    r = luma + 2.0 * (1.0 - kr) * red
    b = luma + 2.0 * (1.0 - kb) * blue
    g = (luma - kr * r - kb * b) / (1.0 - kr - kb)
    rgb = np.stack([r, g, b], axis=2)
    return np.floor(np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
