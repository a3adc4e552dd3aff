"""Per-key limits with RetryInfo, bounded model queues, and plugin faults that fail one call alone."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from pydantic import BaseModel

import museforge
from museforge.client import Client, field_violations, retry_after
from museforge.runtime.batcher import BatchingOptions, DynamicBatcher, QueueFull
from museforge.runtime.statistics import ModelStatistics
from tests.servers import ServerThread, inline_engine

stopped = threading.Event()


class NoParams(BaseModel):
    pass


def slow(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    for _ in range(10):
        ctx.check_cancelled()
        time.sleep(0.05)
    yield museforge.Media("image", np.zeros((4, 4), np.float32), 0)


def raises(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    raise RuntimeError("the plugin's own bug")
    yield  # pragma: no cover


def hangs(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    try:
        while not ctx.cancelled:  # a loop that only stops when the server gives up on it
            time.sleep(0.01)
        yield from ()
    finally:
        stopped.set()


def malformed(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    yield "not media"


def wrong_kind(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    yield museforge.Media("audio", np.zeros(10, np.float32), 0)


class Plugin:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        for name, fn, timeout in (
            ("test.slow", slow, None),
            ("test.raises", raises, None),
            ("test.hangs", hangs, 0.5),
            ("test.malformed", malformed, None),
            ("test.wrong_kind", wrong_kind, None),
        ):
            register(museforge.Generator(name, "image", NoParams, fn, ("png",), timeout=timeout))


def test_calls_in_flight_per_key_are_bounded_with_a_retry_delay() -> None:
    engine = inline_engine(("faults", Plugin()), max_concurrent_per_key=2)
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:

        def call(_: int) -> grpc.StatusCode | float:
            try:
                client.generate("test.slow", {}, seed=1)
                return grpc.StatusCode.OK
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
                delay = retry_after(exc)
                assert delay is not None and delay > 0
                return exc.code()

        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(call, range(6)))
        assert outcomes.count(grpc.StatusCode.OK) >= 2
        assert outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 1
        client.generate("test.slow", {}, seed=1)  # capacity comes back


def test_the_call_rate_per_key_is_bounded_with_a_retry_delay() -> None:
    engine = inline_engine(("faults", Plugin()), requests_per_second_per_key=5.0)
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:
        refused = None
        for _ in range(30):
            try:
                client.plugins()
            except grpc.RpcError as exc:
                refused = exc
                break
        assert refused is not None and refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        delay = retry_after(refused)
        assert delay is not None and 0 < delay <= 0.25
        time.sleep(delay + 0.05)
        client.plugins()  # after the advertised delay, a token is there


def test_a_full_model_queue_refuses_instead_of_growing() -> None:
    release = threading.Event()

    def run(inputs: Any) -> dict[str, np.ndarray]:
        release.wait(10)
        return {"y": np.asarray(inputs["x"])}

    batcher = DynamicBatcher(
        "slow", run, BatchingOptions(max_batch_size=1, max_queue_size=2), ModelStatistics()
    )
    try:
        first = batcher.submit({"x": np.zeros((1, 1), np.float32)})
        second = batcher.submit({"x": np.zeros((1, 1), np.float32)})
        with pytest.raises(QueueFull, match="max_queue_size 2"):
            batcher.submit({"x": np.zeros((1, 1), np.float32)})
        release.set()
        assert first.result(10)["y"].shape == second.result(10)["y"].shape == (1, 1)
        batcher.submit({"x": np.zeros((1, 1), np.float32)}).result(10)  # room again
    finally:
        release.set()
        batcher.close()


@pytest.fixture(scope="module")
def faulty() -> Iterator[tuple[ServerThread, Client]]:
    engine = inline_engine(("faults", Plugin()))
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:
        yield server, client


@pytest.mark.parametrize("name", ["test.raises", "test.malformed", "test.wrong_kind"])
def test_a_faulty_plugin_fails_its_call_with_a_correlation_id_in_the_log(
    faulty: tuple[ServerThread, Client], name: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, client = faulty
    with caplog.at_level(logging.ERROR, logger="museforge.service"), pytest.raises(grpc.RpcError) as caught:
        client.generate(name, {}, seed=1)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    found = re.search(r"correlation id ([0-9a-f]{12})", caught.value.details() or "")
    assert found is not None
    assert any(found.group(1) in record.getMessage() for record in caplog.records)
    client.generate("test.slow", {}, seed=1)  # the server is unharmed


def test_the_id_a_caller_gets_finds_the_traceback_in_the_log(
    faulty: tuple[ServerThread, Client], caplog: pytest.LogCaptureFixture
) -> None:
    """The traceback was once logged in a record of its own with no id, beside the record with
    the id: with two failures at once, nothing paired them."""
    _, client = faulty
    with caplog.at_level(logging.ERROR), pytest.raises(grpc.RpcError) as caught:
        client.generate("test.raises", {}, seed=1)
    found = re.search(r"correlation id ([0-9a-f]{12})", caught.value.details() or "")
    assert found is not None
    with_traceback = [r for r in caplog.records if r.exc_info is not None]
    assert with_traceback and all(found.group(1) in r.getMessage() for r in with_traceback), [
        r.getMessage() for r in with_traceback]


def test_a_hanging_plugin_is_stopped_at_its_timeout(faulty: tuple[ServerThread, Client],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    _, client = faulty
    stopped.clear()
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        client.generate("test.hangs", {}, seed=1)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "0.5 s limit" in (caught.value.details() or "") and "correlation id" in (
        caught.value.details() or ""
    )
    assert time.monotonic() - started < 10
    assert stopped.wait(5)  # the plugin's loop saw the cancellation and ended
    client.generate("test.slow", {}, seed=1)
    # Stopping early because it was asked to is no fault of the plugin's ("yielded 0 artifacts").
    assert not any("test.hangs failed" in r.getMessage() for r in caplog.records)


def leaks_a_path(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    raise FileNotFoundError(2, "No such file or directory", str(Path(museforge.__file__).parent / "x.onnx"))
    yield  # pragma: no cover


decoded = threading.Event()


def mark_applied(ctx: museforge.GenerationContext, params: NoParams, inputs: Any, seed: int) -> Iterator[Any]:
    decoded.set()
    yield museforge.Media("image", np.zeros((4, 4), np.float32), 0)


class PathsAndDecoding:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.leaks_a_path", "image", NoParams, leaks_a_path, ("png",)))

    @museforge.hookimpl
    def register_effects(self, register: Callable[[Any], None]) -> None:
        register(museforge.Effect("test.quick", "image", NoParams, mark_applied, ("png",), timeout=0.2))
        register(museforge.Effect("test.patient", "image", NoParams, mark_applied, ("png",)))


def test_an_internal_error_names_no_server_path(caplog: pytest.LogCaptureFixture) -> None:
    with ServerThread(engine=inline_engine(("paths", PathsAndDecoding()))) as server, \
            Client(server.address) as client, caplog.at_level(logging.ERROR, logger="museforge"):
        with pytest.raises(grpc.RpcError) as caught:
            client.generate("test.leaks_a_path", {})
        details = caught.value.details() or ""
        assert caught.value.code() == grpc.StatusCode.INTERNAL and "x.onnx" in details
        assert str(Path(museforge.__file__).parent) not in details and "correlation id" in details
        assert any(str(Path(museforge.__file__).parent) in r.getMessage() for r in caplog.records)  # logged


@pytest.mark.parametrize(("effect", "client_timeout"), [("test.quick", 30.0), ("test.patient", 0.2)])
def test_decoding_an_effect_input_stops_when_the_call_ends(effect: str, client_timeout: float) -> None:
    # Ended by the effect's own time limit, or by the client's deadline (the call is cancelled).
    from museforge.engine.codecs.png_writer import write_png

    big = write_png(np.zeros((4096, 4096, 3), np.uint16), level=1)  # ~1 s to decode, 0.45 MB to send
    engine = inline_engine(("paths", PathsAndDecoding()), worker_threads=1)
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:
        decoded.clear()
        with Client(server.address, timeout=client_timeout) as impatient, \
                pytest.raises(grpc.RpcError) as caught:
            impatient.apply_effect(effect, [big])
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert server.running is not None
        cpu, waited = time.process_time(), time.monotonic() + 30
        while server.running.pool.overdue_runs() and time.monotonic() < waited:  # the run ended
            time.sleep(0.01)
        assert time.process_time() - cpu < 0.4  # decoding stopped, rather than finishing for nobody
        assert not decoded.is_set()  # and the effect never ran
        assert len(client.apply_effect(effect, [write_png(np.zeros((8, 8), np.uint8))]).artifacts) == 1


def test_failed_calls_give_their_request_bytes_back() -> None:
    engine = inline_engine(("faults", Plugin()), max_request_bytes_in_flight=4 << 20)
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:
        for _ in range(5):  # 3 MiB each in a 4 MiB budget: only room if each failure gave it back
            with pytest.raises(grpc.RpcError) as caught:
                client.generate("test.slow", {"pad": "x" * (3 << 20)})
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        client.generate("test.slow", {}, seed=1)


deaf_release = threading.Event()


def deaf(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    deaf_release.wait(60)  # never looks at ctx: Python cannot stop this thread
    yield museforge.Media("image", np.zeros((4, 4), np.float32), 0)


class DeafPlugin:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.deaf", "image", NoParams, deaf, ("png",), timeout=0.3))


def test_a_generator_that_ignores_cancellation_cannot_take_every_thread() -> None:
    deaf_release.clear()
    # Its share: 3 places. test.slow is another plugin's: a plugin holding four overdue runs is refused.
    engine = inline_engine(("deaf", DeafPlugin()), ("faults", Plugin()), worker_threads=4)
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=20) as client:
        try:
            with ThreadPoolExecutor(6) as callers:  # a burst: three run past their limit, the rest wait
                calls = [callers.submit(_code_of, lambda: client.generate("test.deaf", {})) for _ in range(6)]
                failures = [call.result() for call in calls]
            assert set(failures) <= {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE}
            assert server.running is not None
            # Its share (3) and one more that found a place as the first ran out (before, all six ran on
            # and on); each has its thread replaced, so other plugins' generators keep theirs.
            assert 2 <= server.running.pool.overdue_runs() <= 4
            # Their threads still run; the next call to it is refused at once, naming it ...
            with pytest.raises(grpc.RpcError) as caught:
                client.generate("test.deaf", {})
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "work has not stopped yet" in (caught.value.details() or "")
            # ... and every other generator still has threads (before, it waited for the deaf ones).
            for _ in range(3):
                assert len(client.generate("test.slow", {}).artifacts) == 1
        finally:
            deaf_release.set()
        deadline = time.monotonic() + 10
        while True:  # once its threads end, it is called again
            try:
                assert len(client.generate("test.deaf", {}).artifacts) == 1
                break
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline
                time.sleep(0.05)


def _code_of(call: Callable[[], object]) -> grpc.StatusCode | None:
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return None


class Mode(BaseModel):
    mode: str = "fewer"


def misbehaves(ctx: museforge.GenerationContext, params: Mode, seed: int, count: int) -> Iterator[Any]:
    image = np.zeros((8, 8, 3), np.float32)
    cases: dict[str, list[tuple[np.ndarray, int]]] = {
        "fewer": [(image, 0)],
        "twice": [(image, 1), (image, 1)],
        "negative": [(image, -1), (image, 1)],
        "int64": [(np.full((8, 8), 200, np.int64), 0), (image, 1)],
        "nan": [(np.full((8, 8), np.nan, np.float32), 0), (image, 1)],
        "batch": [(image[None], 0), (image, 1)],
        "gap": [(image, 0), (image, 5)],
        "mask": [(np.ones((8, 8), np.bool_), 0), (image, 1)],
    }
    for data, index in cases[params.mode]:
        yield museforge.Media("image", data, index)


def noise(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    for index in range(count):  # no estimate declared: its size is known only once made
        yield museforge.Media("image", np.random.default_rng(index).random((128, 128, 3), np.float32), index)


class Misbehaving:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.misbehaves", "image", Mode, misbehaves, ("png",)))
        register(museforge.Generator("test.noise", "image", NoParams, noise, ("png",)))


@pytest.mark.parametrize(("mode", "said"), [
    ("fewer", "yielded 1 artifacts for a count of 2"),
    ("twice", "media 1 was yielded twice"),
    ("negative", "media -1: an index is 0 or more"),
    ("int64", "media 0: image data is uint8, uint16, bool or float in [0, 1], got int64"),
    ("nan", "media 0: image data has NaN values"),
    ("batch", "media 0: an image is HxW or HxWxC with C of 1 to 4, got shape (1, 8, 8, 3)"),
    ("gap", "yielded 2 artifacts for a count of 2, none for index 1"),
])
def test_what_a_generator_yields_is_checked_and_the_fault_named(mode: str, said: str) -> None:
    engine = inline_engine(("misbehaving", Misbehaving()))
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:
        with pytest.raises(grpc.RpcError) as caught:
            client.generate("test.misbehaves", {"mode": mode}, count=2)
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert "test.misbehaves" in (caught.value.details() or "") and said in (caught.value.details() or "")


def test_a_boolean_mask_is_an_image() -> None:
    engine = inline_engine(("misbehaving", Misbehaving()))
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:
        assert len(client.generate("test.misbehaves", {"mode": "mask"}, count=2).artifacts) == 2


def test_output_past_the_limits_is_refused_naming_what_to_change() -> None:
    # Three 128 x 128 float images are 590 KB of raw media; their noisy PNGs about 49 KB each.
    engine = inline_engine(("misbehaving", Misbehaving()), max_output_bytes=400_000,
                           max_message_bytes=90_000)
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:
        with pytest.raises(grpc.RpcError) as caught:
            list(client.stream_generate("test.noise", {}, count=3))  # a message each: the media limit
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # not "retry" (RESOURCE_EXHAUSTED)
        [(field, why)] = field_violations(caught.value)
        assert field == "parameters" and "max_output_bytes" in why and "test.noise" in why
        with pytest.raises(grpc.RpcError) as caught:
            client.generate("test.noise", {}, count=2)  # fits the media limit, not one reply
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        [(field, why)] = field_violations(caught.value)
        assert field == "count" and "max_message_bytes" in why and "StreamGenerate" in why
        assert len(list(client.stream_generate("test.noise", {}, count=2))) >= 2  # a message each: fine


heavy_release = threading.Event()
heavy_running = threading.Semaphore(0)


def heavy(ctx: museforge.GenerationContext, params: NoParams, seed: int, count: int) -> Iterator[Any]:
    heavy_running.release()
    while not heavy_release.wait(0.01):  # a long run that does look at its cancel flag
        ctx.check_cancelled()
    yield museforge.Media("image", np.zeros((4, 4), np.float32), 0)


class HeavyPlugin:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.heavy", "image", NoParams, heavy, ("png",)))
        register(museforge.Generator("test.slow", "image", NoParams, slow, ("png",)))


def test_a_burst_of_heavy_calls_to_one_generator_leaves_places_for_the_others() -> None:
    heavy_release.clear()
    engine = inline_engine(("heavy", HeavyPlugin()), worker_threads=4)  # one generator: at most 3
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client, \
            ThreadPoolExecutor(6) as callers:
        try:
            burst = [callers.submit(client.generate, "test.heavy", {}) for _ in range(6)]
            for _ in range(3):
                assert heavy_running.acquire(timeout=10)
            assert not heavy_running.acquire(timeout=0.5)  # the other three wait for one of its places
            # Another generator still finds a place while all six heavy calls are unfinished.
            assert len(client.generate("test.slow", {}).artifacts) == 1
            assert not any(call.done() for call in burst)
        finally:
            heavy_release.set()
        assert all(len(call.result(30).artifacts) == 1 for call in burst)


class Side(BaseModel):
    side: int = 8


class NamesBareFields:
    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator(
            "test.checked", "image", Side, slow, ("png",),
            check=lambda params, count: [("side", "must be even")] if params.side % 2 else []))
        register(museforge.Generator(
            "test.estimated", "image", Side, slow, ("png",),
            estimate=lambda params, count: museforge.OutputEstimate(params.side ** 2 * 4, ("side",))))


def test_a_plugin_s_bare_field_names_are_request_paths() -> None:
    engine = inline_engine(("bare", NamesBareFields()), max_output_bytes=4096)
    with ServerThread(engine.settings, engine) as server, Client(server.address, timeout=30) as client:
        for name, side, said in (("test.checked", 7, "must be even"),
                                 ("test.estimated", 64, "parameters.side asks for about 16,384 bytes")):
            with pytest.raises(grpc.RpcError) as caught:
                client.generate(name, {"side": side})
            assert field_violations(caught.value)[0][0] == "parameters.side"
            assert said in field_violations(caught.value)[0][1]


def test_a_call_that_never_got_a_thread_is_not_counted_as_still_running() -> None:
    import asyncio

    from museforge.server.call_pool import CallPool
    from museforge.server.thread_bridge import Deadline, call_in_thread

    ran = threading.Event()

    async def main() -> tuple[str, int]:
        pool = CallPool(1)  # one place, two threads
        blocker = threading.Event()
        for _ in range(2):  # every thread taken by other work (OIP calls share the threads)
            pool.executor.submit(blocker.wait)
        try:
            deadline = Deadline(0.2, "generator test.waits")
            async with pool.slot(deadline.what, 1.0) as run:
                await call_in_thread(lambda cancel: ran.set(), pool.executor, deadline, run)
        except Exception as exc:
            said = str(exc)
        finally:
            blocker.set()
        await asyncio.sleep(0.3)  # the threads are free: the abandoned work must not run now
        return said, pool.overdue_runs()

    said, overdue = asyncio.run(main())
    assert "never started" in said and overdue == 0 and not ran.is_set()
