"""An effect's EXR result over an EXR input keeps that input's header through a real server: its
standard attributes, compression and half floats (float when half cannot hold a value), over
ApplyEffect and over a job's frames."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR
import pytest

from museforge.client import Client
from tests.core.jobs_helpers import chain_spec

AP0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)
STILL = {"strength": 0}  # stylize at strength 0 gives its input back


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exr-header")


def timecode(hours: int, frame: int) -> Any:
    code = OpenEXR.TimeCode()
    code.hours, code.frame = hours, frame
    return code


def plate_header(compression: Any) -> dict[str, Any]:
    """What a camera plate's header says of itself, as a VFX pipeline writes it."""
    return {
        "compression": compression, "type": OpenEXR.scanlineimage,
        "timeCode": timecode(1, 1), "framesPerSecond": Fraction(24000, 1001),
        "owner": "Studio Ltd", "comments": "plate A001C003", "capDate": "2024:05:06 07:08:09",
        "utcOffset": -3600.0, "chromaticities": AP0, "whiteLuminance": 100.0,
        "adoptedNeutral": np.array([0.32168, 0.33767], np.float32), "pixelAspectRatio": 2.0,
        "keyCode": OpenEXR.KeyCode(1, 2, 3, 4, 5, 4, 64), "studio/shot": "sh010",
    }


def exr(header: Mapping[str, Any], planes: Mapping[str, np.ndarray]) -> bytes:
    handle, path = tempfile.mkstemp(suffix=".exr")
    os.close(handle)
    try:
        OpenEXR.File(dict(header), {n: np.ascontiguousarray(p) for n, p in planes.items()}).write(path)
        return Path(path).read_bytes()
    finally:
        os.unlink(path)


