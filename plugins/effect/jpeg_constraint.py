"""Keep a restored picture consistent with the JPEG it came from (numpy only).

A baseline JPEG stores, for each 8x8 block of each channel, the DCT coefficients
divided by the quantisation table and rounded. Whatever the original picture was, its
luma coefficients therefore lay within half a quantisation step of the stored values,
which the decoded picture's coefficients reproduce up to rounding. A restoring network
may move a coefficient further than that; moving its result to the nearest point of
that box can only bring the luma closer to the original (the box is convex and
contains it).

Only luma is constrained: chroma is stored at half resolution (4:2:0) and then
upsampled by the decoder, so its coefficients are not those of the full-resolution
planes. The projection assumes the standard (IJG / Annex K) tables scaled by libjpeg's
quality formula, which is what libjpeg and Pillow write for a given quality; since a
wrong table can exclude the original, the decoded picture's own coefficients must sit
on that table's grid (``matches_quality``) or nothing is changed.
"""

from __future__ import annotations

import numpy as np

BLOCK = 8
# ITU-T T.81 Annex K.1 luminance table, natural (row-major) order, as libjpeg ships it.
LUMA_TABLE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
], np.int64).reshape(BLOCK, BLOCK)
# JFIF (full-range BT.601) luma weights, the conversion libjpeg applies before the DCT.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)


def luma_quantisation(quality: int) -> np.ndarray:
    """The 8x8 luma quantisation table libjpeg (and Pillow) write at ``quality`` (1-100)."""
    quality = min(max(int(quality), 1), 100)
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((LUMA_TABLE * scale + 50) // 100, 1, 255)  # baseline: 8-bit entries


def _dct_matrix() -> np.ndarray:
    # JPEG's 8-point DCT-II is the orthonormal one: 2-D coefficients are D @ block @ D.T.
    n = np.arange(BLOCK)
    matrix = np.sqrt(2.0 / BLOCK) * np.cos((2 * n[None, :] + 1) * n[:, None] * np.pi / (2 * BLOCK))
    matrix[0] /= np.sqrt(2.0)
    return matrix.astype(np.float32)


DCT = _dct_matrix()


def _luma_blocks(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """JPEG luma (0-255 scale, level-shifted by 128) of [3, H, W] as [rows, cols, 8, 8] blocks."""
    crop = image[:, :rows * BLOCK, :cols * BLOCK]
    luma = np.tensordot(LUMA_WEIGHTS, crop, axes=1) * np.float32(255.0) - np.float32(128.0)
    return luma.reshape(rows, BLOCK, cols, BLOCK).transpose(0, 2, 1, 3)


def luma_in_steps(image: np.ndarray, quality: int) -> np.ndarray:
    """Luma DCT coefficients of the whole 8x8 blocks of [3, H, W], in quantisation steps at ``quality``.

    The block grid starts at the top-left pixel, as in any decoded JPEG; blocks cut by the
    right or bottom edge are left out (the encoder filled them out with copies of the edge
    pixels, which the decoder never returns, so their coefficients are unknown).
    """
    rows, cols = image.shape[1] // BLOCK, image.shape[2] // BLOCK
    step = luma_quantisation(quality).astype(np.float32)
    return np.asarray(DCT @ _luma_blocks(image, rows, cols) @ DCT.T / step, np.float32)


# The check that the stated quality is the picture's. Coefficients at least CLEAR steps from
# zero carry the evidence. On the held-out photographs at their true quality (5-50), at most
# 16% of them lay more than OFF_GRID steps from an integer (decoder rounding, clipped
# highlights); with another quality's table (but the neighbouring ones) roughly 30-90% do, except
# when that table is a whole number of times finer than the true one (q10 read as q20, q5
# as q10, q15 or q25), where nearly all the indices are multiples of that number (at the
# true quality at most 42% are multiples of 2, fewer of larger numbers).
CLEAR = 0.4
OFF_GRID = 0.15
MAX_OFF_GRID_SHARE = 0.25
FINER = range(2, 9)
MAX_MULTIPLE_SHARE = 0.8
MIN_EVIDENCE = 64


def matches_quality(steps: np.ndarray) -> bool:
    """Whether decoded luma coefficients (``luma_in_steps``) sit on the grid of the stated table."""
    clear = steps[np.abs(steps) >= CLEAR]
    if clear.size < MIN_EVIDENCE:
        return False  # too little to tell (a tiny or flat picture): leave it to the network
    index = np.rint(clear)
    if np.mean(np.abs(clear - index) > OFF_GRID) > MAX_OFF_GRID_SHARE:
        return False
    index = index[index != 0]
    return index.size > 0 and all(np.mean(index % m == 0) <= MAX_MULTIPLE_SHARE for m in FINER)


def project_luma(result: np.ndarray, decoded: np.ndarray, quality: int,
                 decoded_steps: np.ndarray | None = None) -> np.ndarray:
    """``result`` ([3, H, W] RGB in [0, 1]) with each luma DCT coefficient moved into the
    quantisation interval of the JPEG that decoded to ``decoded`` (same shape), saved at
    ``quality``: within half a step of the decoded coefficient's grid point.

    Blocks cut by the edge are left as they are (see ``luma_in_steps``). Only luma changes,
    so the same correction is added to R, G and B (Cb and Cr stay as the network made them).
    """
    _, height, width = result.shape
    rows, cols = height // BLOCK, width // BLOCK
    if rows == 0 or cols == 0:
        return result
    step = luma_quantisation(quality).astype(np.float32)
    coeffs = DCT @ _luma_blocks(result, rows, cols) @ DCT.T
    # The decoded coefficients sit on multiples of the step, up to the decoder's rounding
    # to 8-bit RGB (well under a step: every step is >= 10 at qualities up to 50).
    steps = luma_in_steps(decoded, quality) if decoded_steps is None else decoded_steps
    centre = np.rint(steps) * step
    change = np.clip(coeffs, centre - step / 2, centre + step / 2) - coeffs
    luma = (DCT.T @ change @ DCT).transpose(0, 2, 1, 3).reshape(rows * BLOCK, cols * BLOCK)
    out = np.array(result, dtype=np.float32, copy=True)
    out[:, :rows * BLOCK, :cols * BLOCK] += luma / np.float32(255.0)
    return out


def constrain_to_jpeg(result: np.ndarray, decoded: np.ndarray, quality: int) -> tuple[np.ndarray, bool]:
    """``project_luma`` if ``decoded`` looks like a JPEG saved at ``quality`` with the standard
    tables (``matches_quality``), else ``result`` unchanged; and whether it projected.

    With a wrong table the intervals need not contain the original (a quality-25 JPEG
    projected with the quality-40 table lost 0.19 dB on a held-out photograph), so the
    projection only runs when the picture's own coefficients confirm the table.
    """
    steps = luma_in_steps(decoded, quality)
    if not matches_quality(steps):
        return result, False
    return project_luma(result, decoded, quality, steps), True
