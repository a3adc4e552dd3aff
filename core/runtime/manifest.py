"""The manifest that sits beside every ``model.onnx`` and the check made before loading it."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from ..near_names import nearest

log = logging.getLogger("museforge.runtime")
MANIFEST_NAME = "manifest.json"
MODEL_NAME = "model.onnx"
MAX_BATCH = 1 << 16  # a declared largest batch past this is a typing slip, not a model


class TensorInfo(BaseModel):
    """One model input or output; symbolic axes are strings such as ``"batch"``.

    ``range`` bounds the values an input accepts, both ends included (class indices,
    conditioning levels); the server refuses a request outside it before the model runs.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    dtype: str  # numpy dtype name, e.g. "float32"
    shape: list[int | str]
    range: tuple[int | float, int | float] | None = None

    @model_validator(mode="after")
    def _range_in_order(self) -> TensorInfo:
        if self.range is not None and not self.range[0] <= self.range[1]:
            raise ValueError(f"range of {self.name}: {list(self.range)} runs from high to low")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_range(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("range") is None:
            data.pop("range", None)  # manifests written before ranges existed stay as they were
        return data


class TrainingData(BaseModel):
    """A data set the model learnt from, and the terms it comes under (see museforge.v1.TrainingData)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    licence: str
    attribution: str = ""
    commercial_use: bool | None = None
    registry: str = ""  # "pypi", "npm", "debian" or "committed"
    package: str = ""
    version: str = ""
    sha256: str = ""


class AxisRule(BaseModel):
    """An output axis that is ``scale`` times an input axis (``height_x4`` = 4 x ``height``)."""

    model_config = ConfigDict(extra="forbid")

    axis: str
    scale: int = Field(ge=1)


class Manifest(BaseModel):
    """What was exported, from what, how well it does, and the digest that proves the file."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    @model_serializer(mode="wrap")
    def _without_empty_training_data(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not data.get("training_data"):
            data.pop("training_data", None)  # older manifests are written as they were
        return data

    name: str
    version: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    opset: int
    ir_version: int
    sha256: str
    max_batch_size: int = Field(0, ge=0, le=MAX_BATCH)
    # False: the first axis is a batch, but its rows depend on each other (a sum over it), so
    # requests are never merged into one run; None: as the server's settings say.
    batching: bool | None = None
    # Largest request, all inputs' elements together (0: only the server's own budget).
    max_input_elements: int = Field(0, ge=0)
    # Symbolic output axes the inputs do not name, so the server can size a reply before running.
    output_axes: dict[str, AxisRule] = Field(default_factory=dict)
    recipe: str = ""
    seed: int | None = None
    quick: bool = False
    dataset: dict[str, Any] = Field(default_factory=dict)
    training_data: list[TrainingData] = Field(default_factory=list)
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    libraries: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        return cls.model_validate(json.loads((directory / MANIFEST_NAME).read_text("utf-8")))

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST_NAME
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n", "utf-8")
        return path


class IntegrityError(RuntimeError):
    """The model file does not match the digest its manifest records."""


class ManifestMismatch(ValueError):
    """The manifest says other inputs or outputs than the graph has."""


class VersionFailed(RuntimeError):
    """A version cannot serve: its file, its graph or its warm-up run failed."""

    def __init__(self, version: int, cause: Exception) -> None:
        self.version, self.cause = version, cause
        if isinstance(cause, ValidationError):  # one line per problem, not pydantic's page of links
            said = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'manifest'}: {e['msg']}"
                             for e in cause.errors()[:5])
            super().__init__(f"version {version}: manifest.json is not valid: {said}")
        elif isinstance(cause, (IntegrityError, ManifestMismatch)):
            super().__init__(f"version {version}: {cause}")
        else:
            super().__init__(_damage(version, cause)
                             or f"version {version} failed to load ({type(cause).__name__}: {cause})")


def _damage(version: int, cause: Exception) -> str:
    """A damaged version's file named, and what is wrong with it in words ('' for other causes):
    the exception's own text names neither the version's file nor what to look for."""
    if isinstance(cause, json.JSONDecodeError):
        if not cause.doc.strip():
            return f"version {version}: {MANIFEST_NAME} is empty"
        said = cause.msg.removesuffix(" at")  # "Unterminated string starting at", "Expecting value"
        return (f"version {version}: {MANIFEST_NAME} is not valid JSON ({said[:1].lower()}{said[1:]} at "
                f"line {cause.lineno}, column {cause.colno})")
    if isinstance(cause, UnicodeDecodeError):
        return f"version {version}: {MANIFEST_NAME} is not UTF-8 text (byte {cause.start})"
    if isinstance(cause, OSError) and cause.filename:
        file = Path(cause.filename).name
        if isinstance(cause, FileNotFoundError):
            return f"version {version} has no {file}"
        return f"version {version}: {file} cannot be read ({cause.strerror or cause})"
    # ONNX Runtime's own types (InvalidProtobuf; InvalidArgument "No graph was found in the
    # protobuf" for an empty file), told by name: the manifest is read without importing it.
    kind = type(cause).__name__
    if kind == "InvalidProtobuf" or (kind == "InvalidArgument" and "protobuf" in str(cause)):
        return (f"version {version}: {MODEL_NAME} is not an ONNX model ONNX Runtime can read (damaged, "
                "truncated or another kind of file)")
    return ""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def misspelt_keys(manifest: Manifest) -> list[tuple[str, str]]:
    """Keys a manifest holds beside the ones read that look like a misspelling of one
    (``max_batch_sise``): kept, as a recipe's own keys are, but its default silently wins."""
    found = []
    for key in manifest.model_extra or {}:
        close = nearest(key, Manifest.model_fields, cutoff=0.85)
        if close:
            found.append((key, close))
    return found


def verify(directory: Path) -> tuple[Manifest, bytes]:
    """Read the manifest and the model bytes, refusing a file whose sha256 differs.

    The bytes are returned so the session is built from exactly what was hashed
    (no window for the file to change between check and load).
    """
    manifest = Manifest.read(directory)
    for key, meant in misspelt_keys(manifest):
        log.warning("%s: key %r is not one museforge reads (did you mean %r?); it is ignored",
                    directory / "manifest.json", key, meant)
    data = (directory / MODEL_NAME).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != manifest.sha256:
        raise IntegrityError(
            f"{directory / MODEL_NAME}: sha256 {actual[:16]}… does not match the manifest's "
            f"{manifest.sha256[:16]}…; refusing to load a modified model"
        )
    return manifest, data

