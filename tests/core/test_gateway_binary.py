"""Triton's binary tensor extension on the gateway's /v2 infer route, in raw HTTP.

A JSON header of ``Inference-Header-Content-Length`` bytes, then each binary input's bytes
in order; outputs asked for as binary come back after the reply's JSON. The body obeys the
limits every body does, and a request without Content-Type is taken only when it carries
that header (which a page cannot send cross-site without a CORS preflight).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from museforge.config import Settings
from tests.servers import ServerThread

INFER = "/v2/models/image.digits/infer"
ORIGIN = "https://tools.example"
Z = (np.arange(100, dtype=np.float32) * 0.01).reshape(1, 100)
LABEL = np.array([[3]], dtype=np.int64)  # the per-item scalar as Triton describes it, [B, 1]
Reply = tuple[int, dict[str, str], bytes]


def settings(**extra: Any) -> Settings:
    return Settings(address="127.0.0.1:0", http_address="127.0.0.1:0", plugins=["image"],
                    http_cors_origins=[ORIGIN], **extra)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread(settings()) as running:
        yield running


def exchange(server: ServerThread, head: bytes, body: bytes = b"", send_body: bool = True) -> Reply:
    """One request on its own connection, as given; the reply's status, headers and body."""
    assert server.running is not None and server.running.gateway is not None
    host, port = server.running.gateway.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as connection:
        connection.sendall(head + (body if send_body else b""))
        reader = connection.makefile("rb")
        status = int(reader.readline().split()[1])
        headers = {}
        while (line := reader.readline()) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, reader.read(int(headers.get("content-length", "0")))


