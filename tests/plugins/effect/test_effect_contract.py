"""The effect contract end to end: a real server, a real (tiny) ONNX effect, every input format.

The effect here is a 3x3 box blur as one ONNX Conv, so every expected pixel can be
computed in numpy: decoding, colour handling, alpha, tiling, encoding and provenance
are checked exactly, independently of any trained network.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from onnx import TensorProto, helper
from PIL import Image
from pydantic import BaseModel, Field

import museforge
from museforge import (
    Effect,
    GenerationContext,
    Media,
    ModelSource,
    Picture,
    Progress,
    encode_exr,
    encode_jpeg,
    encode_png16,
    encode_webp,
)
from museforge.cli import main as cli_main
from museforge.client import Client, field_violations
from museforge.engine.codecs.encoders import encode_png, read_png_provenance
from museforge.engine.colour import linear_to_srgb, srgb_to_linear
from museforge.engine.generator import Media as MediaType
from museforge.engine.tiling import Tiling
from museforge.plugins.effect.common import apply_tiled, model_runner, network_input, to_media
from tests.servers import ServerThread, inline_engine

MODEL = "test.box3"


class BlurParams(BaseModel):
    tile: int = Field(256, ge=16, le=1024)


def apply(ctx: GenerationContext, params: BlurParams, inputs: Sequence[Picture],
          seed: int) -> Iterator[Progress | Media]:
    picture = inputs[0]
    image, peak = network_input(picture)
    tiling = Tiling(tile=params.tile, halo=1, blend=0, batch=2)
    result = yield from apply_tiled(model_runner(ctx, MODEL), image, tiling)
    yield to_media(result, picture, peak, 0)


def write_box_model(directory: Path) -> None:
    version = directory / "1"
    version.mkdir(parents=True)
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "h", "w"])
    y = helper.make_tensor_value_info("result", TensorProto.FLOAT, ["batch", 3, "h", "w"])
    weight = helper.make_tensor("w", TensorProto.FLOAT, [3, 1, 3, 3], [1 / 9] * 27)
    conv = helper.make_node("Conv", ["image", "w"], ["result"], group=3, pads=[1, 1, 1, 1])
    model = helper.make_model(helper.make_graph([conv], "box", [x], [y], [weight]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    (version / "model.onnx").write_bytes(data)
    (version / "manifest.json").write_text(json.dumps({
        "name": MODEL, "version": 1, "opset": 17, "ir_version": 8, "max_batch_size": 8,
        "sha256": hashlib.sha256(data).hexdigest(),
        "inputs": [{"name": "image", "dtype": "float32", "shape": ["batch", 3, "h", "w"]}],
        "outputs": [{"name": "result", "dtype": "float32", "shape": ["batch", 3, "h", "w"]}],
    }))


class BoxPlugin:
    def __init__(self, models: Path) -> None:
        self.models = models

    @museforge.hookimpl
    def register_effects(self, register: Any) -> None:
        register(Effect(name="test.blur", modality="image", parameters=BlurParams, apply=apply,
                        formats=("png", "png16", "jpeg", "webp", "exr"),
                        models=(ModelSource(MODEL, self.models),), description="3x3 box blur"))


class FormatsPlugin:
    @museforge.hookimpl
    def register_encoders(self, register: Any) -> None:
        from museforge import IMAGE_ENCODERS

        for encoder in IMAGE_ENCODERS:
            register(encoder)


def box_blur(image: np.ndarray) -> np.ndarray:
    """The reference: 3x3 mean with mirrored borders (what tiling with halo 1 must give)."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="reflect")
    h, w = image.shape[:2]
    total = np.zeros(image.shape, np.float64)
    for dy in range(3):
        for dx in range(3):
            total += padded[dy:dy + h, dx:dx + w]
    return total / 9.0


@pytest.fixture(scope="module")
def fx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    models = tmp_path_factory.mktemp("models") / "box"
    write_box_model(models)
    engine = inline_engine(("box", BoxPlugin(models)), ("formats", FormatsPlugin()),
                           max_input_pixels=2000 * 2000)
    with ServerThread(engine.settings, engine) as server:
        yield server


@pytest.fixture()
def fx(fx_server: ServerThread) -> Iterator[Client]:
    with Client(fx_server.address, timeout=60) as client:
        yield client


