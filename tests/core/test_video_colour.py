"""High-bit-depth video reads back the codes it stores: a ProRes plate's grey is not darkened."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from museforge.engine.codecs.video import probe, read_frames, read_range

GREYS = (128, 255, 16, 200)


def write(path: Path, pictures: list[np.ndarray], pix_fmt: str) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("prores_ks", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for number, picture in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace=1, dst_color_range=1)  # BT.709, limited range
            frame.pts = number
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("pix_fmt", ["yuv422p10le", "yuv444p10le"])
def test_ten_bit_greys_come_back_exactly(tmp_path: Path, pix_fmt: str) -> None:
    # Before, FFmpeg's scaler read 4:2:2 10-bit 128 as 126 and white as 253.
    plate = write(tmp_path / "greys.mov", [np.full((48, 64, 3), v, np.uint8) for v in GREYS], pix_fmt)
    info = probe(plate)
    for frames in (list(read_frames(info)), list(read_range(info, 0, len(GREYS) - 1))):
        assert [frame[0, 0].tolist() for frame in frames] == [[v, v, v] for v in GREYS]


def test_ten_bit_colours_come_back_without_a_cast(tmp_path: Path) -> None:
    y, x = np.mgrid[0:48, 0:64]
    picture = np.stack([x * 4, y * 5, 255 - x * 2], axis=2).clip(0, 255).astype(np.uint8)
    [frame] = read_frames(probe(write(tmp_path / "ramp.mov", [picture], "yuv422p10le")))
    difference = frame.astype(int) - picture
    assert abs(float(difference.mean())) < 0.1 and float(np.abs(difference).mean()) < 0.2
