"""A naive peer: what a short script serving one ONNX model over OIP ModelInfer looks like.

Sync ``grpc.server`` on a thread pool; each request is decoded, run alone through
``session.run`` and encoded. No batching, no queue, nothing else. Run as
``python -m bench.naive_server --model PATH --name NAME --port 0``; it prints
``naive serving on HOST:PORT`` and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import onnxruntime as ort

from museforge.inference import grpc_service_pb2 as pb
from museforge.inference import grpc_service_pb2_grpc as pb_grpc
from museforge.server.oip_tensors import decode_inputs, encode_outputs


class NaiveInference(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, name: str, session: ort.InferenceSession) -> None:
        self.name = name
        self.session = session
        self.outputs = [o.name for o in session.get_outputs()]

    def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        if request.model_name != self.name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown model {request.model_name!r}")
        inputs = decode_inputs(request)
        values = self.session.run(self.outputs, inputs)
        tensors, raw = encode_outputs(dict(zip(self.outputs, values, strict=True)), raw=True)
        return pb.ModelInferResponse(model_name=self.name, id=request.id, outputs=tensors,
                                     raw_output_contents=raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="path to model.onnx")
    parser.add_argument("--name", required=True, help="model name clients ask for")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    # As many threads as museforge's default worker_threads: a like-for-like pool.
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    server = grpc.server(ThreadPoolExecutor(args.workers))
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(NaiveInference(args.name, session), server)
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"naive serving on {args.host}:{port}", flush=True)
    while not stop.wait(0.5):  # short waits keep the signal handler responsive
        pass
    server.stop(1).wait()


if __name__ == "__main__":
    main()
