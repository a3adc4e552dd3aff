"""effect.restore's JPEG quantisation-constraint projection (plugins/effect/jpeg_constraint.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile

from museforge import Media
from museforge.engine.effect import Picture
from museforge.plugins.effect import restore
from museforge.plugins.effect.denoise_quality import gaussian_blur, pad_even
from museforge.plugins.effect.jpeg_constraint import (
    DCT,
    constrain_to_jpeg,
    luma_in_steps,
    luma_quantisation,
    matches_quality,
    project_luma,
)
from museforge.plugins.effect.restoration_net import RECEPTIVE_RADIUS
from museforge.plugins.effect.restore_quality import jpeg_round_trip
from tests.models import shipped_session
from tests.plugins.effect.sessions import SessionContext


def scene(height: int, width: int) -> np.ndarray:
    """A smooth picture with edges and texture (HxWx3 in [0, 1]), so JPEG has something to lose."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(x / 9.0)[..., None] * np.cos(y / 13.0)[..., None] * np.array([1.0, 0.6, -0.4])
    base[(x > width / 3) & (y < height / 2)] += 0.25  # a hard edge: ringing
    return np.clip(base + rng.normal(0, 0.03, base.shape), 0, 1).astype(np.float32)


def luma_coefficients(image: np.ndarray) -> np.ndarray:
    """JPEG luma DCT coefficients of the whole 8x8 blocks of [3, H, W], [rows, cols, 8, 8]."""
    rows, cols = image.shape[1] // 8, image.shape[2] // 8
    luma = np.tensordot([0.299, 0.587, 0.114], image[:, :rows * 8, :cols * 8], axes=1) * 255 - 128
    blocks = luma.reshape(rows, 8, cols, 8).transpose(0, 2, 1, 3)
    return np.asarray(DCT @ blocks @ DCT.T, np.float64)


@pytest.mark.parametrize("quality", range(1, 101))
def test_tables_are_the_ones_pillow_writes(quality: int) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        assert isinstance(decoded, JpegImageFile)
        written = np.array(decoded.quantization[0]).reshape(8, 8)  # natural order, luma first
    np.testing.assert_array_equal(luma_quantisation(quality), written)


@pytest.mark.parametrize("quality", [5, 20, 50])
def test_the_decoded_jpeg_is_its_own_projection(quality: int) -> None:
    decoded = jpeg_round_trip(scene(93, 122), quality).transpose(2, 0, 1)
    np.testing.assert_allclose(project_luma(decoded, decoded, quality), decoded, atol=1e-6)


@pytest.mark.parametrize("quality", [10, 30])
def test_projection_lands_in_the_quantisation_intervals(quality: int) -> None:
    truth = scene(96, 128)
    decoded = jpeg_round_trip(truth, quality).transpose(2, 0, 1)
    # A poor restoration (heavy blur plus noise) that leaves many intervals.
    rng = np.random.default_rng(2)
    guess = gaussian_blur(decoded.transpose(1, 2, 0), 2.0).transpose(2, 0, 1)
    guess = guess + rng.normal(0, 0.02, guess.shape).astype(np.float32)
    projected = project_luma(guess, decoded, quality)
    step = luma_quantisation(quality)
    index = np.rint(luma_coefficients(decoded) / step)
    assert np.any(np.abs(luma_coefficients(guess) - index * step) > step / 2)
    assert np.all(np.abs(luma_coefficients(projected) - index * step) <= step / 2 + 1e-3)
    # Only luma moved: the same correction on R, G and B.
    change = projected - guess
    np.testing.assert_allclose(change[0], change[1], atol=1e-6)
    np.testing.assert_allclose(change[0], change[2], atol=1e-6)
    # The original lies in the intervals, so the projection brings the guess closer to it.
    truth_luma = luma_coefficients(truth.transpose(2, 0, 1))
    assert np.sum((luma_coefficients(projected) - truth_luma) ** 2) < np.sum(
        (luma_coefficients(guess) - truth_luma) ** 2)


def test_blocks_cut_by_the_edge_are_left_alone() -> None:
    decoded = jpeg_round_trip(scene(45, 61), 20).transpose(2, 0, 1)  # 5 x 7 whole blocks + cut ones
    guess = np.clip(decoded + 0.1 * np.random.default_rng(3).standard_normal(decoded.shape), 0, 1)
    projected = project_luma(guess.astype(np.float32), decoded, 20)
    assert projected.shape == decoded.shape
    np.testing.assert_array_equal(projected[:, 40:, :], guess[:, 40:, :].astype(np.float32))
    np.testing.assert_array_equal(projected[:, :, 56:], guess[:, :, 56:].astype(np.float32))
    assert not np.allclose(projected[:, :40, :56], guess[:, :40, :56])
    tiny = np.zeros((3, 7, 30), np.float32)
    np.testing.assert_array_equal(project_luma(tiny, tiny, 20), tiny)


