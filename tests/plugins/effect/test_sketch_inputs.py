"""effect.sketch served: hints as drawing apps and JPEG save them, thin strokes, opaque previous
results and roles left to their defaults."""

from __future__ import annotations

import io

import grpc
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from museforge.client import Client, field_violations

EFFECT = "effect.sketch"
BLUE, ORANGE, RED = (30, 90, 220), (230, 120, 20), (208, 48, 42)


def encoded(image: Image.Image, fmt: str = "PNG", **options: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGBA")).astype(int)


def face(size: int) -> Image.Image:
    image = Image.new("RGB", (size, size), "white")
    draw, k = ImageDraw.Draw(image), size / 64
    for box in ([8, 8, 56, 56], [20, 22, 26, 30], [38, 22, 44, 30]):
        draw.ellipse([v * k for v in box], outline="black", width=round(2 * k))
    return image


def scribbles(size: int) -> Image.Image:
    """A blue and an orange scribble, 2 canvas px wide, on white: RGB, as a paint program saves it."""
    image = Image.new("RGB", (size, size), "white")
    draw, k = ImageDraw.Draw(image), size / 64
    draw.line([(14 * k, 36 * k), (20 * k, 42 * k)], fill=BLUE, width=round(2 * k))
    draw.line([(40 * k, 44 * k), (46 * k, 40 * k)], fill=ORANGE, width=round(2 * k))
    return image


@pytest.mark.parametrize(("size", "quality", "near"),
                         [(64, 60, 110), (64, 90, 80), (256, 60, 50), (256, 95, 40)])
def test_jpeg_ringing_around_rgb_hints_is_not_a_hint(client: Client, size: int, quality: int,
                                                      near: int) -> None:
    """The ringing (13-67 levels from white) was read as near-white hints and filled the face."""
    sketch, hints = encoded(face(size)), encoded(scribbles(size), "JPEG", quality=quality)
    out = decoded(client.apply_effect(EFFECT, [sketch, hints], seed=1).artifacts[0].data)
    yy, xx = np.mgrid[0:size, 0:size] * 64 / size
    paper = (np.hypot(yy - 32, xx - 32) < 20) & (out[..., 3] == 255) & (out[..., :3].max(axis=2) > 80)
    colours = out[paper][:, :3]
    # 4:2:0 chroma takes a 2 px scribble's saturation at 64 px: the colours are near, one per scribble.
    hinted = np.min([np.abs(colours - c).max(axis=1) for c in (BLUE, ORANGE)], axis=0) <= near
    assert hinted.mean() > 0.9, hinted.mean()
    _, counts = np.unique(colours, axis=0, return_counts=True)
    assert (counts > 0.01 * len(colours)).sum() <= 3, counts  # a flat colour each, not shades of white


@pytest.mark.parametrize(("size", "width"), [(128, 3), (256, 3), (512, 6)])
def test_a_thin_stroke_keeps_a_hinted_region_apart_from_its_neighbour(client: Client, size: int,
                                                                      width: int) -> None:
    """A divider under 1.5 canvas px: the halves merged on the canvas, the right one left
    to the network (a patchwork) with red carried over the divider."""
    sketch = Image.new("RGB", (size, size), "white")
    draw, q, c = ImageDraw.Draw(sketch), size // 4, size // 2
    draw.rectangle([c - q, c - q, c + q, c + q], outline=(17, 17, 17), width=width)
    draw.line([(c, c - q), (c, c + q)], fill=(17, 17, 17), width=width)
    hints = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    k = size / 64
    ImageDraw.Draw(hints).line([(20 * k, 30 * k), (24 * k, 34 * k)], fill=(*RED, 255), width=3)
    out = decoded(client.apply_effect(EFFECT, [encoded(sketch), encoded(hints)], seed=1).artifacts[0].data)
    m = 2 + round(2 * k)  # the blend of 2 canvas px beside a stroke, past the stroke's edge
    left = out[c - q + m:c + q - m, c - q + m:c - m]
    right = out[c - q + m:c + q - m, c + m:c + q - m]
    assert (left[..., :3] == RED).all(axis=2).mean() > 0.99
    painted = right[..., 3] > 200
    assert painted.mean() > 0.99 and len(np.unique(right[painted][:, :3], axis=0)) == 1  # one flat colour
    assert not (np.abs(right[..., :3] - RED).sum(axis=2) < 60).any()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_region_redone_in_a_result_flattened_on_white_keeps_its_white(client: Client, fmt: str) -> None:
    sketch = encoded(face(64))
    first = client.apply_effect(EFFECT, [sketch], seed=3).artifacts[0].data
    flat = Image.new("RGBA", (64, 64), "white")
    flat.alpha_composite(Image.fromarray(decoded(first).astype(np.uint8)))
    previous = flat.convert("RGB")
    mask = np.zeros((64, 64), np.uint8)
    mask[0:41, 0:34] = 255  # the top-left corner: paper outside the face and part of it
    inputs = [sketch, encoded(previous, fmt, quality=95), encoded(Image.fromarray(mask))]
    redo = client.apply_effect(EFFECT, inputs, {"roles": ["sketch", "previous", "mask"]}, seed=9)
    out = decoded(redo.artifacts[0].data)
    assert (out[..., 3] == 255).all()  # no hole: the previous had no transparency
    kept = decoded(encoded(previous, fmt, quality=95))
    # Its paper: the network's faint alpha (1-3 of 255) off the drawing darkens it a level or two.
    assert np.abs(out[0:5, 0:5] - kept[0:5, 0:5]).max() <= 3
    assert np.array_equal(out[mask == 0], kept[mask == 0])


def test_an_opaque_rgba_hints_layer_reads_as_an_rgb_one(client: Client) -> None:
    """A drawing app's layer, white and wholly opaque, had made the whole picture white."""
    sketch, rgb = encoded(face(64)), scribbles(64)
    as_rgb = client.apply_effect(EFFECT, [sketch, encoded(rgb)], seed=2).artifacts[0].data
    as_layer = client.apply_effect(EFFECT, [sketch, encoded(rgb.convert("RGBA"))], seed=2).artifacts[0].data
    assert np.array_equal(decoded(as_rgb), decoded(as_layer))
    assert (decoded(as_layer)[36:44, 16:20, :3] == BLUE).all()


def test_three_inputs_without_roles_say_how_they_were_read(client: Client) -> None:
    sketch = encoded(face(64))
    mask = encoded(Image.new("L", (64, 64), 255))
    with pytest.raises(grpc.RpcError) as caught:
        client.apply_effect(EFFECT, [sketch, sketch, mask])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    problem = dict(field_violations(caught.value))["parameters.roles"]
    assert "sketch, hints, previous" in problem and 'roles=["sketch","previous","mask"]' in problem, problem


def photographed(lighting: str) -> bytes:
    """A ring drawn in pencil on a photographed page: grain, and a lamp's falloff or a vignette."""
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float64)
    centre = np.hypot(yy - 128, xx - 128)
    page = 235 - 0.3 * xx if lighting == "falloff" else 230 - 40 * (centre / 181) ** 2
    page = page + np.random.default_rng(0).normal(0, 4, page.shape)
    page[np.abs(centre - 90) < 3] = 80
    return encoded(Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).convert("RGB"), "JPEG", quality=90)