def binary_request(document: dict[str, Any], tail: bytes, header: str | None = None,
                   content_type: str | None = None) -> tuple[bytes, bytes]:
    """The head and body of an infer request in the binary form (Content-Type left out, as
    tritonclient.http leaves it out)."""
    text = json.dumps(document).encode()
    body = text + tail
    lines = [f"POST {INFER} HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}",
             f"Inference-Header-Content-Length: {len(text) if header is None else header}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), body


def tensors(binary_outputs: bool = True) -> dict[str, Any]:
    inputs = [{"name": "z", "datatype": "FP32", "shape": [1, 100],
               "parameters": {"binary_data_size": Z.nbytes}},
              {"name": "label", "datatype": "INT64", "shape": [1, 1],
               "parameters": {"binary_data_size": LABEL.nbytes}}]
    return {"id": "b1", "inputs": inputs, "parameters": {"binary_data_output": binary_outputs}}


def split_reply(headers: dict[str, str], body: bytes) -> dict[str, np.ndarray]:
    """Each output as an array, from the JSON header and the bytes after it."""
    length = int(headers["inference-header-content-length"])
    document, offset, arrays = json.loads(body[:length]), length, {}
    for output in document["outputs"]:
        dtype = np.dtype(output["datatype"].lower().replace("fp", "float")).newbyteorder("<")
        if "data" in output:
            arrays[output["name"]] = np.asarray(output["data"], dtype).reshape(output["shape"])
            continue
        size = output["parameters"]["binary_data_size"]
        arrays[output["name"]] = np.frombuffer(body[offset:offset + size], dtype).reshape(output["shape"])
        offset += size
    assert offset == len(body)
    return arrays


def json_reply(server: ServerThread) -> dict[str, np.ndarray]:
    """The same inputs as JSON tensors, replied as JSON: what the binary form must match."""
    document = {"inputs": [{"name": "z", "datatype": "FP32", "shape": [1, 100], "data": Z.tolist()},
                           {"name": "label", "datatype": "INT64", "shape": [1, 1], "data": LABEL.tolist()}]}
    body = json.dumps(document).encode()
    head = (f"POST {INFER} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    status, headers, payload = exchange(server, head, body)
    assert status == 200 and headers["content-type"] == "application/json", payload[:300]
    return {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in json.loads(payload)["outputs"]}


def test_a_binary_request_gets_a_binary_reply_with_the_json_replys_values(server: ServerThread) -> None:
    head, body = binary_request(tensors(), Z.tobytes() + LABEL.tobytes())
    status, headers, payload = exchange(server, head, body)
    assert status == 200, payload[:300]
    assert headers["content-type"] == "application/octet-stream"  # as Triton answers
    got, expected = split_reply(headers, payload), json_reply(server)
    assert set(got) == set(expected) and expected
    for name, array in expected.items():
        np.testing.assert_array_equal(got[name], array.astype(got[name].dtype), err_msg=name)

    # Outputs not asked for as binary come back as JSON data, as today.
    head, body = binary_request(tensors(binary_outputs=False), Z.tobytes() + LABEL.tobytes())
    status, headers, payload = exchange(server, head, body)
    assert status == 200 and headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in headers
    assert all("data" in o for o in json.loads(payload)["outputs"])


def test_a_json_request_may_ask_for_one_output_as_binary(server: ServerThread) -> None:
    expected = json_reply(server)
    name = sorted(expected)[0]
    document = {"inputs": [{"name": "z", "datatype": "FP32", "shape": [1, 100], "data": Z.tolist()},
                           {"name": "label", "datatype": "INT64", "shape": [1], "data": [3]}],
                "outputs": [{"name": n, "parameters": {"binary_data": n == name}} for n in sorted(expected)]}
    body = json.dumps(document).encode()
    head = (f"POST {INFER} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    status, headers, payload = exchange(server, head, body)
    assert status == 200 and headers["content-type"] == "application/octet-stream", payload[:300]
    got = split_reply(headers, payload)
    for key, array in expected.items():
        np.testing.assert_array_equal(got[key], array.astype(got[key].dtype), err_msg=key)


def test_a_header_length_beyond_the_body_is_refused_naming_the_header(server: ServerThread) -> None:
    for value in ("100000", "-1", "12x", "", "9" * 5000):
        head, body = binary_request(tensors(), Z.tobytes() + LABEL.tobytes(), header=value)
        status, _, payload = exchange(server, head, body)
        assert status == 400, (value, payload)
        assert json.loads(payload)["error"].startswith("Inference-Header-Content-Length"), payload


def test_binary_sizes_that_do_not_add_up_are_refused_naming_the_input(server: ServerThread) -> None:
    head, body = binary_request(tensors(), Z.tobytes() + LABEL.tobytes()[:4])  # label short by 4 bytes
    status, _, payload = exchange(server, head, body)
    error = json.loads(payload)["error"]
    assert status == 400 and error.startswith("inputs[1].parameters.binary_data_size") and "'label'" in error

    head, body = binary_request(tensors(), Z.tobytes() + LABEL.tobytes() + b"\0" * 8)  # 8 bytes too many
    status, _, payload = exchange(server, head, body)
    error = json.loads(payload)["error"]
    assert status == 400 and error.startswith("inputs[1].parameters.binary_data_size") and "8 bytes" in error

    document = tensors()
    document["inputs"][0]["parameters"]["binary_data_size"] = Z.nbytes - 4  # the sum fits, the tensor not
    head, body = binary_request(document, Z.tobytes()[:-4] + LABEL.tobytes())
    status, _, payload = exchange(server, head, body)
    error = json.loads(payload)["error"]  # named as a REST caller wrote it, not as the gRPC field
    assert status == 400 and error.startswith("inputs[0].parameters.binary_data_size")
    assert "needs 400" in error


def test_without_the_header_a_missing_or_wrong_content_type_is_still_refused(server: ServerThread) -> None:
    body = json.dumps({"inputs": []}).encode()
    head = f"POST {INFER} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    status, _, payload = exchange(server, head, body)
    assert status == 415 and "Content-Type" in json.loads(payload)["error"]
    head, body = binary_request(tensors(), Z.tobytes() + LABEL.tobytes(), content_type="text/plain")
    status, _, _ = exchange(server, head, body)  # the header does not make a form post's type acceptable
    assert status == 415
    head, body = binary_request(tensors(), Z.tobytes() + LABEL.tobytes(), content_type="application/json")
    assert exchange(server, head, body)[0] == 200  # with application/json, the header is honoured


def test_a_page_must_be_allowed_by_a_preflight_to_send_the_header(server: ServerThread) -> None:
    ask = (f"OPTIONS {INFER} HTTP/1.1\r\nHost: localhost\r\nOrigin: {{}}\r\n"
           "Access-Control-Request-Method: POST\r\n"
           "Access-Control-Request-Headers: inference-header-content-length\r\n\r\n")
    status, headers, _ = exchange(server, ask.format(ORIGIN).encode())
    assert status == 204 and "inference-header-content-length" in headers["access-control-allow-headers"]
    assert exchange(server, ask.format("https://evil.example").encode())[0] == 403
    head, body = binary_request(tensors(), Z.tobytes() + LABEL.tobytes())
    head = head.replace(b"\r\n\r\n", b"\r\nOrigin: https://evil.example\r\n\r\n")
    assert exchange(server, head, body)[0] == 403


def test_a_binary_body_over_the_body_limit_is_refused_unread() -> None:
    with ServerThread(settings(http_max_body_bytes=64 * 1024)) as small:
        tail = b"\0" * (100 * 1024)
        document = tensors()
        document["inputs"][0]["parameters"]["binary_data_size"] = len(tail) - LABEL.nbytes
        head, body = binary_request(document, tail)
        status, _, payload = exchange(small, head, body, send_body=False)  # the body is never sent
        assert status == 413 and "http_max_body_bytes" in json.loads(payload)["error"]


def test_the_server_metadata_lists_the_extension(server: ServerThread) -> None:
    status, _, payload = exchange(server, b"GET /v2 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert status == 200 and "binary_tensor_data" in json.loads(payload)["extensions"]


def test_non_finite_outputs_come_back_as_json_tokens_equal_to_the_binary_bits(server: ServerThread) -> None:
    # JSON has no NaN or infinity; written as null they differed from gRPC's and from each other.
    z = Z.copy()
    z[0, :3] = [np.nan, np.inf, -np.inf]
    document = {"inputs": [{"name": "z", "datatype": "FP32", "shape": [1, 100], "data": "@"},
                           {"name": "label", "datatype": "INT64", "shape": [1, 1], "data": LABEL.tolist()}]}
    body = json.dumps(document).replace('"@"', json.dumps(z.tolist(), allow_nan=True)).encode()
    head = (f"POST {INFER} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    status, _, payload = exchange(server, head, body)
    assert status == 200, payload[:300]
    assert b"null" not in payload and b"NaN" in payload
    as_json = {o["name"]: np.asarray(o["data"], np.float32) for o in json.loads(payload)["outputs"]}
    binary = dict(tensors())
    binary_head, binary_body = binary_request(binary, z.tobytes() + LABEL.tobytes())
    status, headers, raw = exchange(server, binary_head, binary_body)
    assert status == 200
    as_bits = split_reply(headers, raw)
    assert any(np.isnan(a).any() for a in as_bits.values())
    for name, array in as_bits.items():
        np.testing.assert_array_equal(as_json[name], array.ravel(), err_msg=name)  # NaN equals NaN here
