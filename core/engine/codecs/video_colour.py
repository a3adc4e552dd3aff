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
COEFFICIENTS = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114), 9: (0.2627, 0.0593)}
FULL_RANGE = 2  # AVCOL_RANGE_JPEG


def bit_depth(frame: Any) -> int:
    """Bits per luma sample of a decoded frame's format."""
    components = frame.format.components
    return int(components[0].bits) if components else 8


def high_depth_rgb(frame: Any) -> np.ndarray | None:
    """(height, width, 3) uint8 RGB of a YUV frame of more than 8 bits (None: let the scaler do it)."""
    depth = bit_depth(frame)
    name = frame.format.name
    if depth <= 8 or not name.startswith("yuv") or depth > 16:
        return None
    planes = frame.reformat(format="yuv444p16le").to_ndarray().astype(np.float32)
    native = planes / np.float32(1 << (16 - depth))  # the stored codes, at their own depth
    unit = float(1 << (depth - 8))
    if frame.color_range == FULL_RANGE:
        top = float((1 << depth) - 1)
        luma = native[:, :, 0] / top
        blue, red = ((native[:, :, i] - 128.0 * unit) / top for i in (1, 2))
    else:  # limited ("MPEG") range, what unspecified means
        luma = (native[:, :, 0] - 16.0 * unit) / (219.0 * unit)
        blue, red = ((native[:, :, i] - 128.0 * unit) / (224.0 * unit) for i in (1, 2))
    kr, kb = COEFFICIENTS.get(frame.colorspace, COEFFICIENTS[1 if frame.height >= 720 else 6])
    r = luma + 2.0 * (1.0 - kr) * red
    b = luma + 2.0 * (1.0 - kb) * blue
    g = (luma - kr * r - kb * b) / (1.0 - kr - kb)
    rgb = np.stack([r, g, b], axis=2)
    return np.floor(np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