def photo(h: int = 150, w: int = 230, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients plus texture, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([np.sin(xx / 17 + c) * np.cos(yy / 23 - c) for c in range(channels)], axis=2)
    return np.clip(0.5 + 0.35 * base + 0.1 * rng.random((h, w, channels)), 0, 1).astype(np.float32)


def encode(data: np.ndarray, fmt: str, colorspace: str = "srgb") -> bytes:
    encoders = {"png": encode_png, "png16": encode_png16, "jpeg": encode_jpeg, "webp": encode_webp,
                "exr": encode_exr}
    return encoders[fmt](MediaType("image", data, 0, colorspace=colorspace), {})


def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def test_effects_are_listed_with_schema_formats_and_models(fx: Client) -> None:
    [info] = fx.effects()
    assert info.name == "test.blur" and info.available and info.plugin == "box"
    assert json.loads(info.parameters_schema)["properties"]["tile"]["maximum"] == 1024
    assert list(info.input_formats) == ["png", "png16", "jpeg", "webp", "exr"]
    assert (info.min_inputs, info.max_inputs) == (1, 1)
    assert info.models[0].name == MODEL and info.models[0].provider == "CPUExecutionProvider"
    assert next(p for p in fx.plugins() if p.name == "box").effects == ["test.blur"]


@pytest.mark.parametrize(("name", "suggested"), [
    ("a/b\\c.png", "test.blur-c-0000.png"),  # a Windows client writes where a backslash says
    ("x\n\r.png", "test.blur-x-0000.png"),
    ("A" * 5000 + ".png", f"test.blur-{'A' * 80}-0000.png"),
    ("take 1.0001.png", "test.blur-take_1.0001-0000.png"),
])
def test_a_suggested_file_name_is_safe_whatever_the_input_was_called(fx: Client, name: str,
                                                                     suggested: str) -> None:
    [artifact] = fx.apply_effect("test.blur", [(name, encode(photo(), "png"))]).artifacts
    assert artifact.filename == suggested


def test_png_in_png_out_matches_the_whole_frame_reference(fx: Client) -> None:
    image = photo()
    reply = fx.apply_effect("test.blur", [("shot.0001.png", encode(image, "png"))], {"tile": 64})
    [artifact] = reply.artifacts
    assert artifact.format == "png" and artifact.filename.startswith("test.blur-shot.0001")
    got = decode_png(artifact.data).astype(np.float32) / 255
    expected = box_blur(np.round(image * 255) / 255)
    # Tiles of 64 with a 1-px halo give the whole-frame result: only 8-bit rounding differs.
    assert np.abs(got - expected).max() <= 0.5 / 255 + 1e-6
    provenance = read_png_provenance(artifact.data)
    assert provenance["effect"] == "test.blur"
    [described] = json.loads(provenance["inputs"])
    assert described["name"] == "shot.0001.png" and (described["width"], described["height"]) == (230, 150)
    assert described["sha256"] == hashlib.sha256(encode(image, "png")).hexdigest()


def test_alpha_is_carried_through_untouched(fx: Client) -> None:
    image = photo(channels=4)
    data = encode(image, "png")
    [artifact] = fx.apply_effect("test.blur", [data]).artifacts
    got = decode_png(artifact.data)
    assert got.shape == (150, 230, 4)
    np.testing.assert_array_equal(got[:, :, 3], decode_png(data)[:, :, 3])


def test_grey_stays_grey(fx: Client) -> None:
    image = photo(channels=1)[:, :, 0]
    [artifact] = fx.apply_effect("test.blur", [encode(image, "png")]).artifacts
    got = decode_png(artifact.data)
    assert got.ndim == 2
    expected = box_blur(np.round(image * 255)[:, :, None] / 255)[:, :, 0]
    assert np.abs(got / 255 - expected).max() <= 0.5 / 255 + 1e-6


def test_sixteen_bit_png_keeps_its_precision(fx: Client) -> None:
    image = photo(seed=3)
    [artifact] = fx.apply_effect("test.blur", [encode(image, "png16")]).artifacts
    assert artifact.format == "png16"
    from museforge.engine.codecs.png_reader import decode_png16

    got = decode_png16(artifact.data).astype(np.float64) / 65535
    expected = box_blur(np.round(image.astype(np.float64) * 65535) / 65535)
    # Far below one 8-bit step: 16 bits survived the round trip.
    assert np.abs(got - expected).max() < 2 / 65535


def test_exr_stays_scene_linear_with_highlights_above_one(fx: Client) -> None:
    linear = srgb_to_linear(photo(seed=4)) * 6.0  # HDR: values up to ~6
    [artifact] = fx.apply_effect("test.blur", [encode(linear, "exr", "linear")]).artifacts
    assert artifact.format == "exr"
    from museforge.engine.codecs.decoders import decode_image

    out = decode_image(artifact.data)
    assert out.linear and out.colour.max() > 3.0
    # The blur runs on the sRGB-encoded, peak-normalised frame (what the networks learned on).
    peak = float(np.percentile(linear, 99.9))
    encoded = linear_to_srgb(np.clip(linear / peak, 0, None))
    expected = srgb_to_linear(np.clip(box_blur(np.clip(encoded, 0, 1)), 0, 1)) * peak
    expected += linear - np.clip(linear, 0, peak)  # what lies beyond the peak comes back as it was
    np.testing.assert_allclose(out.colour, expected, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_lossy_inputs_answer_in_their_own_format_unless_asked(fx: Client, fmt: str) -> None:
    data = encode(photo(seed=5), fmt)
    [same] = fx.apply_effect("test.blur", [data]).artifacts
    assert same.format == fmt
    [png] = fx.apply_effect("test.blur", [data], fmt="png").artifacts
    assert png.format == "png" and decode_png(png.data).shape == (150, 230, 3)


def test_stream_reports_tile_progress_then_the_result(fx: Client) -> None:
    events = list(fx.stream_apply_effect("test.blur", [encode(photo(), "png")], {"tile": 32}))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "seed" and kinds[-1] == "artifact"
    progress = [e.progress for e in events if e.WhichOneof("event") == "progress"]
    # 150 x 230 in 32-px tiles: 5 rows x 8 columns, two tiles per run.
    assert progress[-1].completed == progress[-1].total == 40
    assert [p.completed for p in progress] == sorted(p.completed for p in progress)


def bad(fx: Client, inputs: list[bytes], **kwargs: Any) -> tuple[grpc.StatusCode, dict[str, str]]:
    with pytest.raises(grpc.RpcError) as caught:
        fx.apply_effect(kwargs.pop("effect", "test.blur"), inputs, **kwargs)
    return caught.value.code(), dict(field_violations(caught.value))


def test_bad_inputs_are_named_and_the_server_keeps_serving(fx: Client) -> None:
    png = encode(photo(), "png")
    code, fields = bad(fx, [b"definitely not an image"])
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not PNG, JPEG, WebP or OpenEXR" in fields["inputs[0]"]
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    assert "inputs[0]" in bad(fx, [gif.getvalue()])[1]
    assert "inputs[0]" in bad(fx, [png[:-200]])[1]  # truncated
    assert "takes 1 input" in bad(fx, [])[1]["inputs"]
    assert "takes 1 input" in bad(fx, [png, png])[1]["inputs"]
    assert "parameters.tile" in bad(fx, [png], parameters={"tile": 5})[1]
    assert "parameters.strength" in bad(fx, [png], parameters={"strength": 1})[1]
    assert "format" in bad(fx, [png], fmt="bmp")[1]
    assert bad(fx, [png], effect="test.nope")[0] == grpc.StatusCode.NOT_FOUND
    # A header claiming 3000 x 3000 (over this server's 2000 x 2000 limit) is refused unread.
    huge = io.BytesIO()
    Image.new("L", (3000, 3000)).save(huge, format="PNG")
    assert "limit" in bad(fx, [huge.getvalue()])[1]["inputs[0]"]
    zero = bytearray(png)
    zero[16:20] = (0).to_bytes(4, "big")  # IHDR width 0
    assert "zero size" in bad(fx, [bytes(zero)])[1]["inputs[0]"]
    assert len(fx.apply_effect("test.blur", [png]).artifacts) == 1  # still serving


def test_cli_apply_writes_the_named_file(fx_server: ServerThread, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(encode(photo(), "png"))
    out = tmp_path / "out" / "blurred.webp"
    code = cli_main(["apply", "test.blur", "--server", fx_server.address, "--param", "tile=64",
                     str(source), "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    with Image.open(out) as image:
        assert image.format == "WEBP" and image.size == (230, 150)
    code = cli_main(["apply", "test.blur", "--server", fx_server.address, str(tmp_path / "missing.png")])
    assert code == 2 and "cannot read" in capsys.readouterr().err