@pytest.mark.parametrize("quality", [5, 10, 17, 30, 50])
def test_the_stated_quality_is_checked_against_the_picture(quality: int) -> None:
    truth = scene(120, 160)
    decoded = jpeg_round_trip(truth, quality).transpose(2, 0, 1)
    assert matches_quality(luma_in_steps(decoded, quality))
    # Other tables: coarser, finer, and whole-number times finer (whose grid the true one's lies on).
    for stated in {quality // 2, quality - 5, quality + 5, quality + 10, 2 * quality, 3 * quality}:
        if 5 <= stated <= 100 and stated != quality:
            assert not matches_quality(luma_in_steps(decoded, stated)), stated
    # The same JPEG cropped off its block grid, or never a JPEG at all.
    assert not matches_quality(luma_in_steps(decoded[:, 3:, 5:], quality))
    assert not matches_quality(luma_in_steps(truth.transpose(2, 0, 1), quality))


def test_no_projection_without_confirmation() -> None:
    truth = scene(96, 128).transpose(2, 0, 1)
    decoded = jpeg_round_trip(truth.transpose(1, 2, 0), 20).transpose(2, 0, 1)
    guess = np.clip(decoded + 0.05, 0, 1).astype(np.float32)
    projected, applied = constrain_to_jpeg(guess, decoded, 20)
    assert applied and not np.array_equal(projected, guess)
    for picture, quality in ((decoded, 40), (truth, 20), (decoded[:, :8, :8], 20)):
        same, applied = constrain_to_jpeg(guess[:, :picture.shape[1], :picture.shape[2]], picture, quality)
        assert not applied
        np.testing.assert_array_equal(same, guess[:, :picture.shape[1], :picture.shape[2]])


@pytest.mark.parametrize("constraint", [True, False])
def test_served_effect_projects_the_whole_frame_after_tiling(constraint: bool) -> None:
    """Tiled and projected on the frame's own 8x8 grid = one whole-frame run, then the projection."""
    session = shipped_session(restore.MODELS / "restore" / "1")
    height, width = 149, 203  # odd sides, cut blocks at the right and bottom
    decoded = jpeg_round_trip(scene(height, width), 15)
    ctx = SessionContext(restore.MODEL, session)
    params = restore.RestoreParams(quality=15, tile=65, jpeg_constraint=constraint)
    media = [m for m in restore.EFFECT.apply(ctx, params, [Picture(decoded, None, "jpeg")], 0)
             if isinstance(m, Media)]
    assert len(media) == 1 and ctx.calls > 1  # really tiled
    assert media[0].metadata["jpeg_constraint"] == ("applied" if constraint else "off")
    whole = session.run(["result"], {"image": pad_even(decoded).transpose(2, 0, 1)[None].copy(),
                                     "quality": np.array([15], np.float32)})[0][0][:, :height, :width]
    image = decoded.transpose(2, 0, 1)
    expected = np.clip(project_luma(whole, image, 15) if constraint else whole, 0, 1).transpose(1, 2, 0)
    # Tiles equal the whole frame away from its border; the projection mixes within a block.
    inner = (slice(RECEPTIVE_RADIUS + 9, -RECEPTIVE_RADIUS - 9),) * 2
    np.testing.assert_allclose(np.asarray(media[0].data)[inner], expected[inner], atol=5e-5)


def test_served_effect_leaves_a_picture_that_is_no_such_jpeg_to_the_network() -> None:
    session = shipped_session(restore.MODELS / "restore" / "1")
    noise = np.random.default_rng(4).random((64, 80, 3), dtype=np.float32)
    ctx = SessionContext(restore.MODEL, session)
    events = restore.EFFECT.apply(ctx, restore.RestoreParams(quality=20), [Picture(noise, None, "png")], 0)
    media = [m for m in events if isinstance(m, Media)]
    assert media[0].metadata["jpeg_constraint"].startswith("skipped")
    whole = session.run(["result"], {"image": noise.transpose(2, 0, 1)[None].copy(),
                                     "quality": np.array([20], np.float32)})[0][0].transpose(1, 2, 0)
    inner = (slice(RECEPTIVE_RADIUS + 1, -RECEPTIVE_RADIUS - 1),) * 2
    np.testing.assert_allclose(np.asarray(media[0].data)[inner], np.clip(whole, 0, 1)[inner], atol=2e-5)
