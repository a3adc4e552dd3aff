"""effect.sketch without the shipped model: the quick recipe, the data, strokes, hints, canvas and checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from museforge.engine.effect import Picture
from museforge.plugins.effect import sketch_data
from museforge.plugins.effect.sketch import SketchParams, check, fade, fade_in, finish, style_codes
from museforge.plugins.effect.sketch_baselines import FlatFill, NearestDrawing
from museforge.plugins.effect.sketch_canvas import SIZE, Canvas, hint_planes, ink
from museforge.plugins.effect.sketch_hints import empty, keep_outside, scribbles
from museforge.plugins.effect.sketch_palette import (
    OPENMOJI_PALETTE,
    hint_colours,
    nearest_palette,
    palette_rgb,
    snap,
)
from museforge.plugins.effect.sketch_regions import fill_regions
from museforge.plugins.effect.sketch_strokes import roughen
from tests.models import quick_export


@pytest.mark.train
@pytest.mark.slow
def test_quick_export(tmp_path: Path) -> None:
    out = tmp_path / "sketch"
    manifest = quick_export("effect.sketch", out)
    assert [t.name for t in manifest.inputs] == ["lines", "hints", "style"]
    # The network (5.0 MB) and the colour-mix guess (2.7 MB), their weights stored as float16,
    # beside a memory of the fixture's drawings.
    assert (out / "1" / "model.onnx").stat().st_size < 5_000_000
    storage = manifest.training["hyperparameters"]["half_storage"]
    assert storage["weight_bytes_after"] < 0.55 * storage["weight_bytes_before"]
    # Validated against PyTorch as exported (float32), then stored half: the image moved a little.
    assert max(manifest.validation["max_abs_diff"].values()) < 1e-3
    assert 0 < storage["largest_output_change"]["image"] < 0.01
    for key in ("model_colour_error_clean", "flat_fill_colour_error_clean", "nearest_colour_error_clean",
                "model_structure_f1_rougher", "judge_vs_nearest_accuracy", "hint_error"):
        assert key in manifest.metrics
    [data] = manifest.training_data
    assert data.licence == "CC-BY-SA-4.0" and "OpenMoji" in data.attribution


def test_the_source_is_pinned_and_the_splits_are_apart() -> None:
    source = sketch_data.SKETCH_SOURCE
    assert (source.registry, source.package, source.version) == ("npm", "openmoji", "17.0.0")
    assert source.licence == "CC-BY-SA-4.0" and "package/LICENSE.txt" in source.licence_files
    train, held = sketch_data.sketch_train(), sketch_data.sketch_held_out()
    assert (len(train), len(held)) == (1858, 301)
    assert not {x.tobytes() for x in held.lines} & {x.tobytes() for x in train.lines}
    assert train.colour.shape[1:] == (64, 64, 4)
    assert set(np.unique(held.group)) == set(range(len(sketch_data.GROUPS)))


def test_roughened_strokes_are_reproducible_and_stay_ink() -> None:
    lines = sketch_data.sketch_held_out().unit_lines()[0, 0]
    assert np.array_equal(roughen(lines, np.random.default_rng(0), 0.0).lines, lines)
    a = roughen(lines, np.random.default_rng(5), 1.0)
    b = roughen(lines, np.random.default_rng(5), 1.0)
    assert np.array_equal(a.lines, b.lines)
    assert a.lines.min() >= 0.0 and a.lines.max() <= 1.0
    assert 0.3 < a.lines.sum() / lines.sum() < 2.0 and not np.allclose(a.lines, lines)
    with pytest.raises(ValueError):
        roughen(lines, np.random.default_rng(0), 1.5)


def test_scribbles_take_the_colour_under_them_and_stay_off_the_strokes() -> None:
    held = sketch_data.sketch_held_out()
    colour, lines = held.unit_colour()[3], held.unit_lines()[3, 0]
    hints = scribbles(colour, lines, np.random.default_rng(1), 4)
    where = hints[4] > 0
    assert where.any() and not (where & (lines > 0.3)).any()
    assert np.all(colour[3][where] > 0.5)


def test_kept_pixels_become_hints_outside_the_mask() -> None:
    previous = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)
    mask = np.zeros((8, 8), np.float32)
    mask[2:5, 2:5] = 1.0
    hints = keep_outside(previous, mask)
    assert np.array_equal(hints[4], 1.0 - mask)
    assert np.array_equal(hints[:4, 0, 0], previous[:, 0, 0]) and not hints[:4, 3, 3].any()
    weight = fade_in(mask, 2)
    assert not weight[mask == 0].any() and weight[3, 3] == 1.0 and 0 < weight[2, 2] < 1.0


def picture(h: int, w: int, channels: int = 3, alpha: bool = False, fill: float = 1.0) -> Picture:
    return Picture(np.full((h, w, channels), fill, np.float32),
                   np.zeros((h, w), np.float32) if alpha else None, "png")


def test_canvas_fits_any_drawing_and_scales_back() -> None:
    canvas = Canvas(100, 200)
    assert canvas.inner == (16, 0, 32, 64)
    planes = np.ones((1, 100, 200), np.float32)
    on = canvas.to_network(planes)
    assert on.shape == (1, SIZE, SIZE) and on[0, 16:48].min() == 1.0 and on[0, :16].max() == 0.0
    image = np.zeros((4, SIZE, SIZE), np.float32)
    image[:, 16:48] = 1.0
    back = canvas.from_network(image)
    assert back.shape == (4, 100, 200) and np.allclose(back, 1.0, atol=1e-5)


def test_ink_and_hints_read_what_an_artist_sends() -> None:
    page = picture(8, 8)
    page.colour[2, :, :] = 0.0  # a black stroke on white paper
    assert ink(page)[2].min() == 1.0 and ink(page)[0].max() == 0.0
    scanned = picture(8, 8, fill=0.85)  # grey paper reads as no ink
    assert ink(scanned).max() == 0.0
    transparent = picture(8, 8, channels=3, alpha=True, fill=0.0)
    assert ink(transparent).max() == 0.0
    hints = picture(8, 8)
    hints.colour[4, 4] = (1.0, 0.0, 0.0)  # one red pixel on white
    planes = hint_planes(hints)
    assert planes[4].sum() == 1 and tuple(planes[:4, 4, 4]) == (1.0, 0.0, 0.0, 1.0)


def test_a_drawing_mostly_of_ink_keeps_its_ink() -> None:
    silhouette = picture(8, 8)  # black, with a white margin of one pixel a side
    silhouette.colour[1:-1, 1:-1] = 0.0
    lines = ink(silhouette)
    assert lines[1:-1, 1:-1].min() == 1.0 and lines[0].max() == 0.0  # 56% ink: once read as no ink
    on_grey = picture(8, 8, fill=0.0)
    on_grey.colour[:, :3] = 0.8  # grey paper on the left, ink on the right five columns
    assert np.allclose(ink(on_grey)[:, :3], 0.0) and ink(on_grey)[:, 3:].min() == 1.0


def test_a_scanned_pages_grain_is_paper() -> None:
    """Grain above the paper's median level was read as faint ink, speckling the result's background."""
    scan = picture(128, 128)
    scan.colour[:] = np.clip(0.84 + np.random.default_rng(0).normal(0, 0.024, (128, 128, 1)), 0, 1)
    scan.colour[60:64] = 0.3  # a pencil line
    lines = ink(scan)
    assert (lines[:50] > 0).mean() < 0.01 and lines[61:63].min() > 0.5


def test_pale_hints_count_and_paper_does_not() -> None:
    hints = picture(8, 8)
    hints.colour[1, 1] = (1.0, 230 / 255, 235 / 255)  # pastel pink: 25 levels from white
    hints.colour[2, 2] = (240 / 255,) * 3  # light grey: 15 levels
    hints.colour[3, 3] = (250 / 255,) * 3  # 5 levels: off-white paper, or JPEG ringing
    planes = hint_planes(hints)
    assert planes[4, 1, 1] == planes[4, 2, 2] == 1.0 and planes[4].sum() == 2


def test_checks_name_the_problem() -> None:
    ok = [picture(10, 10), picture(10, 10)]
    assert check(SketchParams(), ok) == []
    assert check(SketchParams(roles=["hints", "sketch"]), ok) == []
    assert check(SketchParams(), [picture(10, 10), picture(10, 12)])[0][0] == "inputs[1]"
    assert check(SketchParams(roles=["sketch", "mask"]), ok)[0][0] == "parameters.roles"


def test_style_codes_and_strokes_over_the_result() -> None:
    codes = style_codes(5, 3, 1.0)
    assert np.array_equal(codes[1], style_codes(6, 1, 1.0)[0]) and not style_codes(5, 2, 0.0).any()
    result = np.ones((4, 2, 2), np.float32)
    lines = np.array([[1.0, 0.0], [0.5, 0.0]], np.float32)
    out = finish(result, lines)
    assert out[0, 0, 0] == 0.0 and out[0, 1, 0] == 0.5 and out[3].min() == 1.0


def test_baselines_fill_enclosed_regions_and_retrieve_their_own_drawing() -> None:
    train = sketch_data.sketch_train()
    few = train.subset(np.arange(40))
    nearest = NearestDrawing(few)
    found = nearest.indices(few.unit_lines()[:5])  # OpenMoji draws a few emoji alike: same lines, any of them
    assert np.array_equal(few.lines[found], few.lines[:5])
    filled = FlatFill(few)(train.unit_lines()[:1])
    assert filled.shape == (1, 4, 64, 64) and filled[0, 3, 32, 32] == 1.0 and filled[0, 3, 0, 0] == 0.0


def test_the_palette_is_the_training_drawings_commonest_colours_and_hints_join_it() -> None:
    train = sketch_data.sketch_train()
    assert sketch_data.commonest_colours(train, len(OPENMOJI_PALETTE)) == OPENMOJI_PALETTE
    image = np.zeros((4, 2, 2), np.float32)
    image[:3] = np.array([0.98, 0.9, 0.2], np.float32)[:, None, None]  # near OpenMoji's yellow
    image[3] = 0.5
    snapped = snap(image)
    assert np.allclose(snapped[:3, 0, 0], np.array([0xFC, 0xEA, 0x2B]) / 255) and np.all(snapped[3] == 0.5)
    pink = np.array([[1.0, 0.0, 1.0]], np.float32)
    magenta = np.concatenate([pink.T[:, :, None] * np.ones((3, 2, 2)), image[3:]])
    assert np.allclose(snap(magenta, pink)[:3, 1, 1], pink[0])  # a hinted colour stays
    hints = np.zeros((5, 2, 2), np.float32)
    hints[:3, 0, 0], hints[4, 0, 0] = pink[0], 1.0
    assert np.allclose(hint_colours(hints), pink)


def test_review_cases_whole_mask_thin_hints_on_large_canvases_and_fades() -> None:
    assert np.all(fade_in(np.ones((6, 6), np.float32), 3) == 1.0)  # all redone: no corner seam
    hints = np.zeros((5, 1024, 1024), np.float32)
    hints[:3, 500:503, 400:600] = np.array([0.1, 0.2, 0.9], np.float32)[:, None, None]
    hints[3:, 500:503, 400:600] = 1.0
    on_canvas = Canvas(1024, 1024).to_network(hints, hints=True)
    assert on_canvas[4].sum() > 0
    assert np.allclose(on_canvas[:3, on_canvas[4] > 0].mean(axis=1), [0.1, 0.2, 0.9])
    old = np.zeros((4, 1, 1), np.float32)  # transparent
    new = np.array([1.0, 0.5, 0.0, 1.0], np.float32).reshape(4, 1, 1)
    mixed = fade(old, new, np.full((1, 1), 1 / 3, np.float32))
    assert np.allclose(mixed[:3, 0, 0], [1.0, 0.5, 0.0]) and np.isclose(mixed[3, 0, 0], 1 / 3)  # no dark ring
    assert check(SketchParams(), [picture(10, 2049)])[0][0] == "inputs[0]"


def test_a_hint_fills_the_region_it_is_in_and_nothing_else() -> None:
    lines = np.zeros((32, 32), np.float32)
    lines[4, 4:28] = lines[27, 4:28] = lines[4:28, 4] = lines[4:28, 27] = 1.0  # a box
    lines[4:28, 15] = 1.0  # split in two
    hints = empty(32, 32)
    hints[:4, 10, 8], hints[4, 10, 8] = [1.0, 0.0, 0.0, 1.0], 1.0  # red, left half
    hints[:4, 20, 20], hints[4, 20, 20] = [0.0, 0.0, 1.0, 1.0], 1.0  # blue, right half...
    hints[:4, 10, 24], hints[4, 10, 24] = [0.0, 1.0, 0.0, 1.0], 1.0  # ...and green above it
    hints[:4, 1, 1], hints[4, 1, 1] = [1.0, 1.0, 0.0, 1.0], 1.0  # yellow on the background
    filled = fill_regions(hints, lines)
    left, right = np.zeros((32, 32), bool), np.zeros((32, 32), bool)
    left[5:27, 5:15], right[5:27, 16:27] = True, True
    assert (filled[4][left] == 1.0).all() and (filled[:4, left] == [[1.0], [0.0], [0.0], [1.0]]).all()
    assert (filled[4][right] == 1.0).all()
    assert (filled[:3, 26, 20] == [0.0, 0.0, 1.0]).all() and (filled[:3, 6, 24] == [0.0, 1.0, 0.0]).all()
    background = ~left & ~right & (lines < 0.5)
    assert filled[4][background].sum() == 1.0  # the background keeps only its own scribble
    assert (filled[4][lines > 0.5] == 0.0).all()  # strokes are never hinted
    assert np.array_equal(fill_regions(empty(32, 32), lines), empty(32, 32))


def test_the_histogram_distance_sees_colours_not_rounding_noise() -> None:
    from museforge.plugins.effect.sketch_batches import hue_turn
    from museforge.plugins.effect.sketch_quality import histogram_distance

    real = sketch_data.sketch_held_out().unit_colour()[:48]
    assert histogram_distance(real, real) == 0.0
    # Half an 8-bit level of noise is invisible; with bin edges on the grey axis it read 0.29.
    noisy = real.copy()
    noise = np.random.default_rng(0).normal(0.0, 0.5 / 255, real[:, :3].shape)
    noisy[:, :3] = np.clip(real[:, :3] + noise, 0, 1)
    assert histogram_distance(noisy, real) < 0.05
    # Every colour turned a third of the way round the hue circle is a different colouring.
    turned = real.copy()
    turned[:, :3] = np.stack([hue_turn(image, 2.0 * np.pi / 3.0) for image in real[:, :3]])
    assert histogram_distance(turned, real) > 0.25


def test_the_palette_snap_picks_what_the_plain_distance_picks() -> None:
    from skimage.color import rgb2lab
    rng = np.random.default_rng(3)
    for extra in (None, rng.random((3, 3)).astype(np.float32)):
        image = rng.random((3, 40, 56)).astype(np.float32)
        # Two 8-bit colours whose distances to two palette colours tie in float32 (CIELAB from
        # skimage is float32): summed in float64 they went to the other colour.
        image[:, :20] = (np.array([147, 144, 218], np.float32) / 255)[:, None, None]
        image[:, 20:] = (np.array([252, 28, 110], np.float32) / 255)[:, None, None]
        image[:, :, 40:] = rng.random((3, 40, 16)).astype(np.float32)
        palette = rgb2lab(palette_rgb(extra)[None])[0]
        lab = rgb2lab(image.transpose(1, 2, 0))
        plain = np.argmin(np.linalg.norm(lab[:, :, None, :] - palette[None, None], axis=-1), axis=-1)
        assert np.array_equal(nearest_palette(image, extra), plain)