@pytest.mark.parametrize("lighting", ["falloff", "vignette"])
def test_a_photographed_page_is_paper_not_ink(client: Client, lighting: str) -> None:
    """The darker side of the page read as ink: a brown shape along the edge, the corners and the
    paper's grain laid over the result as faint black."""
    out = decoded(client.apply_effect(EFFECT, [photographed(lighting)], seed=1).artifacts[0].data)
    yy, xx = np.mgrid[0:256, 0:256]
    off = np.hypot(yy - 128, xx - 128) > 100
    assert (out[off][:, 3] == 0).mean() > 0.99 and out[off][:, 3].max() <= 8
    on = np.abs(np.hypot(yy - 128, xx - 128) - 90) < 1.5
    assert np.median(out[on][:, 3]) > 160 and np.median(out[on][:, :3]) < 40  # the pencil stroke is kept


def test_white_strokes_on_black_are_the_same_drawing(client: Client) -> None:
    """Chalk on a board came back as a dark grey square with the strokes cut out of it."""
    dark_on_white = client.apply_effect(EFFECT, [encoded(face(128))], seed=5).artifacts[0].data
    chalk = ImageOps.invert(face(128))
    light_on_dark = client.apply_effect(EFFECT, [encoded(chalk)], seed=5).artifacts[0].data
    assert np.array_equal(decoded(light_on_dark), decoded(dark_on_white))
    framed = face(128)  # a comic panel's black frame is a border of ink, not dark paper
    ImageDraw.Draw(framed).rectangle([0, 0, 127, 127], outline="black", width=3)
    out = decoded(client.apply_effect(EFFECT, [encoded(framed)], seed=5).artifacts[0].data)
    assert (out[:3, :, :3] == 0).all() and (out[:3, :, 3] == 255).all()