def read(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    handle, path = tempfile.mkstemp(suffix=".exr")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        with OpenEXR.File(path, separate_channels=True) as image:
            return dict(image.header()), {n: np.asarray(c.pixels) for n, c in image.channels().items()}
    finally:
        os.unlink(path)


def plate(kind: type, size: tuple[int, int] = (48, 32)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    width, height = size
    return {c: (rng.random((height, width)) * 2.0).astype(kind) for c in "RGB"}


def apply(client: Client, effect: str, data: bytes, parameters: Mapping[str, Any]) -> bytes:
    reply = client.apply_effect(effect, [("plate.1001.exr", data)], dict(parameters), fmt="exr")
    [artifact] = reply.artifacts
    assert artifact.format == "exr"
    return artifact.data


def assert_plate_attributes(header: Mapping[str, Any]) -> None:
    assert (header["timeCode"].hours, header["timeCode"].frame) == (1, 1)
    assert header["framesPerSecond"] == Fraction(24000, 1001)
    assert (header["owner"], header["comments"]) == ("Studio Ltd", "plate A001C003")
    assert (header["capDate"], header["utcOffset"]) == ("2024:05:06 07:08:09", -3600.0)
    np.testing.assert_allclose(header["chromaticities"], AP0, rtol=1e-6)  # ACES, not Rec.709
    np.testing.assert_allclose(header["adoptedNeutral"], [0.32168, 0.33767], rtol=1e-6)
    assert header["whiteLuminance"] == 100.0 and header["pixelAspectRatio"] == 2.0
    key = header["keyCode"]
    assert (key.filmMfcCode, key.filmType, key.prefix, key.count, key.perfsPerCount) == (1, 2, 3, 4, 64)
    assert "studio/shot" not in header  # only OpenEXR's standard attributes are carried
    assert "museforge" in header  # beside museforge's own provenance


def test_a_half_dwaa_plate_keeps_its_attributes_compression_and_half(client: Client) -> None:
    header = {**plate_header(OpenEXR.DWAA_COMPRESSION), "dwaCompressionLevel": 80.0,
              "dataWindow": ((100, 40), (147, 71)), "displayWindow": ((0, 0), (199, 99))}
    written, planes = read(apply(client, "effect.stylize", exr(header, plate(np.float16)), STILL))
    assert_plate_attributes(written)
    assert written["compression"] == OpenEXR.DWAA_COMPRESSION and written["dwaCompressionLevel"] == 80.0
    assert all(p.dtype == np.float16 for p in planes.values()), {n: p.dtype for n, p in planes.items()}
    # The same size: the plate stays where it was in its overscan frame.
    assert [list(corner) for corner in written["dataWindow"]] == [[100, 40], [147, 71]]
    assert [list(corner) for corner in written["displayWindow"]] == [[0, 0], [199, 99]]


def test_a_float_piz_plate_stays_float_and_piz(client: Client) -> None:
    data = exr(plate_header(OpenEXR.PIZ_COMPRESSION), plate(np.float32))
    written, planes = read(apply(client, "effect.stylize", data, STILL))
    assert_plate_attributes(written)
    assert written["compression"] == OpenEXR.PIZ_COMPRESSION
    assert all(p.dtype == np.float32 for p in planes.values())


def test_an_upscaled_anamorphic_half_plate_keeps_its_aspect_and_timecode(client: Client) -> None:
    data = exr(plate_header(OpenEXR.PIZ_COMPRESSION), plate(np.float16, (64, 48)))
    result = apply(client, "effect.upscale", data, {"scale": 2})
    written, planes = read(result)
    assert_plate_attributes(written)  # pixelAspectRatio 2.0 and 01:00:00:01 among them
    assert written["compression"] == OpenEXR.PIZ_COMPRESSION
    assert planes["R"].shape == (96, 128) and all(p.dtype == np.float16 for p in planes.values())
    assert [list(corner) for corner in written["dataWindow"]] == [[0, 0], [127, 95]]
    # Half PIZ at four times the pixels: not the 2x bytes per pixel of 32-bit float.
    assert len(result) < 4 * len(data) * 1.5


def test_a_half_plate_whose_result_exceeds_half_is_written_float(client: Client) -> None:
    # Premultiplied 65504 under alpha 0.01 is a straight 6.5 million; beside an opaque 65504,
    # the upscale's in-between pixels hold far more than half's largest value once premultiplied.
    colour = np.full((32, 32), 65504.0, np.float16)
    alpha = np.ones((32, 32), np.float16)
    alpha[:, ::2] = 0.01
    data = exr(plate_header(OpenEXR.ZIP_COMPRESSION), {"R": colour, "G": colour, "B": colour, "A": alpha})
    written, planes = read(apply(client, "effect.upscale", data, {"scale": 2}))
    assert all(p.dtype == np.float32 for p in planes.values())
    assert np.isfinite(planes["R"]).all() and float(planes["R"].max()) > 65504.0
    assert_plate_attributes(written)


def test_a_job_frame_keeps_its_header(jobs: Client, root: Path) -> None:
    (root / "in").mkdir(exist_ok=True)
    data = exr(plate_header(OpenEXR.DWAA_COMPRESSION), plate(np.float16))
    (root / "in" / "plate.1001.exr").write_bytes(data)
    spec = chain_spec(1001, 1001, output="plate.####.exr")
    del spec.steps[0]  # the upscale alone
    spec.input.pattern = "plate.####.exr"
    operation = jobs.wait_job(jobs.submit_job(spec).name, 120)
    assert operation.done and not operation.HasField("error"), operation
    written, planes = read((root / "out" / "plate.1001.exr").read_bytes())
    assert_plate_attributes(written)
    assert written["compression"] == OpenEXR.DWAA_COMPRESSION
    assert planes["R"].shape == (64, 96) and all(p.dtype == np.float16 for p in planes.values())


def test_a_job_s_steps_pass_the_frame_on_losslessly_and_the_last_writes_it_as_it_came(
        jobs: Client, root: Path) -> None:
    """Between steps a half DWAA frame travels as float ZIP (each step's result was rounded to half
    and DWAA-compressed again): three still steps give what one gives, written half DWAA once."""
    (root / "in").mkdir(exist_ok=True)
    data = exr(plate_header(OpenEXR.DWAA_COMPRESSION), plate(np.float16))
    (root / "in" / "lossy.1001.exr").write_bytes(data)
    results = []
    for steps in (1, 3):
        spec = chain_spec(1001, 1001, output=f"lossy{steps}.####.exr")
        del spec.steps[:]
        for _ in range(steps):
            spec.steps.add(effect="effect.stylize").parameters.update(STILL)
        spec.input.pattern = "lossy.####.exr"
        operation = jobs.wait_job(jobs.submit_job(spec).name, 120)
        assert operation.done and not operation.HasField("error"), operation
        written, planes = read((root / "out" / f"lossy{steps}.1001.exr").read_bytes())
        assert_plate_attributes(written)
        assert written["compression"] == OpenEXR.DWAA_COMPRESSION
        assert all(p.dtype == np.float16 for p in planes.values())
        results.append(np.stack([planes[c].astype(np.float32) for c in "RGB"]))
    one, three = results
    assert float(np.abs(one - three).max()) < 1e-3, float(np.abs(one - three).max())
