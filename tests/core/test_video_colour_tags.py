"""A video's YUV is read and written with one matrix and range: the frame's tag, else the stream's,
else BT.709 from 720 lines up (BT.601 below), limited range for ProRes. Colour bars through an
effect at strength 0 keep their code values, and the output says which matrix it used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.core.test_cli import museforge

BARS = [(191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0), (191, 0, 191), (191, 0, 0), (0, 0, 191)]


def codes(rgb: tuple[int, int, int], bits: int, full: bool) -> tuple[int, int, int]:
    """BT.709 Y, Cb, Cr of an 8-bit RGB colour at ``bits``."""
    r, g, b = (c / 255 for c in rgb)
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    cb, cr = (b - y) / 1.8556, (r - y) / 1.5748
    if full:
        top = (1 << bits) - 1
        return round(y * top), round((cb + 0.5) * top), round((cr + 0.5) * top)
    unit = 1 << (bits - 8)
    return round((16 + 219 * y) * unit), round((128 + 224 * cb) * unit), round((128 + 224 * cr) * unit)


def make_bars(path: Path, width: int, height: int, stream_tag: bool, full: bool = False) -> Path:
    """Bars written as YUV codes: ProRes 4:2:2 10-bit, or (``full``) full-range 8-bit lossless H.264.
    ``stream_tag``: the stream says BT.709 (the frames say nothing)."""
    codec, pix, bits, across = ("libx264", "yuvj420p", 8, 2) if full else ("prores_ks", "yuv422p10le", 10, 2)
    with av.open(str(path), "w") as out:
        stream: Any = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix
        if full:
            stream.options = {"qp": "0"}
        if stream_tag:
            context = stream.codec_context
            context.colorspace = context.color_primaries = context.color_trc = 1
            context.color_range = 2 if full else 1
        kind = np.uint16 if bits > 8 else np.uint8
        for number in range(2):
            frame = av.VideoFrame(width, height, pix)
            if full:
                frame.color_range = 2
            for index, plane in enumerate(frame.planes):
                wide = width if index == 0 else width // across
                values = np.zeros((plane.height, plane.line_size // np.dtype(kind).itemsize), kind)
                for k, colour in enumerate(BARS):
                    values[:, k * wide // 7:(k + 1) * wide // 7] = codes(colour, bits, full)[index]
                plane.update(values.tobytes())
            frame.pts = number
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def measured(path: Path) -> tuple[list[tuple[int, int, int]], Any]:
    """The Y, Cb, Cr codes at the middle of each bar, and the first frame (for its tags)."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        planes = []
        for plane in frame.planes:
            kind = np.uint16 if "10" in frame.format.name else np.uint8
            values = np.frombuffer(bytes(plane), kind).reshape(plane.height, -1)
            planes.append(values[:, :plane.width] if plane.width else values)
        context = container.streams.video[0].codec_context
        tags = (context.colorspace, context.color_range)
    middle: list[tuple[int, int, int]] = []
    for k in range(7):
        y, cb, cr = (int(p[p.shape[0] // 2, int((k + 0.5) * p.shape[1] / 7)]) for p in planes[:3])
        middle.append((y, cb, cr))
    return middle, tags


def farthest(one: list[tuple[int, int, int]], other: list[tuple[int, int, int]]) -> int:
    return max(abs(a - b) for x, y in zip(one, other, strict=True) for a, b in zip(x, y, strict=True))


def through(source: Path, target: Path) -> Path:
    result = museforge("apply", "effect.stylize", str(source), "-p", "strength=0", "-o", str(target),
                       "--local", "--plugins", "effect")
    assert result.returncode == 0, result.stderr
    return target


@pytest.mark.parametrize(("width", "height", "stream_tag"), [(1280, 720, False), (320, 180, True)])
def test_ten_bit_bars_keep_their_codes_through_an_effect(tmp_path: Path, width: int, height: int,
                                                         stream_tag: bool) -> None:
    # Untagged HD was read as BT.709 and written as BT.601 (green Y 533 came back 449); a small
    # plate whose stream says BT.709 was read as BT.601 and written as BT.709 (533 came back 627).
    source = make_bars(tmp_path / "bars.mov", width, height, stream_tag)
    before, _ = measured(source)
    after, tags = measured(through(source, tmp_path / "out.mov"))
    assert farthest(before, after) <= 2, (before, after)
    assert tags == (1, 1)  # BT.709, limited range: what it was read as


def test_full_range_eight_bit_becomes_limited_range_prores(tmp_path: Path) -> None:
    source = make_bars(tmp_path / "full.mp4", 336, 180, stream_tag=True, full=True)
    after, tags = measured(through(source, tmp_path / "out.mov"))
    expected = [codes(colour, 10, full=False) for colour in BARS]
    # 75% white is 721, not the full-range 767 tagged limited range.
    assert farthest(expected, after) <= 4, (expected, after)
    assert tags == (1, 1)
    # H.264 keeps the source's full range, and says so.
    before, _ = measured(source)
    kept, tags = measured(through(source, tmp_path / "out.mp4"))
    assert farthest(before, kept) <= 2, (before, kept)
    assert tags == (1, 2)
