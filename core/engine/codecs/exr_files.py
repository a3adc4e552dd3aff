"""OpenEXR files on disk (the Python bindings read and write paths only, never bytes), and the
header an effect's EXR result keeps from its EXR input.

A result keeps the input's standard attributes that still hold for it (OpenEXR's
ImfStandardAttributes, as the bindings name them), each only when it has its standard type;
never what describes the data layout (channels, lineOrder, tiles, chunks, multiView, deep
state, ID manifests) nor any custom attribute. The data and display windows are kept when the
size is unchanged (an overscan plate stays placed), dropped when it changed; ``xDensity`` and
``pixelAspectRatio`` follow a resize so the picture keeps its printed size and its shape. The
colour attributes hold only while the result is still the input's scene-linear light. The
compression is the input's when the installed OpenEXR writes it, else ZIP; the pixel type is
the input's, but a half result with a value beyond half's range is written float whole.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from fractions import Fraction
from typing import Any

import numpy as np

from ..generator import SourceHeader

HALF_MAX = 65504.0  # the largest finite 16-bit float


@contextmanager
def exr_on_disk(data: bytes) -> Iterator[str]:
    """``data`` as a private temporary .exr file, removed afterwards."""
    handle, path = tempfile.mkstemp(suffix=".exr")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        yield path
    finally:
        os.unlink(path)


def _text(value: object) -> bool:
    return isinstance(value, str)


def _number(value: object) -> bool:
    return isinstance(value, float)


def _vector(shape: tuple[int, ...]) -> Callable[[object], bool]:
    return lambda value: isinstance(value, np.ndarray) and value.shape == shape and value.dtype == np.float32


def _chromaticities(value: object) -> bool:
    return isinstance(value, tuple) and len(value) == 8 and all(isinstance(v, float) for v in value)


def _box(value: object) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(
        isinstance(v, np.ndarray) and v.shape == (2,) and v.dtype == np.int32 for v in value)


def _bindings_type(name: str) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        import OpenEXR

        kind = getattr(OpenEXR, name, None)
        return kind is not None and isinstance(value, kind)
    return check


TEXT = ("owner", "comments", "capDate", "wrapmodes", "view", "reelName", "ascFramingDecisionList",
        "cameraMake", "cameraModel", "cameraSerialNumber", "cameraFirmwareVersion", "cameraUuid",
        "cameraLabel", "lensMake", "lensModel", "lensSerialNumber", "lensFirmwareVersion")
NUMBERS = ("utcOffset", "longitude", "latitude", "altitude", "focus", "expTime", "aperture",
           "isoSpeed", "screenWindowWidth", "nominalFocalLength", "pinholeFocalLength",
           "effectiveFocalLength", "entrancePupilOffset", "tStop", "sensorPhotositePitch",
           "shutterAngle", "cameraCCTSetting", "cameraTintSetting")
# Scene-referred colour: true of the result only while it is the input's linear light.
COLOUR: dict[str, Callable[[object], bool]] = {
    "chromaticities": _chromaticities, "whiteLuminance": _number, "adoptedNeutral": _vector((2,)),
    "renderingTransform": _text, "lookModTransform": _text,
}
KEPT: dict[str, Callable[[object], bool]] = {
    **dict.fromkeys(TEXT, _text), **dict.fromkeys(NUMBERS, _number),
    "timeCode": _bindings_type("TimeCode"), "keyCode": _bindings_type("KeyCode"),
    "envmap": _bindings_type("Envmap"), "framesPerSecond": lambda v: isinstance(v, Fraction),
    "captureRate": lambda v: isinstance(v, Fraction), "imageCounter": lambda v: isinstance(v, int),
    "worldToCamera": _vector((4, 4)), "worldToNDC": _vector((4, 4)),
    "screenWindowCenter": _vector((2,)), "sensorCenterOffset": _vector((2,)),
    "sensorOverallDimensions": _vector((2,)), "cameraColorBalance": _vector((2,)),
    "sensorAcquisitionRectangle": _box, "pixelAspectRatio": _number, "xDensity": _number,
    "dataWindow": _box, "displayWindow": _box, "dwaCompressionLevel": _number, **COLOUR,
}


def source_header(header: Mapping[str, Any], width: int, height: int, half: bool) -> SourceHeader:
    """What a read EXR part's header gives its results: the standard attributes of their
    standard type, and its compression."""
    kept = {name: value for name, value in header.items() if name in KEPT and KEPT[name](value)}
    if "compression" in header:
        kept["compression"] = header["compression"]
    return SourceHeader("exr", kept, width, height, half)


def _compression(value: object) -> Any:
    """The input's compression when these bindings write it (any method they name), else ZIP."""
    import OpenEXR

    known = getattr(OpenEXR, "Compression", None)
    methods = [getattr(known, name) for name in getattr(known, "__members__", {})
               if name.endswith("_COMPRESSION")]
    return value if any(value == method for method in methods) else OpenEXR.ZIP_COMPRESSION


def result_header(source: SourceHeader | None, width: int, height: int, linear: bool) -> dict[str, Any]:
    """The attributes (compression included) a result of width x height gets from its source."""
    import OpenEXR

    if source is None or source.format != "exr":
        return {"compression": OpenEXR.ZIP_COMPRESSION}
    attributes = {name: value for name, value in source.attributes.items()
                  if name in KEPT and (linear or name not in COLOUR)}
    compression = _compression(source.attributes.get("compression"))
    if compression not in (OpenEXR.DWAA_COMPRESSION, OpenEXR.DWAB_COMPRESSION):
        attributes.pop("dwaCompressionLevel", None)
    if (width, height) != (source.width, source.height):
        attributes.pop("dataWindow", None)
        attributes.pop("displayWindow", None)
        if "xDensity" in attributes:  # the same printed width
            attributes["xDensity"] = float(attributes["xDensity"] * width / source.width)
        if "pixelAspectRatio" in attributes and width * source.height != height * source.width:
            # The same picture shape: a resize that was not uniform changed each pixel's.
            attributes["pixelAspectRatio"] = float(
                attributes["pixelAspectRatio"] * source.width * height / (source.height * width))
    return {**attributes, "compression": compression}


def fits_half(data: np.ndarray) -> bool:
    """Whether every finite value survives as a 16-bit float (beyond ±65504 it becomes infinity)."""
    finite = np.isfinite(data)  # NaN and infinities are half's too
    highest = float(np.max(data, initial=0.0, where=finite))
    lowest = float(np.min(data, initial=0.0, where=finite))
    return max(highest, -lowest) <= HALF_MAX
