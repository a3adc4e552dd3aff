"""The hostile requests of ``python -m bench.adversarial``: payloads and how each is sent.

Every payload is built once, before any server runs (building a bomb costs the client
CPU, not the server), then sent as is to each server under test. Every call carries a
client deadline and every loop is bounded in time, so a server that misbehaves cannot
hang the benchmark.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import struct_pb2
from PIL import Image

from museforge.inference import grpc_service_pb2 as oip
from museforge.inference import grpc_service_pb2_grpc as oip_grpc
from museforge.v1 import jobs_pb2, jobs_pb2_grpc
from museforge.v1 import museforge_pb2 as pb
from museforge.v1 import museforge_pb2_grpc as pb_grpc

MB = 1_000_000
ZERO_CHUNK = 1 << 24  # 16 MiB of zeros per repeated deflate block


@dataclass
class Ctx:
    """What a probe needs to reach one running server."""

    address: str
    channel: grpc.Channel  # message limits raised, so only the server's own limits apply
    scale: float
    data_dir: Path  # the server's private data directory (jobs read frames under it)
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass
class Outcome:
    status: str  # gRPC status code name, or OK
    note: str = ""  # extra facts shown under the table


@dataclass(frozen=True)
class Probe:
    name: str
    what: str
    build: Callable[[float], Any]  # scale -> payload (built once, sent to every server)
    send: Callable[[Ctx, Any], Outcome]
    server: str = "plain"  # "plain", "jobs" (job roots set) or "auth" (API keys on)


def code_of(exc: grpc.RpcError) -> str:
    return exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"


def status_of(call: Callable[[], object]) -> str:
    try:
        call()
    except grpc.RpcError as exc:
        return code_of(exc)
    return "OK"


def most_common(codes: list[str]) -> str:
    return Counter(codes).most_common(1)[0][0] if codes else "-"


def apply_effect(ctx: Ctx, data: bytes, name: str, timeout: float) -> str:
    request = pb.ApplyEffectRequest(effect="effect.denoise", inputs=[pb.MediaInput(data=data, name=name)])
    stub = pb_grpc.MuseforgeStub(ctx.channel)
    return status_of(lambda: stub.ApplyEffect(request, timeout=timeout, metadata=ctx.metadata))


# ---------------------------------------------------------------- PNG


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png16(width: int, height: int, idat: bytes) -> bytes:
    """A 16-bit RGB PNG with the given (already compressed) image data."""
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def zeros_deflate(chunks: int) -> bytes:
    """A valid zlib stream of ``chunks`` × 16 MiB of zeros, without compressing them all.

    A full flush ends a block on a byte boundary with no reference across it, so the
    same block repeated is valid deflate; the checksum of n zeros is known in closed form.
    """
    co = zlib.compressobj(9)
    first = co.compress(bytes(ZERO_CHUNK)) + co.flush(zlib.Z_FULL_FLUSH)
    total = chunks * ZERO_CHUNK
    adler = ((total % 65521) << 16) | 1
    return first[:2] + first[2:] * chunks + b"\x03\x00" + struct.pack(">I", adler)


def unfilter_png(scale: float) -> bytes:
    width = max(1000, int(200_000 * scale))  # one row, every byte depending on its left neighbour
    return png16(width, 1, zlib.compress(b"\x01" + bytes(width * 6)))


def bomb_png(scale: float) -> bytes:
    return png16(1, 1, zeros_deflate(max(1, round(128 * scale))))  # claims 1x1, inflates to 2 GiB


def send_media(deadline: float) -> Callable[[Ctx, bytes], Outcome]:
    return lambda ctx, data: Outcome(apply_effect(ctx, data, "probe", deadline))


# ---------------------------------------------------------------- JPEG and EXR


def jpeg(side: int, quality: int = 90) -> bytes:
    pixels = np.random.default_rng(7).integers(0, 256, (side, side, 3), np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def truncated_jpeg(_: float) -> bytes:
    data = jpeg(512)
    return data[: int(len(data) * 0.4)] + b"\xff\xd9"  # cut, with an end-of-image marker


def declared_huge_jpeg(_: float) -> bytes:
    """A 16x16 JPEG whose frame header says 7680x4320 (the default pixel limit, exactly)."""
    data = bytearray(jpeg(16))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 4320, 7680)  # height, width after length and precision
    return bytes(data)


def multipart_exr(_: float) -> bytes:
    """A small first part and a second part of 8192x8192, twice the 8K pixel limit (not scaled:
    a smaller one would be within the limit; the file is 150 KB, the pixels 128 MB)."""
    return two_part_exr(8192)


def two_part_exr(side: int) -> bytes:
    import OpenEXR

    def header(w: int, h: int) -> dict[str, Any]:
        window = (np.array([0, 0], np.int32), np.array([w - 1, h - 1], np.int32))
        shown = (np.array([0, 0], np.int32), np.array([7, 7], np.int32))  # shared by every part
        return {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage,
                "dataWindow": window, "displayWindow": shown}

    first = OpenEXR.Part(header(8, 8), {"RGB": np.zeros((8, 8, 3), np.float32)}, "main")
    second = OpenEXR.Part(header(side, side), {"Y": np.zeros((side, side), np.float16)}, "extra")
    with tempfile.TemporaryDirectory() as tmp:  # the bindings write to a path only
        path = Path(tmp) / "two-parts.exr"
        OpenEXR.File([first, second]).write(str(path))
        return path.read_bytes()


def warm_media() -> list[bytes]:
    """Small valid inputs of every kind the probes send, for the warm-up calls."""
    out = []
    for fmt in ("PNG", "JPEG"):
        buffer = io.BytesIO()
        Image.new("RGB", (16, 16), (90, 120, 150)).save(buffer, format=fmt)
        out.append(buffer.getvalue())
    out.append(png16(16, 16, zlib.compress(b"\x00" * (16 * 97))))  # 16 rows: filter 0, 96 bytes
    return [*out, two_part_exr(8)]


# ---------------------------------------------------------------- Open Inference Protocol


def infer_request(model: str, feed: dict[str, tuple[str, list[int], bytes]]) -> oip.ModelInferRequest:
    request = oip.ModelInferRequest(model_name=model)
    for name, (datatype, shape, raw) in feed.items():
        request.inputs.add(name=name, datatype=datatype, shape=shape)
        request.raw_input_contents.append(raw)
    return request


def poison_request(_: float) -> oip.ModelInferRequest:
    z = np.zeros((1, 100), np.float32).tobytes()
    label = np.array([99], np.int64).tobytes()  # the model knows labels 0-9
    return infer_request("image.digits", {"z": ("FP32", [1, 100], z), "label": ("INT64", [1], label)})


def huge_tensor(scale: float) -> oip.ModelInferRequest:
    side = max(64, int(2048 * math.sqrt(scale)) // 8 * 8)
    image = bytes(3 * side * side * 4)
    return infer_request("effect.upscale_x4", {"image": ("FP32", [1, 3, side, side], image)})


def bytes_tensor(scale: float) -> oip.ModelInferRequest:
    count = max(1000, int(25 * MB * scale))  # 4-byte length prefixes of empty elements: 100 MB
    return infer_request("image.digits", {"z": ("BYTES", [count], bytes(4 * count))})


def send_infer(deadline: float) -> Callable[[Ctx, oip.ModelInferRequest], Outcome]:
    def send(ctx: Ctx, request: oip.ModelInferRequest) -> Outcome:
        stub = oip_grpc.GRPCInferenceServiceStub(ctx.channel)
        return Outcome(status_of(lambda: stub.ModelInfer(request, timeout=deadline)))
    return send


def send_poison(ctx: Ctx, bad: oip.ModelInferRequest) -> Outcome:
    """Bad ModelInfer calls while four threads Generate on the same model."""
    until = time.monotonic() + max(1.5, 4.0 * ctx.scale)
    museforge = pb_grpc.MuseforgeStub(ctx.channel)
    infer = oip_grpc.GRPCInferenceServiceStub(ctx.channel)

    def generate(seed: int) -> list[str]:
        codes = []
        request = pb.GenerateRequest(generator="image.digits", seed=seed, count=8)
        while time.monotonic() < until:
            codes.append(status_of(lambda: museforge.Generate(request, timeout=10)))
        return codes

    with ThreadPoolExecutor(4) as pool:
        streams = [pool.submit(generate, seed) for seed in range(4)]
        bad_codes = []
        while time.monotonic() < until:
            bad_codes.append(status_of(lambda: infer.ModelInfer(bad, timeout=5)))
            time.sleep(0.005)
        generated = [c for s in streams for c in s.result(timeout=30)]
    failed = [c for c in generated if c != "OK"]
    note = f"{len(failed)}/{len(generated)} concurrent Generate calls failed"
    return Outcome(most_common(bad_codes), note + (f" ({most_common(failed)})" if failed else ""))


# ---------------------------------------------------------------- museforge.v1


def melody_request(scale: float) -> pb.GenerateRequest:
    params = struct_pb2.Struct()
    params.update({"bars": max(1, round(32 * scale)), "tempo": 30})  # 128 (the maximum): ~4x the cost
    return pb.GenerateRequest(generator="music.melody", parameters=params, seed=1, count=3)


def bound(prop: dict[str, Any], key: str) -> object:
    """A numeric bound of a JSON Schema property, also inside anyOf (optional fields)."""
    return next((p[key] for p in [prop, *prop.get("anyOf", [])] if key in p), "?")


def send_melody(ctx: Ctx, request: pb.GenerateRequest) -> Outcome:
    stub = pb_grpc.MuseforgeStub(ctx.channel)
    listed = stub.ListGenerators(pb.ListGeneratorsRequest(), timeout=10)
    schema: dict[str, Any] = next((json.loads(g.parameters_schema) for g in listed.generators
                   if g.name == "music.melody"), {})
    props = schema.get("properties", {})
    bounds = (f"server's schema: bars ≤ {bound(props.get('bars', {}), 'maximum')}, "
              f"tempo ≥ {bound(props.get('tempo', {}), 'minimum')}")
    return Outcome(status_of(lambda: stub.Generate(request, timeout=60)), bounds)


def junk(scale: float) -> bytes:
    return os.urandom(max(1 << 16, int(50 * MB * scale)))  # not an image of any kind


def send_junk(ctx: Ctx, data: bytes) -> Outcome:
    """Six concurrent calls, each carrying the same large undecodable input."""
    stub = pb_grpc.MuseforgeStub(ctx.channel)
    request = pb.ApplyEffectRequest(effect="effect.denoise", inputs=[pb.MediaInput(data=data, name="x")])
    calls = [stub.ApplyEffect.future(request, timeout=30) for _ in range(6)]
    codes = []
    for call in calls:
        try:
            call.result()
            codes.append("OK")
        except grpc.RpcError as exc:
            codes.append(code_of(exc))
    return Outcome(most_common(codes))


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out) + bytes([n])


def _field(number: int, body: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(body)) + body


def deep_request(_: float) -> bytes:
    """A GenerateRequest whose parameter ``digit`` is a Struct nested 40 levels deep.

    Written on the wire by hand: this protobuf runtime refuses to build a message that
    deep, so a client in another language (or a hand-made frame) is what sends one.
    """
    value = _varint(2 << 3 | 1) + struct.pack("<d", 1.0)  # Value.number_value
    for _level in range(40):
        entry = _field(1, b"nested") + _field(2, value)  # a map entry: key, Value
        value = _field(5, _field(1, entry))  # Value.struct_value = Struct{fields: {entry}}
    parameters = _field(1, _field(1, b"digit") + _field(2, value))
    return _field(1, b"image.digits") + _field(2, parameters) + _varint(3 << 3) + _varint(1)


def send_raw_generate(ctx: Ctx, request: bytes) -> Outcome:
    call = ctx.channel.unary_unary("/museforge.v1.Museforge/Generate", request_serializer=None,
                                   response_deserializer=None)
    return Outcome(status_of(lambda: call(request, timeout=30)))


def huge_job(scale: float) -> jobs_pb2.SubmitJobRequest:
    spec = jobs_pb2.JobSpec(
        steps=[jobs_pb2.EffectStep(effect="effect.denoise")],
        input=jobs_pb2.InputSequence(paths=["frame.png"]), output_pattern="frame_out.png",
        description="x" * max(1000, int(20 * MB * scale)),
    )
    return jobs_pb2.SubmitJobRequest(job=spec)


def send_job(ctx: Ctx, request: jobs_pb2.SubmitJobRequest) -> Outcome:
    """Submit with raised limits; list the way an ordinary client does (default 4 MB replies)."""
    small = io.BytesIO()
    Image.new("RGB", (16, 16)).save(small, format="PNG")
    (ctx.data_dir / "in" / "frame.png").write_bytes(small.getvalue())
    stub = jobs_pb2_grpc.JobsStub(ctx.channel)
    submitted = status_of(lambda: stub.SubmitJob(request, timeout=30))
    with grpc.insecure_channel(ctx.address) as ordinary:
        ops = operations_pb2_grpc.OperationsStub(ordinary)
        listed = status_of(lambda: ops.ListOperations(operations_pb2.ListOperationsRequest(), timeout=30))
    return Outcome(f"{submitted} / {listed}")


def send_unknown_method(ctx: Ctx, _: object) -> Outcome:
    call = ctx.channel.unary_unary("/museforge.v1.Museforge/NoSuchMethod", request_serializer=None,
                                   response_deserializer=None)
    unknown = status_of(lambda: call(b"", timeout=10))
    stub = pb_grpc.MuseforgeStub(ctx.channel)  # a known method without a key: auth is on
    known = status_of(lambda: stub.ListGenerators(pb.ListGeneratorsRequest(), timeout=10))
    return Outcome(unknown, f"ListGenerators without a key: {known}")


PROBES = [
    Probe("png16-unfilter",
          "16-bit PNG, 1 row x 200,000 px, every row filter Sub; ApplyEffect, 3 s deadline",
          unfilter_png, send_media(3.0)),
    Probe("png16-bomb",
          "16-bit PNG claiming 1x1, 2 MB IDAT inflating to 2 GiB; ApplyEffect",
          bomb_png, send_media(30.0)),
    Probe("raw-tensor-poison",
          "OIP ModelInfer image.digits label=99 while 4 threads Generate image.digits",
          poison_request, send_poison),
    Probe("raw-tensor-huge",
          "OIP ModelInfer effect.upscale_x4 on a 2048x2048 input, 30 s deadline",
          huge_tensor, send_infer(30.0)),
    Probe("melody-huge",
          "Generate music.melody bars=32 (of at most 128) tempo=30 count=3, 60 s deadline",
          melody_request, send_melody),
    Probe("failed-payload",
          "6 concurrent ApplyEffect calls, each with a 50 MB undecodable input",
          junk, send_junk),
    Probe("big-bytes-tensor",
          "OIP ModelInfer with a 100 MB BYTES tensor (25 M empty elements)",
          bytes_tensor, send_infer(60.0)),
    Probe("deep-struct",
          "Generate image.digits with a parameter nested 40 levels deep",
          deep_request, send_raw_generate),
    Probe("exr-second-part",
          "two-part EXR: 8x8 first part, 8192x8192 second part; ApplyEffect",
          multipart_exr, send_media(30.0)),
    Probe("truncated-jpeg",
          "JPEG cut to 40% with an end-of-image marker appended; ApplyEffect",
          truncated_jpeg, send_media(30.0)),
    Probe("jpeg-declared-huge",
          "16x16 JPEG whose frame header declares 7680x4320; ApplyEffect, 15 s deadline",
          declared_huge_jpeg, send_media(15.0)),
    Probe("jobs-huge-description",
          "SubmitJob with a 20 MB description; status: SubmitJob / ListOperations from an "
          "ordinary client (4 MB replies)",
          huge_job, send_job, server="jobs"),
    Probe("unauth-probe",
          "API keys on: an unknown method called without a key",
          lambda _: None, send_unknown_method, server="auth"),
]
