"""Hostile images sent to `museforge serve`: refused, or decoded, at a cost bounded by their size.

Each probe is a scaled-down copy of an attack that worked: a wide 16-bit PNG whose
unfiltering took one numpy step per anti-diagonal, a 16-bit PNG bomb inflated whole before
its size was checked, an OpenEXR file whose second part was never counted, OpenEXR errors
naming the server's temporary file, a truncated JPEG decoded grey-filled, and a tiny JPEG
declaring 8K. Costs are read from the server process's own counters, never a clock.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from museforge.client import Client, field_violations
from museforge.engine.codecs.decoders import DecodeError, decode_image
from tests.adversarial.process_counters import Meter
from tests.core import hostile_images as hostile
from tests.servers import ServeProcess

MIB = 1 << 20
EFFECT = "effect.denoise"
BAD_SIGMA = {"sigma": 1000.0}  # refused only after the input is decoded: the call costs its decoding


def apply(target: ServeProcess, data: bytes, parameters: dict[str, float] | None = None,
          timeout: float = 60.0) -> grpc.RpcError | None:
    with Client(target.address, timeout=timeout) as client:
        try:
            client.apply_effect(EFFECT, [("plate", data)], parameters)
        except grpc.RpcError as exc:
            return exc
    return None


def refused_input(error: grpc.RpcError | None) -> str:
    """The description of ``inputs[0]`` in an INVALID_ARGUMENT error (fails otherwise)."""
    assert error is not None, "the hostile input was accepted"
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
    violations = dict(field_violations(error))
    assert "inputs[0]" in violations, violations
    return violations["inputs[0]"]


@pytest.mark.parametrize(
    ("height", "width", "filters"),
    [(1, 60_000, [1]), (60_000, 1, [4]), (2, 30_000, [0, 4])],
    ids=["one-row-sub", "one-column-paeth", "two-rows-paeth"],
)
def test_sixteen_bit_png_unfiltering_costs_cpu_linear_in_pixels(
    target: ServeProcess, pid: int, height: int, width: int, filters: list[int]
) -> None:
    data = hostile.png(hostile.pixels(1, height, width, 3, np.uint16), filters, level=9)
    with Meter(pid) as cost:
        error = apply(target, data, BAD_SIGMA)
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(error)] == ["parameters.sigma"]  # the PNG itself is fine
    assert cost.cpu_seconds < 1.0, f"decoding a {len(data):,}-byte PNG took {cost.cpu_seconds:.1f} s of CPU"


def test_sixteen_bit_png_bomb_is_refused_before_it_is_inflated(target: ServeProcess, pid: int) -> None:
    data = hostile.png_file(1, 1, 16, 2, hostile.zeros_deflate(16))  # claims 1x1, inflates to 256 MiB
    with Meter(pid) as cost:
        error = apply(target, data)
    assert cost.peak_rss_growth < 64 * MIB, f"peak RSS grew {cost.peak_rss_growth / MIB:.0f} MiB"
    assert "larger than its header" in refused_input(error)


def test_every_exr_part_counts_against_the_pixel_limit(target: ServeProcess) -> None:
    side = 5800  # 33.6 M pixels: just over the default limit (7680 x 4320 = 33.2 M)
    rgb = {c: np.zeros((8, 8), np.float16) for c in "RGB"}
    extra = {"Y": np.zeros((side, side), np.float16)}
    data = hostile.exr([("main", rgb, (8, 8)), ("extra", extra, (side, side))])
    assert "exr part 1 is 5800x5800" in refused_input(apply(target, data))


def test_every_exr_channel_counts_against_the_pixel_limit() -> None:
    aovs = {f"aov{i:03d}": np.zeros((8, 8), np.float16) for i in range(300)}
    data = hostile.exr([("main", {c: np.zeros((8, 8), np.float16) for c in "RGB"} | aovs, (8, 8))])
    with pytest.raises(DecodeError, match="samples"):  # 303 channels x 64 pixels
        decode_image(data, max_pixels=256)


def test_exr_errors_never_show_the_servers_temporary_path(target: ServeProcess) -> None:
    planes = {c: np.zeros((4, 4), np.float16) for c in "RGB"}
    data = hostile.exr([("main", planes, (4, 4))]).replace(b"B\0\x01\0\0\0", b"B\0\x09\0\0\0", 1)
    error = apply(target, data)  # an unknown pixel type: OpenEXR's message names the file
    description = refused_input(error)
    assert error is not None
    for text in (description, error.details() or ""):
        assert "/tmp" not in text and ".exr" not in text, text


def test_truncated_jpeg_is_refused_not_grey_filled(target: ServeProcess) -> None:
    data = hostile.jpeg(np.random.default_rng(7).integers(0, 256, (512, 512, 3), np.uint8), quality=90)
    description = refused_input(apply(target, data[: int(len(data) * 0.4)] + b"\xff\xd9"))
    assert "truncated or corrupt" in description


def test_tiny_jpeg_declaring_8k_costs_nothing(target: ServeProcess, pid: int) -> None:
    data = bytearray(hostile.jpeg(np.random.default_rng(7).integers(0, 256, (16, 16, 3), np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (4320).to_bytes(2, "big") + (7680).to_bytes(2, "big")
    with Meter(pid) as cost:
        description = refused_input(apply(target, bytes(data), timeout=20))
    assert "cannot hold a 7680x4320 picture" in description
    assert cost.cpu_seconds < 1.0 and cost.peak_rss_growth < 64 * MIB, cost


@pytest.mark.parametrize("kind", ["WEBP", "PNG"])
def test_an_animated_image_is_refused_not_cut_to_its_first_frame(target: ServeProcess, kind: str) -> None:
    """An effect takes one picture: the frames after the first were once dropped without a word
    (three frames in, one written, exit 0). A single-frame file of the same kind still decodes."""
    import io

    from PIL import Image

    rng = np.random.default_rng(3)
    frames = [Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)) for _ in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=kind, save_all=True, append_images=frames[1:])
    reason = refused_input(apply(target, buffer.getvalue()))
    assert "animated" in reason and "3 frames" in reason and "separate images" in reason, reason
    still = io.BytesIO()
    frames[0].save(still, format=kind)
    assert apply(target, still.getvalue()) is None
