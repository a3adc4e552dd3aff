"""Bring your own ONNX: a model file becomes a served model without a plugin.

``add_model`` reads the graph's inputs and outputs through ONNX Runtime (the serving
dependency; the ``onnx`` package is only for exporting), checks that museforge can serve
it (numeric tensors, a warm-up run), and writes ``<repository>/<name>/<version>/`` with
``model.onnx`` and a manifest: sha256, tensors, whether the first axis is a dynamic batch,
and where the file came from. Nothing is written unless every check passes, and the
version directory appears whole (renamed into place) or not at all.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .. import __version__
from ..file_modes import FOLDER_MODE
from .manifest import MODEL_NAME, Manifest, TensorInfo
from .model_checks import ORT_TO_NUMPY, specs
from .model_source import NAME_RULE
from .protobuf_wire import fields
from .row_independence import rows_independent
from .sessions import Runtime
from .versions import MAX_VERSION, available_versions, next_version

NAME = NAME_RULE  # one rule for names added and names declared
MAX_FILE_BYTES = 2 << 30  # protobuf's own ceiling for one message


class ImportRefused(ValueError):
    """The file cannot be served as it is; the message says why. Nothing was written."""


@dataclass(frozen=True)
class GraphHeader:
    """What the file's top-level ModelProto fields say, read without the onnx package."""

    ir_version: int = 0
    opset: int = 0  # of the default ("" or "ai.onnx") domain
    producer: str = ""


@dataclass(frozen=True)
class Imported:
    name: str
    version: int
    directory: Path  # the version directory written
    manifest: Manifest
    dynamic_batch: bool  # every input's and output's first axis is dynamic: requests are batched
    rows_independent: bool | None = None  # tried at add (None: could not tell); False: never merged


def check_name(name: str) -> str:
    if not NAME.fullmatch(name) or ".." in name:
        raise ImportRefused(f"model name {name!r}: use letters, digits, '.', '_' and '-' (at most 128, "
                            "starting with a letter or digit), e.g. studio.upscaler")
    return name


def add_model(source: Path, name: str, repository: Path, version: int | None = None) -> Imported:
    """Write ``source`` as a new version of ``name`` under ``repository``; ImportRefused says why not."""
    check_name(name)
    data = _read(source)
    header = read_header(data)
    session = _session(data, header, source)
    inputs, outputs = _tensors(session)
    batch = all(t.shape and isinstance(t.shape[0], str) for t in (*inputs, *outputs))
    _warm_up(session, source)
    independent = rows_independent(session, specs(session.get_inputs())) if batch else None
    home = repository / name
    chosen = _version(home, version)
    manifest = Manifest(
        name=name, version=chosen, inputs=inputs, outputs=outputs, opset=header.opset,
        ir_version=header.ir_version, sha256=hashlib.sha256(data).hexdigest(),
        batching=False if independent is False else None,
        libraries={"onnxruntime": ort.__version__, "museforge": __version__},
        imported={
            "from": str(source.resolve()),
            "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "by": "museforge models add",
            "producer": header.producer,
            "dynamic_batch": batch,
            "rows_independent": independent,
        },
    )
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".adding-{chosen}-", dir=home))
    try:
        staging.chmod(FOLDER_MODE)  # mkdtemp's 0700 would hide the model from a server run as another user
        (staging / MODEL_NAME).write_bytes(data)
        manifest.write(staging)
        os.rename(staging, home / str(chosen))  # whole or not at all; refuses an existing version
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ImportRefused(f"cannot write {home / str(chosen)}: {exc.strerror or exc}") from None
    return Imported(name, chosen, home / str(chosen), manifest, batch, independent)


def _read(source: Path) -> bytes:
    try:
        found = source.stat()
        if not stat.S_ISREG(found.st_mode):  # a device or a pipe would be read without end
            raise ImportRefused(f"{source}: not a regular file")
        size = found.st_size
        if size > MAX_FILE_BYTES:
            raise ImportRefused(f"{source}: {size:,} bytes is more than one ONNX file can hold "
                                f"({MAX_FILE_BYTES:,}); weights in external data are not imported")
        return source.read_bytes()
    except OSError as exc:
        raise ImportRefused(f"{source}: {exc.strerror or exc}") from None


def _session(data: bytes, header: GraphHeader, source: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the refusal is ours to word
    try:
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        text = str(exc)
        if "IR version" in text:
            raise ImportRefused(f"{source}: ONNX IR version {header.ir_version} is newer than ONNX "
                                f"Runtime {ort.__version__} reads; export it again with a lower "
                                "ir_version") from None
        if not header.ir_version:
            raise ImportRefused(f"{source}: not an ONNX model (no ModelProto with an IR version)") from None
        raise ImportRefused(f"{source}: ONNX Runtime {ort.__version__} cannot load it: "
                            f"{_first_line(text)}") from None


def _tensors(session: ort.InferenceSession) -> tuple[list[TensorInfo], list[TensorInfo]]:
    found: list[list[TensorInfo]] = []
    for kind, args in (("input", session.get_inputs()), ("output", session.get_outputs())):
        tensors = []
        for arg in args:
            if arg.type not in ORT_TO_NUMPY:
                raise ImportRefused(f"{kind} {arg.name!r} is {arg.type}: museforge serves numeric and "
                                    "boolean tensors only")
            shape: list[int | str] = [d if isinstance(d, (int, str)) and d != -1 else f"{arg.name}_{i}"
                                      for i, d in enumerate(arg.shape)]
            tensors.append(TensorInfo(name=arg.name, dtype=np.dtype(ORT_TO_NUMPY[arg.type]).name,
                                      shape=shape))
        found.append(tensors)
    return found[0], found[1]


def _warm_up(session: ort.InferenceSession, source: Path) -> None:
    try:  # the same warm-up the server runs before serving a model
        Runtime.warm_up(session, specs(session.get_inputs()))
    except Exception as exc:
        raise ImportRefused(f"{source}: a trial run with zeros failed (dynamic axes tried at 1, 16 "
                            f"and 64), so it could not serve: {_first_line(str(exc))}") from None


def _version(home: Path, version: int | None) -> int:
    if version is None:
        return next_version(home)
    existing = available_versions(home) if home.is_dir() else []
    if not 0 < version <= MAX_VERSION:
        raise ImportRefused(f"version {version}: use a whole number from 1 to {MAX_VERSION}")
    if version in existing:
        raise ImportRefused(f"{home / str(version)} exists: versions are never overwritten; choose "
                            f"another (the next free one is {max(existing) + 1})")
    return version


def read_header(data: bytes) -> GraphHeader:
    """ir_version (field 1), producer_name (2) and opset_import (8) of a ModelProto, by the wire format.

    Anything that does not parse as protobuf gives an empty header (ONNX Runtime then says more).
    """
    values: dict[str, int | str] = {}
    try:
        for number, _, value in fields(memoryview(data)):  # views: the graph's bytes are not copied
            if number == 1 and isinstance(value, int):
                values["ir"] = value
            elif number == 2 and isinstance(value, memoryview):
                values["producer"] = bytes(value[:200]).decode("utf-8", "replace")
            elif number == 8 and isinstance(value, memoryview):
                opset = {n: v for n, _, v in fields(value)}
                domain, number_of = opset.get(1, b""), opset.get(2)
                if domain in (b"", b"ai.onnx") and isinstance(number_of, int):
                    values["opset"] = number_of
    except ValueError:
        return GraphHeader()
    return GraphHeader(int(values.get("ir", 0)), int(values.get("opset", 0)), str(values.get("producer", "")))


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no detail"
    return line[:300]
