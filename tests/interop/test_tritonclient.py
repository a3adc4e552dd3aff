"""Triton's own Python client, unmodified, against every model museforge serves.

A Triton user's program (this module run as a script) takes, for each ready model over
tritonclient.grpc and tritonclient.http (the gateway's /v2 routes), the model metadata and
config, then infers at batch 1 and 4 with inputs built from the metadata the way such a
user builds them: a per-item scalar (dims [1], reshape []) goes as [B, 1]. The tests then
compare every output to onnxruntime on the shipped model file with the same inputs.

The program runs in its own process, as a Triton user's would (tests/core/test_oip_pool.py
shows tritonclient and museforge loading in one process too). The HTTP client runs with its
defaults (binary tensor extension both ways, no Content-Type) and, as ``http_json``, once more
with JSON tensors (``binary_data=False``), which need ``Content-Type: application/json`` on the
request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import json_format

from museforge.config import Settings
from museforge.runtime.manifest import Manifest
from tests.models import shipped_session

ROOT = Path(__file__).resolve().parents[2]
SIDE = 32  # a small size every dynamic spatial axis accepts
BATCHES = (1, 4)
PROTOCOLS = ("grpc", "http", "http_json")
RTOL, ATOL = 1e-4, 1e-5
Run = tuple[Path, dict[str, Any], dict[str, Any]]  # the program's output folder, its models, its report


def made_inputs(metadata: dict[str, Any], ranges: dict[str, list[float]], batch: int
                ) -> dict[str, np.ndarray]:
    """The metadata's shapes with the batch and any dynamic axis filled in, values within
    the manifest's declared range (floats without one in [0, 1], valid for every model)."""
    rng = np.random.default_rng(batch)
    arrays = {}
    for tensor in metadata["inputs"]:
        shape = [batch, *(int(d) if int(d) > 0 else SIDE for d in tensor["shape"][1:])]
        low, high = ranges.get(tensor["name"]) or (0, 1)
        if tensor["datatype"].startswith("INT"):
            values = rng.integers(int(low), int(high) + 1, shape)
            arrays[tensor["name"]] = values.astype(tensor["datatype"].lower())
        else:
            arrays[tensor["name"]] = rng.uniform(low, high, shape).astype(np.float32)
    return arrays


def infer(client: Any, module: Any, name: str, arrays: dict[str, np.ndarray], outputs: list[str],
          json_tensors: bool) -> dict[str, np.ndarray]:
    inputs, extra = [], {"binary_data": False} if json_tensors else {}
    for key, array in arrays.items():
        tensor = module.InferInput(key, list(array.shape), module.np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array, **extra)
        inputs.append(tensor)
    wanted = [module.InferRequestedOutput(key, **extra) for key in outputs]
    # JSON bodies need application/json (a cross-site browser form cannot send it), which
    # tritonclient.http does not send; its binary requests carry Inference-Header-Content-Length.
    headers = {"Content-Type": "application/json"} if json_tensors else None
    result = client.infer(name, inputs, outputs=wanted, headers=headers)
    return {key: result.as_numpy(key) for key in outputs}


