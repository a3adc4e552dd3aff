"""The HTTP/JSON gateway against a real server, with a real HTTP/1.1 client (http.client)."""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import logging
import socket
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
import numpy as np
import pytest
from openapi_spec_validator import validate
from PIL import Image

from museforge.client import Client
from museforge.config import Settings
from museforge.gateway import http_protocol as gateway_http
from museforge.gateway.openapi import openapi_document, openapi_path
from museforge.gateway.routes import ROUTES
from museforge.inference import grpc_service_pb2 as oip
from museforge.inference import grpc_service_pb2_grpc as oip_grpc
from museforge.server.auth import KeyFile
from museforge.server.oip_decode import decode_typed
from museforge.server.unsafe_setup import UnsafeSetup
from tests.core.certs import make_pki
from tests.core.jobs_helpers import job_settings, write_frames
from tests.servers import ServerThread

ROOT = Path(__file__).resolve().parents[2]


class Http:
    """One keep-alive HTTP/1.1 connection to the gateway; JSON in and out."""

    def __init__(self, server: ServerThread, key: str = "", tls: ssl.SSLContext | None = None) -> None:
        assert server.running is not None and server.running.gateway is not None
        host, port = server.running.gateway.address.rsplit(":", 1)
        self.connection = (http.client.HTTPSConnection(host, int(port), timeout=120, context=tls) if tls
                           else http.client.HTTPConnection(host, int(port), timeout=120))
        self.key = key

    def request(self, verb: str, path: str, body: Any = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        sent = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            sent["Content-Type"] = "application/json"
        self.connection.request(verb, path, body=data, headers={**sent, **(headers or {})})
        reply = self.connection.getresponse()
        payload = reply.read()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, payload

    def json(self, verb: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        status, headers, payload = self.request(verb, path, body, **kw)
        assert headers["content-type"].startswith("application/"), headers
        if headers["content-type"] == "application/x-ndjson":
            return status, [json.loads(line) for line in payload.splitlines() if line.strip()]
        return status, json.loads(payload)

    def close(self) -> None:
        self.connection.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    root = tmp_path_factory.mktemp("gateway")
    settings = job_settings(root, http_address="127.0.0.1:0", http_cors_origins=["https://tools.example"])
    with ServerThread(settings) as running:
        running.root = root  # type: ignore[attr-defined]
        yield running


@pytest.fixture()
def web(server: ServerThread) -> Iterator[Http]:
    client = Http(server)
    yield client
    client.close()


def violations(body: dict[str, Any]) -> list[str]:
    return [v["field"] for d in body["error"]["details"] for v in d.get("fieldViolations", [])]


def png_bytes(size: tuple[int, int] = (48, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 60, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_generate_over_http_gives_the_same_bytes_as_grpc(server: ServerThread, web: Http) -> None:
    status, reply = web.json("POST", "/v1/generators/image.digits:generate",
                             {"parameters": {"digit": 7}, "seed": 42, "count": 2})
    assert status == 200, reply
    assert reply["seed"] == "42"  # uint64 as a string: the proto3 JSON mapping
    with Client(server.address) as client:
        expected = client.generate("image.digits", {"digit": 7}, seed=42, count=2)
    assert [base64.b64decode(a["data"]) for a in reply["artifacts"]] == [a.data for a in expected.artifacts]
    assert reply["artifacts"][0]["mediaType"] == "image/png"


def test_listings_and_query_parameters(web: Http) -> None:
    status, reply = web.json("GET", "/v1/generators?modality=image")
    assert status == 200
    names = {g["name"] for g in reply["generators"]}
    assert "image.digits" in names and all(g["modality"] == "image" for g in reply["generators"])
    status, plugins = web.json("GET", "/v1/plugins")
    assert status == 200 and {"image", "effect"} <= {p["name"] for p in plugins["plugins"]}
    status, effects = web.json("GET", "/v1/effects")
    assert "effect.denoise" in {e["name"] for e in effects["effects"]}
    status, stats = web.json("GET", "/v1/statistics?model=image.digits")
    assert status == 200 and [m["model"] for m in stats["models"]] == ["image.digits"]


def test_bad_requests_name_the_field(web: Http) -> None:
    status, reply = web.json("POST", "/v1/generators/image.digits:generate", {"parameters": {"digit": 12}})
    assert status == 400 and reply["error"]["status"] == "INVALID_ARGUMENT"
    assert any("digit" in f for f in violations(reply)), reply
    status, reply = web.json("POST", "/v1/generators/image.nope:generate", {})
    assert status == 404 and reply["error"]["status"] == "NOT_FOUND"
    assert "image.nope" in reply["error"]["message"]
    status, reply = web.json("POST", "/v1/generators/image.digits:generate", raw=b"{not json")
    assert status == 400 and violations(reply) == ["body"]
    status, reply = web.json("POST", "/v1/generators/image.digits:generate", {"sead": 1})
    assert status == 400 and "sead" in reply["error"]["message"]
    status, reply = web.json("POST", "/v1/generators/image.digits:generate", {"count": "many"})
    assert status == 400 and violations(reply) == ["count"]
    status, reply = web.json("POST", "/v1/generators/image.digits:generate", {"generator": "image.other"})
    assert status == 400 and violations(reply) == ["generator"]
    status, reply = web.json("GET", "/v1/generators?modaliti=image")
    assert status == 400 and violations(reply) == ["modaliti"] and "modality" in reply["error"]["message"]
    status, reply = web.json("GET", "/v1/nothing")
    assert status == 404
    status, _, payload = web.request("PUT", "/v1/generators")
    assert status == 405 and "GET" in json.loads(payload)["error"]["message"]
    status, reply = web.json("POST", "/v1/generators/image.digits:generate", [1, 2])
    assert status == 400 and "JSON object" in reply["error"]["message"]


def test_a_body_over_the_limit_is_refused_before_it_is_read(server: ServerThread) -> None:
    assert server.running is not None and server.running.gateway is not None
    host, port = server.running.gateway.address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/v1/effects/effect.denoise:apply")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(10 << 30))
    connection.endheaders()
    reply = connection.getresponse()
    body = json.loads(reply.read())
    assert reply.status == 413 and body["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert reply.getheader("Connection") == "close"
    connection.close()


def test_streaming_generate_is_newline_delimited_json(server: ServerThread, web: Http) -> None:
    status, lines = web.json("POST", "/v1/generators/image.digits:stream",
                             {"parameters": {"digit": 3}, "seed": 5, "count": 2})
    assert status == 200 and all("result" in line for line in lines)
    events = [line["result"] for line in lines]
    data: dict[int, bytes] = {}  # whole artifacts, or large ones in chunks
    for event in events:
        piece = event.get("artifact") or event.get("chunk")
        if piece:
            data[piece["index"]] = data.get(piece["index"], b"") + base64.b64decode(piece["data"])
    assert any("progress" in e for e in events) and events[0]["seed"] == "5"
    with Client(server.address) as client:
        expected = client.generate("image.digits", {"digit": 3}, seed=5, count=2)
    assert [data[i] for i in sorted(data)] == [a.data for a in expected.artifacts]
    status, reply = web.json("POST", "/v1/generators/image.nope:stream", {})
    # Refused before the first message: a real HTTP status, not a 200 with an error line.
    assert status == 404 and reply["error"]["status"] == "NOT_FOUND"


def test_apply_effect_over_http(web: Http) -> None:
    body = {"inputs": [{"name": "frame.png", "data": base64.b64encode(png_bytes()).decode()}],
            "parameters": {"sigma": 15}}
    status, reply = web.json("POST", "/v1/effects/effect.denoise:apply", body)
    assert status == 200, reply
    image = Image.open(io.BytesIO(base64.b64decode(reply["artifacts"][0]["data"])))
    assert image.size == (48, 40) and image.format == "PNG"
    body["inputs"] = [{"data": base64.b64encode(b"not an image").decode()}]
    status, reply = web.json("POST", "/v1/effects/effect.denoise:apply", body)
    assert status == 400 and any(f.startswith("inputs[0]") for f in violations(reply)), reply


def test_jobs_over_http_submit_watch_get_list_delete(server: ServerThread, web: Http) -> None:
    root: Path = server.root  # type: ignore[attr-defined]
    write_frames(root / "in", 1, 3)
    spec = {"steps": [{"effect": "effect.denoise", "parameters": {"sigma": 20}}],
            "input": {"pattern": str(root / "in" / "sh010.####.png"), "firstFrame": 1, "lastFrame": 3},
            "outputPattern": str(root / "out" / "http" / "f.####.png")}
    status, operation = web.json("POST", "/v1/jobs", {"job": spec})
    assert status == 200 and operation["name"].startswith("jobs/"), operation
    job_id = operation["name"].split("/", 1)[1]
    status, events = web.json("GET", f"/v1/jobs/{job_id}:watch")
    assert status == 200 and events[-1]["result"]["snapshot"]["state"] == "JOB_STATE_SUCCEEDED", events[-1]
    status, done = web.json("GET", f"/v1/jobs/{job_id}")
    assert status == 200 and done["done"] is True
    assert [i["state"] for i in done["response"]["items"]] == ["ITEM_STATE_DONE"] * 3
    status, page = web.json("GET", f"/v1/jobs/{job_id}/items?pageSize=2")
    assert status == 200 and [int(i["frame"]) for i in page["items"]] == [1, 2] and page["nextPageToken"]
    token = quote(page["nextPageToken"])
    status, rest = web.json("GET", f"/v1/jobs/{job_id}/items?pageSize=2&pageToken={token}")
    assert status == 200 and [int(i["frame"]) for i in rest["items"]] == [3] and not rest.get("nextPageToken")
    assert sorted(p.name for p in (root / "out" / "http").iterdir()) == [f"f.000{i}.png" for i in (1, 2, 3)]
    status, listing = web.json("GET", "/v1/jobs?filter=done%3Dtrue&pageSize=10")
    assert status == 200 and operation["name"] in [o["name"] for o in listing["operations"]]
    status, waited = web.json("POST", f"/v1/jobs/{job_id}:wait", {"timeout": "5s"})
    assert status == 200 and waited["done"] is True
    status, _ = web.json("DELETE", f"/v1/jobs/{job_id}")
    assert status == 200
    status, gone = web.json("GET", f"/v1/jobs/{job_id}")
    assert status == 404 and gone["error"]["status"] == "NOT_FOUND"
    status, bad = web.json("POST", "/v1/jobs", {"job": {**spec, "outputPattern": "/etc/f.####.png"}})
    assert status == 403 and bad["error"]["status"] == "PERMISSION_DENIED"


def test_health_and_cors(web: Http) -> None:
    status, reply = web.json("GET", "/v1/health")
    assert status == 200 and reply["status"] == "SERVING"
    status, reply = web.json("GET", "/v1/health?service=no.such.Service")
    assert status == 404 and reply["error"]["status"] == "NOT_FOUND"
    status, headers, _ = web.request("OPTIONS", "/v1/generators", headers={"Origin": "https://tools.example"})
    assert status == 204 and headers["access-control-allow-origin"] == "https://tools.example"
    status, headers, _ = web.request("OPTIONS", "/v1/generators", headers={"Origin": "https://evil.example"})
    assert status == 403 and "access-control-allow-origin" not in headers
    status, headers, _ = web.request("GET", "/v1/plugins", headers={"Origin": "https://tools.example"})
    assert headers["access-control-allow-origin"] == "https://tools.example"


def test_openapi_document_is_served_valid_and_committed(web: Http) -> None:
    status, served = web.json("GET", "/openapi.json")
    document = openapi_document()
    assert status == 200 and served == document
    validate(document)
    assert {openapi_path(r.template)[0] for r in ROUTES} == set(document["paths"])
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert committed == document, "run: museforge openapi -o docs/openapi.json"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("keys") / "api_keys.json"
    store = KeyFile(path)
    return path, {scope: store.create(scope, [scope])[0] for scope in ("generate", "read")}


def test_auth_scopes_and_limits_are_the_grpc_ones(keys: tuple[Path, dict[str, str]]) -> None:
    path, made = keys
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"], auth=True,
                        api_keys_file=str(path), requests_per_second_per_key=0.5)
    with ServerThread(settings) as server:
        anonymous, reader = Http(server), Http(server, made["read"])
        generator = Http(server, made["generate"])
        status, reply = anonymous.json("GET", "/v1/generators")
        assert status == 401 and reply["error"]["status"] == "UNAUTHENTICATED"
        status, reply = anonymous.json("GET", "/v1/health")
        assert status == 200  # health stays open, as over gRPC
        status, reply = reader.json("POST", "/v1/generators/image.digits:generate", {"seed": 1})
        assert status == 403 and "generate" in reply["error"]["message"]
        status, reply = generator.json("POST", "/v1/generators/image.digits:generate", {"seed": 1})
        assert status == 200
        # One budget per key, whichever protocol spends it (0.5 calls/s: a burst of one call).
        key = made["generate"]
        with Client(server.address, api_key=key) as client, pytest.raises(grpc.RpcError) as refused:
            client.generate("image.digits", seed=2)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        status, headers, payload = generator.request("POST", "/v1/generators/image.digits:generate",
                                                     {"seed": 3})
        body = json.loads(payload)
        assert status == 429 and body["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert int(headers["retry-after"]) >= 1
        assert any("RetryInfo" in d["@type"] for d in body["error"]["details"])
        for client in (anonymous, reader, generator):
            client.close()


def test_https_with_the_server_certificate(tmp_path: Path) -> None:
    made = make_pki()
    paths = made.write(tmp_path)
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"],
                        tls_cert=str(paths["server_cert"]), tls_key=str(paths["server_key"]))
    with ServerThread(settings) as server:
        trusted = ssl.create_default_context(cadata=made.ca.cert.decode())
        secure = Http(server, tls=trusted)
        status, reply = secure.json("GET", "/v1/plugins")
        assert status == 200 and reply["plugins"]
        secure.close()
        plain = Http(server)
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            plain.request("GET", "/v1/plugins")
        plain.close()
        stranger = ssl.create_default_context(cadata=made.foreign_ca.cert.decode())
        with pytest.raises(ssl.SSLError):
            Http(server, tls=stranger).request("GET", "/v1/plugins")


def test_gateway_beyond_loopback_needs_tls_and_keys() -> None:
    settings = Settings(address="127.0.0.1:0", http_address="0.0.0.0:0", plugins=["image"])
    with pytest.raises(UnsafeSetup, match=r"0\.0\.0\.0"), ServerThread(settings):
        pass


def test_open_inference_protocol_rest_form(server: ServerThread, web: Http) -> None:
    assert web.json("GET", "/v2/health/live") == (200, {"live": True})
    assert web.json("GET", "/v2/health/ready") == (200, {"ready": True})
    status, meta = web.json("GET", "/v2")
    assert status == 200 and meta["name"] == "museforge"
    status, model = web.json("GET", "/v2/models/image.digits")
    assert status == 200
    assert {t["name"]: t["datatype"] for t in model["inputs"]} == {"z": "FP32", "label": "INT64"}
    assert [t["shape"] for t in model["inputs"]] == [[-1, 100], [-1, 1]]  # numbers, as the REST form has them
    version = model["versions"][0]
    assert web.json("GET", f"/v2/models/image.digits/versions/{version}/ready") == (200, {"ready": True})
    assert web.json("GET", "/v2/models/image.nope/ready") == (503, {"ready": False})

    z = [[0.01 * i for i in range(100)]]
    inputs = [{"name": "z", "datatype": "FP32", "shape": [1, 100], "data": z},
              {"name": "label", "datatype": "INT64", "shape": [1], "data": [3]}]
    body: dict[str, Any] = {"id": "r1", "inputs": inputs}
    status, reply = web.json("POST", "/v2/models/image.digits/infer", body)
    assert status == 200 and reply["id"] == "r1" and reply["model_name"] == "image.digits", reply
    request = oip.ModelInferRequest(model_name="image.digits")  # the same call over gRPC
    request.inputs.add(name="z", datatype="FP32", shape=[1, 100]).contents.fp32_contents.extend(z[0])
    request.inputs.add(name="label", datatype="INT64", shape=[1]).contents.int64_contents.append(3)
    with grpc.insecure_channel(server.address) as channel:
        expected = oip_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=60)
    assert [o["name"] for o in reply["outputs"]] == [o.name for o in expected.outputs]
    for output, want in zip(reply["outputs"], expected.outputs, strict=True):
        assert output["shape"] == list(want.shape) and output["datatype"] == want.datatype
        array = decode_typed(want.contents, want.datatype, tuple(want.shape), "outputs")
        np.testing.assert_array_equal(np.asarray(output["data"], array.dtype), array.ravel())

    status, error = web.json("POST", "/v2/models/image.nope/infer", body)
    assert status == 404 and "image.nope" in error["error"]  # the protocol's {"error": "<message>"}
    wrong = {"inputs": [{**body["inputs"][0], "datatype": "FP99"}, body["inputs"][1]]}
    status, error = web.json("POST", "/v2/models/image.digits/infer", wrong)
    assert status == 400 and error["error"].startswith("inputs[0].datatype")
    short = {"inputs": [{**body["inputs"][0], "data": [1.0, 2.0]}, body["inputs"][1]]}
    status, error = web.json("POST", "/v2/models/image.digits/infer", short)
    assert status == 400 and error["error"].startswith("inputs[0].data") and "2 elements" in error["error"]
    status, error = web.json("POST", "/v2/models/image.digits/infer", {"inputs": body["inputs"][:1]})
    assert status == 400 and "label" in error["error"]

    # The per-item scalar label as Triton describes it, [B, 1], and as the model takes it, [B].
    column = {**body, "inputs": [inputs[0], {**inputs[1], "shape": [1, 1], "data": [[3]]}]}
    status, same = web.json("POST", "/v2/models/image.digits/infer", column)
    assert status == 200 and same["outputs"] == reply["outputs"]
    wide = {**body, "inputs": [inputs[0], {**inputs[1], "shape": [1, 2], "data": [[3, 4]]}]}
    status, error = web.json("POST", "/v2/models/image.digits/infer", wide)
    assert status == 400 and error["error"].startswith("inputs[1].shape") and "'label'" in error["error"]


# -- the HTTP edge: what a browser, a slow or a hostile client can send --------------------------------


def address_of(server: ServerThread) -> tuple[str, int]:
    assert server.running is not None and server.running.gateway is not None
    host, port = server.running.gateway.address.rsplit(":", 1)
    return host, int(port)


def raw(server: ServerThread, data: bytes, wait: float = 30) -> bytes:
    """Send bytes as they are and read until the server closes (or ``wait`` passes)."""
    with socket.create_connection(address_of(server), timeout=wait) as connection:
        connection.sendall(data)
        chunks = []
        with contextlib.suppress(TimeoutError):
            while chunk := connection.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def test_browsers_on_other_origins_cannot_drive_the_server(web: Http) -> None:
    path = "/v1/generators/image.digits:generate"
    status, reply = web.json("POST", path, raw=b"", headers={"Content-Type": "text/plain"})
    assert status == 415 and violations(reply) == ["Content-Type"]  # a "simple" cross-site form post
    status, reply = web.json("POST", path, raw=b'{"seed": 1}', headers={"Content-Type": ""})
    assert status == 415
    status, reply = web.json("POST", path, {"seed": 1}, headers={"Origin": "https://evil.example"})
    assert status == 403 and violations(reply) == ["Origin"]
    status, reply = web.json("GET", "/v1/plugins", headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403 and violations(reply) == ["Sec-Fetch-Site"]
    status, reply = web.json("POST", path, {"seed": 1}, headers={"Host": "evil.example:8080"})
    assert status == 403 and violations(reply) == ["Host"]  # DNS rebinding onto a loopback server
    status, reply = web.json("POST", path, {"seed": 1}, headers={"Origin": "https://tools.example"})
    assert status == 200  # a listed origin may


def test_a_body_is_framed_one_way_only(server: ServerThread) -> None:
    chunked = raw(server, b"GET /v1/plugins HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"5\r\nGET /\r\n0\r\n\r\n")
    assert chunked.startswith(b"HTTP/1.1 411") and chunked.count(b"HTTP/1.1") == 1  # nothing smuggled
    twice = raw(server, b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 2\r\nContent-Length: 30\r\n\r\n{}")
    assert twice.startswith(b"HTTP/1.1 400") and b"Content-Length" in twice
    odd = raw(server, "GET /v1/plugins HTTP/1.1\r\nHost: localhost\r\nContent-Length: \u00b2\r\n\r\n"
                      .encode("latin-1"))
    assert odd.startswith(b"HTTP/1.1 400")
    # A refused request whose body was not read closes the connection: the body never runs as a request.
    body = b'{"inputs": []}GET /v1/plugins HTTP/1.1\r\nHost: localhost\r\n\r\n'
    refused = raw(server, b"POST /v2/models/image.digits/infer?a=1 HTTP/1.1\r\nHost: localhost\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert refused.startswith(b"HTTP/1.1 400") and refused.count(b"HTTP/1.1") == 1


def test_expect_100_continue_is_answered_only_for_an_acceptable_body(server: ServerThread) -> None:
    head = (b"POST /v1/effects/effect.denoise:apply HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nExpect: 100-continue\r\n")
    too_big = raw(server, head + b"Content-Length: %d\r\n\r\n" % (10 << 30))
    assert too_big.startswith(b"HTTP/1.1 413") and b"100 Continue" not in too_big
    with socket.create_connection(address_of(server), timeout=30) as connection:
        connection.sendall(head + b"Content-Length: 2\r\n\r\n")
        assert connection.recv(100).startswith(b"HTTP/1.1 100")
        connection.sendall(b"{}")
        assert b"HTTP/1.1 400" in connection.recv(65536)  # no inputs: the effect names the field


def test_malformed_bodies_get_a_400_naming_what_is_wrong(web: Http) -> None:
    infer = "/v2/models/image.digits/infer"
    z = {"name": "z", "datatype": "FP32", "shape": [1, 100], "data": [0.0] * 100}
    label = {"name": "label", "datatype": "INT64", "shape": [1], "data": [3]}
    cases = [
        ({"inputs": [z, label], "outputs": 5}, "outputs"),
        ({"inputs": [z, label], "parameters": {"p": 2 ** 70}}, "parameters.p"),
        ({"inputs": [z, {**label, "data": [1.7]}]}, "inputs[1].data"),
        ({"inputs": [z, {**label, "datatype": "BOOL", "data": ["false"]}]}, "inputs[1].data"),
        ({"inputs": [{**z, "data": ["3"] * 100}, label]}, "inputs[0].data"),
        ({"inputs": [{**z, "data": [[1.0], 2.0]}, label]}, "inputs[0].data"),
    ]
    for body, field in cases:
        status, reply = web.json("POST", infer, body)
        assert status == 400 and reply["error"].startswith(field), (body, reply)
    deep = b"[" * 100_000 + b"]" * 100_000
    status, reply = web.json("POST", infer, raw=deep)
    assert status == 400 and reply["error"].startswith("body")
    status, reply = web.json("POST", "/v1/generators/image.digits:generate", raw=deep)
    assert status == 400 and violations(reply) == ["body"]
    status, reply = web.json("GET", "/v1/plugins", headers={"X-Request-Id": "caf\u00e9"})
    assert status == 400 and violations(reply) == ["x-request-id"]


def test_methods_and_http_1_0(server: ServerThread, web: Http) -> None:
    # HEAD is GET without the body: the same status and length (a load balancer's probe).
    status, got, _ = web.request("GET", "/v1/health")
    status_head, headers, payload = web.request("HEAD", "/v1/health")
    assert (status_head, payload) == (status, b"") and headers["content-length"] == got["content-length"]
    status, headers, payload = web.request("HEAD", "/openapi.json")
    assert status == 200 and payload == b"" and int(headers["content-length"]) > 1000
    status, headers, _ = web.request("HEAD", "/v1/jobs/abc:cancel")
    assert status == 405 and headers["allow"] == "POST"
    status, headers, _ = web.request("GET", "/v1/jobs/abc:cancel")
    assert status == 405 and headers["allow"] == "POST"
    body = b'{"parameters": {"digit": 1}, "seed": 3}'
    reply = raw(server, b"POST /v1/generators/image.digits:stream HTTP/1.0\r\nHost: localhost\r\n"
                        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0] and b"chunked" not in head.lower()  # 1.0 reads to the end
    lines = [json.loads(line) for line in payload.splitlines()]
    assert lines[0]["result"]["seed"] == "3" and any("artifact" in line["result"] for line in lines)


def test_a_stalled_client_is_cut_off(server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway_http, "IDLE_SECONDS", 1.0)  # the header deadline, shortened for the test
    with socket.create_connection(address_of(server), timeout=60) as connection:
        connection.sendall(b"GET /v1/plugins HTTP/1.1\r\nHost: local")  # and nothing more
        assert connection.recv(100) == b""  # the server hung up instead of waiting forever


def test_unknown_keys_are_refused_before_the_body_is_read(keys: tuple[Path, dict[str, str]]) -> None:
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"], auth=True,
                        api_keys_file=str(keys[0]))
    with ServerThread(settings) as server:
        reply = raw(server, b"POST /v2/models/image.digits/infer HTTP/1.1\r\nHost: localhost\r\n"
                            b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 401") and b"Connection: close" in reply  # 50 MB never sent


def test_a_taken_port_stops_the_start_and_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Taken when the gateway binds, past the check before the models load (another program's race).
    monkeypatch.setattr("museforge.server.app.refuse_taken_ports", lambda *_: None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = set(Path(tempfile.gettempdir()).glob("museforge-gw-*"))
        with pytest.raises(OSError, match="HTTP gateway"), ServerThread(
            Settings(address="127.0.0.1:0", http_address=f"127.0.0.1:{port}", plugins=["image"])
        ):
            pass
        assert set(Path(tempfile.gettempdir()).glob("museforge-gw-*")) == before


def test_after_shutdown_a_kept_alive_connection_is_told_so(tmp_path: Path) -> None:
    settings = Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"])
    server = ServerThread(settings).__enter__()
    client = Http(server)
    assert client.json("GET", "/v1/plugins")[0] == 200
    server.__exit__(None, None, None)
    try:
        status, reply = client.json("GET", "/v1/plugins")
        assert status == 503 and reply["error"]["status"] == "UNAVAILABLE"
    except (ConnectionError, http.client.HTTPException):
        pass  # or the connection was closed: either way no half-done request
    client.close()


def test_health_answers_503_unless_serving() -> None:
    from grpc_health.v1 import health_pb2

    from museforge.gateway.routes import health_reply

    serving = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
    stopping = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.NOT_SERVING)
    assert health_reply(serving) == (200, {"status": "SERVING"})
    assert health_reply(stopping) == (503, {"status": "NOT_SERVING"})


def test_a_gateway_beyond_loopback_answers_only_the_names_it_is_told(
        caplog: pytest.LogCaptureFixture) -> None:
    """compose binds the gateway to 0.0.0.0 in its container (the host publishes it on 127.0.0.1):
    no loopback address, so no Host check, and a DNS-rebound page drove it (jobs, feedback)."""
    base: dict[str, Any] = {"address": "127.0.0.1:0", "http_address": "0.0.0.0:0", "allow_insecure": True,
                            "plugins": ["image"]}
    rebound = {"Host": "attacker.example:8080", "Origin": "http://attacker.example:8080",
               "Sec-Fetch-Site": "same-origin"}
    with ServerThread(Settings(**base, http_allowed_hosts=["localhost", "127.0.0.1"])) as server:
        web = Http(server)
        status, reply = web.json("GET", "/v1/generators", headers=rebound)
        assert status == 403 and violations(reply) == ["Host"], reply
        assert "http_allowed_hosts" in reply["error"]["message"]
        assert server.running is not None and server.running.gateway is not None
        port = server.running.gateway.address.rsplit(":", 1)[1]
        assert web.json("GET", "/v1/generators", headers={"Host": f"127.0.0.1:{port}"})[0] == 200
        web.close()
    with caplog.at_level(logging.WARNING, "museforge.gateway"), ServerThread(Settings(**base)):
        pass
    assert any("DNS rebinding" in r.getMessage() and "http_allowed_hosts" in r.getMessage()
               for r in caplog.records)
