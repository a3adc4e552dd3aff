"""A model run is stopped once every request in it is cancelled (ONNX Runtime's terminate flag)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from museforge.client import Client
from museforge.inference import grpc_service_pb2 as oip
from museforge.inference import grpc_service_pb2_grpc as oip_grpc
from museforge.runtime.sessions import LoadedModel
from museforge.runtime.stop import RunStopped, StopSignal
from museforge.v1 import museforge_pb2_grpc as pb_grpc
from tests.core.test_batcher import texture_feed, texture_runtime
from tests.servers import ServerThread

TEXTURE = "image.texture"


def test_stop_signal_tells_listeners_once_and_late_listeners_at_once() -> None:
    signal = StopSignal()
    heard: list[str] = []
    forget = signal.listen(lambda: heard.append("early"))
    gone = signal.listen(lambda: heard.append("forgotten"))
    gone()
    signal.set()
    signal.set()
    signal.listen(lambda: heard.append("late"))
    forget()  # after the fact: harmless
    assert heard == ["early", "late"]
    assert signal.is_set()


def test_a_long_run_stops_when_its_request_is_cancelled() -> None:
    rt = texture_runtime()
    try:
        stop = StopSignal()
        outcome: list[BaseException | None] = []

        def call() -> None:
            try:
                rt.infer(TEXTURE, texture_feed(0, 128), stop)  # a 2048-px texture: seconds of work
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=call)
        worker.start()
        stop.set()  # before or during the run: either way it ends early
        worker.join(120)
        assert len(outcome) == 1 and isinstance(outcome[0], RunStopped), outcome
        assert "cancelled" in str(outcome[0])
        stats = rt.models[TEXTURE].stats.snapshot()
        assert stats.success.count == 0 and stats.fail.count == 1
        # The session is fine afterwards: the next request is served in full.
        again = rt.infer(TEXTURE, texture_feed(1, 4), StopSignal())
        assert again["image"].shape == (1, 1, 64, 64)
    finally:
        rt.close()


@pytest.mark.parametrize("other", ["running", "plain"])
def test_a_shared_run_goes_on_while_one_request_still_wants_it(other: str) -> None:
    # Two small requests in one queue window share a run; only one of them is cancelled.
    rt = texture_runtime(max_queue_delay_us=300_000)
    try:
        cancelled = StopSignal()
        cancelled.set()
        feeds = [texture_feed(i, 4) for i in range(2)]
        futures = [rt.submit(TEXTURE, feeds[0], stop=cancelled),
                   rt.submit(TEXTURE, feeds[1], stop=StopSignal() if other == "running" else None)]
        session = rt.models[TEXTURE].session
        assert session is not None
        for feed, future in zip(feeds, futures, strict=True):
            np.testing.assert_allclose(future.result(60)["image"], session.run(["image"], feed)[0],
                                       atol=1e-5)
        assert rt.models[TEXTURE].stats.snapshot().execution_count == 1
    finally:
        rt.close()


def _wait_for_the_run(server: ServerThread, before: tuple[int, int]) -> tuple[int, int]:
    """(successes, failures) since ``before``, once the run has ended, however it ended."""
    waited = time.monotonic()
    while _texture_requests(server) == before and time.monotonic() - waited < 120:
        time.sleep(0.05)
    success, fail = _texture_requests(server)
    return success - before[0], fail - before[1]


def _texture(server: ServerThread) -> LoadedModel:
    assert server.running is not None
    return server.running.engine.runtime.models[TEXTURE]


def _texture_requests(server: ServerThread) -> tuple[int, int]:
    stats = _texture(server).stats.snapshot()
    return stats.success.count, stats.fail.count


def _cancelled_mid_run(server: ServerThread, call: Callable[[grpc.Channel], grpc.Future]) -> tuple[int, int]:
    """Start ``call``, cancel it once its texture run is under way; what the run's end counted."""
    model = _texture(server)
    assert model.batcher is not None
    waited = time.monotonic()
    while model.batcher.busy and time.monotonic() - waited < 120:  # another test's run, ending
        time.sleep(0.05)
    before = _texture_requests(server)
    with grpc.insecure_channel(server.address) as channel:
        future = call(channel)
        while not model.batcher.busy:  # queued or running: in either, the stop reaches it
            assert not future.done(), future.exception()
            assert time.monotonic() - waited < 120
            time.sleep(0.01)
        future.cancel()
    return _wait_for_the_run(server, before)


def test_a_generate_cancelled_mid_run_stops_its_model_run(server: ServerThread) -> None:
    request = Client.request(TEXTURE, {"width": 2048, "height": 2048}, seed=4)
    # Stopped, the run fails; left to run, it would succeed for nobody.
    assert _cancelled_mid_run(server, lambda channel: pb_grpc.MuseforgeStub(channel).Generate.future(
        request, timeout=120)) == (0, 1)


def test_a_generate_past_its_deadline_ends_without_a_run_for_nobody(server: ServerThread) -> None:
    before = _texture_requests(server)
    with Client(server.address, timeout=60) as client, pytest.raises(grpc.RpcError) as raised:
        client.generate(TEXTURE, {"width": 2048, "height": 2048}, seed=4, timeout=0.5)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    model = _texture(server)
    assert model.batcher is not None
    waited = time.monotonic()
    while model.batcher.busy and time.monotonic() - waited < 120:
        time.sleep(0.05)
    assert _texture_requests(server)[0] == before[0]  # stopped, or never started: never finished


def test_a_big_model_infer_whose_client_gave_up_stops_its_run(server: ServerThread) -> None:
    feed = texture_feed(2, 128)  # 2 MiB of noise: a run of its own, seconds long
    request = oip.ModelInferRequest(
        model_name=TEXTURE,
        inputs=[oip.ModelInferRequest.InferInputTensor(name=name, datatype=datatype,
                                                       shape=list(feed[name].shape))
                for name, datatype in (("noise", "FP32"), ("family", "INT64"))],
        raw_input_contents=[feed["noise"].tobytes(), feed["family"].tobytes()],
    )
    assert _cancelled_mid_run(server, lambda channel: oip_grpc.GRPCInferenceServiceStub(
        channel).ModelInfer.future(request, timeout=120)) == (0, 1)


def test_an_async_call_cancelled_stops_the_run_of_a_model_served_without_batching() -> None:
    rt = texture_runtime(batching=False)
    try:
        assert rt.models[TEXTURE].batcher is None

        async def cancelled_call() -> None:
            with ThreadPoolExecutor(1) as pool:
                task = asyncio.ensure_future(rt.infer_async(TEXTURE, texture_feed(3, 128), pool))
                await asyncio.sleep(0.3)  # inside the run (seconds long) by now, or about to be
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            # Leaving the pool waited for its thread: the run has ended, however it ended.

        asyncio.run(cancelled_call())
        stats = rt.models[TEXTURE].stats.snapshot()
        assert stats.success.count == 0 and stats.fail.count == 1
    finally:
        rt.close()