def triton_user(spec: dict[str, Any]) -> None:
    """What a Triton user's program does, with nothing but tritonclient and numpy."""
    import tritonclient.grpc as triton_grpc
    import tritonclient.http as triton_http

    out = Path(spec["out"])
    over_grpc = triton_grpc.InferenceServerClient(spec["grpc"])
    over_http = triton_http.InferenceServerClient(spec["http"])
    report: dict[str, Any] = {}
    for name, ranges in spec["models"].items():
        assert over_grpc.is_model_ready(name) and over_http.is_model_ready(name), name
        metadata = over_http.get_model_metadata(name)
        seen = report[name] = {
            "grpc_config": over_grpc.get_model_config(name).config.SerializeToString().hex(),
            "http_config": over_http.get_model_config(name),
            "http_config_versioned": over_http.get_model_config(name, model_version=metadata["versions"][-1]),
            "grpc_metadata": over_grpc.get_model_metadata(name, as_json=True),
            "http_metadata": metadata,
        }
        outputs = [t["name"] for t in seen["http_config"]["output"]]
        for batch in BATCHES:
            arrays = made_inputs(metadata, ranges, batch)
            for protocol, client, module in (("grpc", over_grpc, triton_grpc),
                                             ("http", over_http, triton_http),
                                             ("http_json", over_http, triton_http)):
                got = infer(client, module, name, arrays, outputs, json_tensors=protocol == "http_json")
                saved: dict[str, Any] = {**{f"in:{k}": v for k, v in arrays.items()},
                                         **{f"out:{k}": v for k, v in got.items()}}
                np.savez(out / f"{protocol}-{name}-{batch}.npz", **saved)
    over_grpc.close()
    over_http.close()
    (out / "report.json").write_text(json.dumps(report))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Serves the shipped models, runs the Triton user's program; (its output folder, the
    models it was given, its report)."""
    from tests.servers import ServerThread  # the server's protos stay out of the program's process

    out = tmp_path_factory.mktemp("triton")
    with ServerThread(Settings(address="127.0.0.1:0", http_address="127.0.0.1:0")) as server:
        assert server.running is not None and server.running.gateway is not None
        models = {}
        for name, model in sorted(server.running.engine.runtime.models.items()):
            if model.ready:
                manifest = Manifest.read(model.directory / str(model.version))
                models[name] = {"directory": str(model.directory / str(model.version)),
                                "ranges": {t.name: list(t.range) for t in manifest.inputs if t.range}}
        spec = {"grpc": server.address, "http": server.running.gateway.address, "out": str(out),
                "models": {name: m["ranges"] for name, m in models.items()}}
        done = subprocess.run([sys.executable, "-m", "tests.interop.test_tritonclient", json.dumps(spec)],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-4000:]
    yield out, models, json.loads((out / "report.json").read_text())


def test_every_served_model_was_reached(run: Run) -> None:
    _, models, report = run
    assert "image.digits" in models and len(models) >= 10
    assert set(report) == set(models)


def test_http_config_is_the_grpc_config_in_tritons_json(run: Run) -> None:
    from museforge.inference import grpc_service_pb2 as pb

    for name, seen in run[2].items():
        over_grpc = pb.ModelConfig.FromString(bytes.fromhex(seen["grpc_config"]))
        for config in (seen["http_config"], seen["http_config_versioned"]):
            assert config["name"] == name and config["max_batch_size"] == over_grpc.max_batch_size > 0
            for tensor in (*config["input"], *config["output"]):
                assert tensor["data_type"].startswith("TYPE_"), (name, tensor)
                assert all(isinstance(d, int) for d in tensor["dims"]), (name, tensor)  # numbers, as Triton's
            assert json_format.ParseDict(config, pb.ModelConfig()) == over_grpc, name


def test_metadata_agrees_between_the_protocols(run: Run) -> None:
    for name, seen in run[2].items():
        over_grpc, over_http = seen["grpc_metadata"], seen["http_metadata"]
        for key in ("name", "versions", "platform"):
            assert over_grpc[key] == over_http[key], (name, key)
        for key in ("inputs", "outputs"):
            assert [(t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in over_grpc[key]] == \
                [(t["name"], t["datatype"], t["shape"]) for t in over_http[key]], (name, key)


def reference(directory: str, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """onnxruntime on the shipped file, each input as the model takes it and each output as a client
    sees it (Triton's reshape)."""
    feed = {}
    for tensor in config["input"]:
        array = arrays[tensor["name"]]
        feed[tensor["name"]] = array.reshape(len(array), *tensor["reshape"]["shape"]) if "reshape" in tensor \
            else array
    results = shipped_session(Path(directory)).run(None, feed)
    # An output the model gives as [B] is reported as [B, 1], with its reshape (Triton's convention).
    return {t["name"]: np.asarray(r).reshape(len(r), *(int(d) for d in t["dims"])) if "reshape" in t
            else np.asarray(r) for t, r in zip(config["output"], results, strict=True)}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_model_infers_as_onnx_runtime_does(run: Run,
                                                  protocol: str) -> None:
    out, models, report = run
    for name, seen in report.items():
        config = seen["http_config"]
        for batch in BATCHES:
            with np.load(out / f"{protocol}-{name}-{batch}.npz") as saved:
                arrays = {k[3:]: saved[k] for k in saved.files if k.startswith("in:")}
                got = {k[4:]: saved[k] for k in saved.files if k.startswith("out:")}
            expected = reference(models[name]["directory"], config, arrays)
            assert set(got) == set(expected), name
            for key, value in expected.items():
                assert got[key].shape == value.shape, (protocol, name, batch, key)
                np.testing.assert_allclose(got[key], value, rtol=RTOL, atol=ATOL,
                                           err_msg=f"{protocol} {name} batch {batch} {key}")


if __name__ == "__main__":
    triton_user(json.loads(sys.argv[1]))
