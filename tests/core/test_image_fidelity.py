"""What a picture means survives the trip: its orientation, its transparency, and an output its
format cannot hold refused by name; Pillow's internals stay out of the messages."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from PIL import Image

from museforge.client import Client, field_violations
from museforge.config import Settings
from museforge.engine.codecs.decoders import DecodeError, decode_image
from tests.servers import ServerThread


def encoded(pixels: np.ndarray, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def test_an_exif_orientation_is_applied_as_the_photo_is_shown() -> None:
    stored = np.zeros((48, 40, 3), np.uint8)
    stored[:8, :, 0] = 255  # a red band along the stored top
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to show
    picture = decode_image(encoded(stored, "JPEG", exif=exif.tobytes(), quality=95))
    assert picture.colour.shape[:2] == (40, 48)  # shown 48 wide, 40 high
    red = picture.colour[..., 0] - picture.colour[..., 1]
    assert red[:, -8:].mean() > 0.8 and red[:, :8].mean() < 0.1  # the stored top is now the right side


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_png_transparent_colour_becomes_alpha(mode: str) -> None:
    pixels = np.full((3, 3, 3) if mode == "RGB" else (3, 3), 9, np.uint8)
    pixels[1, 1] = 200
    key = (9, 9, 9) if mode == "RGB" else 9
    picture = decode_image(encoded(pixels, transparency=key))
    assert picture.alpha is not None
    assert picture.alpha[1, 1] == 1.0 and picture.alpha[0, 0] == 0.0 and picture.alpha.sum() == 1.0
    assert picture.colour.shape[-1] == (3 if mode == "RGB" else 1)


def test_pillows_own_words_stay_out_of_the_messages() -> None:
    with pytest.raises(DecodeError) as unreadable:
        decode_image(b"RIFF\x10\x00\x00\x00WEBPVP8 ")
    assert "BytesIO" not in str(unreadable.value) and "object at 0x" not in str(unreadable.value)
    header = encoded(np.zeros((1, 1, 3), np.uint8), "WEBP", lossless=True)
    # The same file declaring 16384 x 16384 (lossless WebP keeps the size in its VP8L header).
    vp8l = header.index(b"VP8L") + 8
    bits = int.from_bytes(header[vp8l + 1:vp8l + 5], "little")
    bits = (bits & ~((1 << 28) - 1)) | (16383 << 14) | 16383
    bomb = header[:vp8l + 1] + bits.to_bytes(4, "little") + header[vp8l + 5:]
    with pytest.raises(DecodeError, match="limit of 1,000,000") as big:
        decode_image(bomb, max_pixels=1_000_000)
    assert "DOS" not in str(big.value)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with ServerThread(Settings(address="127.0.0.1:0", plugins=["effect"])) as server, \
            Client(server.address) as connected:
        yield connected


@pytest.mark.parametrize(("fmt", "source", "width"), [("webp", "PNG", 4100), ("", "JPEG", 16400),
                                                     ("", "JPEG", 16380)])
def test_an_output_too_big_for_its_format_is_refused_naming_format(client: Client, fmt: str,
                                                                   source: str, width: int) -> None:
    # x4: 16,400 px for WebP (at most 16,383); 65,600 and 65,520 for JPEG, the input's own format
    # (libjpeg takes at most 65,500, not 65,535).
    wide = encoded(np.zeros((2, width, 3), np.uint8), source)
    with pytest.raises(grpc.RpcError) as refused:
        client.apply_effect("effect.upscale", [wide], {"scale": 4}, seed=1, fmt=fmt)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, problem)] = field_violations(refused.value)
    assert field == "format" and "pixels a side" in problem and "png" in problem


@pytest.mark.parametrize(("effect", "parameters", "width"), [("effect.upscale", {"scale": 4}, 4100),
                                                           ("effect.denoise", {}, 16400)])
def test_an_output_too_big_for_its_format_is_refused_before_the_effect_runs(
        client: Client, effect: str, parameters: dict[str, int], width: int) -> None:
    """Refused when the call is checked, not after the work: a stream says no progress first
    (an upscale of a strip 4,100 px wide to WebP ran through every tile, then failed)."""
    wide = encoded(np.zeros((2, width, 3), np.uint8), "PNG")
    events = []
    with pytest.raises(grpc.RpcError) as refused:
        for event in client.stream_apply_effect(effect, [wide], parameters, seed=1, fmt="webp"):
            events.append(event.WhichOneof("event"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, problem)] = field_violations(refused.value)
    assert field == "format" and "WebP holds at most 16,383" in problem, problem
    assert events == []


def test_every_effect_schema_says_unknown_parameters_are_refused(client: Client) -> None:
    for effect in client.effects():
        assert json.loads(effect.parameters_schema)["additionalProperties"] is False, effect.name
    for generator in client.generators():
        assert json.loads(generator.parameters_schema)["additionalProperties"] is False, generator.name


def test_sketch_lists_only_the_formats_it_takes(client: Client) -> None:
    [sketch] = [e for e in client.effects() if e.name == "effect.sketch"]
    assert "exr" not in sketch.input_formats and "png" in sketch.input_formats
