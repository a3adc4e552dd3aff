"""The served rows of ``python -m bench.recommend``: a world recorded over gRPC into a real
``museforge serve``, the first fit it takes, and Recommend's latency for random users."""

from __future__ import annotations

import asyncio
import sys
import time

import grpc
import numpy as np
from google.protobuf import json_format

from museforge.feedback.interactions import interactions
from museforge.v1 import feedback_pb2 as fb

from .raters import World, simulate
from .servers import ServerSettings, museforge_server, wait_serving

K = 10


def progress(message: str) -> None:
    print(f"[bench.recommend] {message}", file=sys.stderr, flush=True)


async def record_world(address: str, world: World, concurrency: int = 16) -> int:
    """Every event of ``world`` recorded over gRPC, ``concurrency`` at a time; how many."""
    async with grpc.aio.insecure_channel(address) as channel:
        record = channel.unary_unary("/museforge.v1.Feedback/RecordFeedback",
                                     request_serializer=fb.RecordFeedbackRequest.SerializeToString,
                                     response_deserializer=fb.FeedbackEvent.FromString)
        queue: asyncio.Queue[fb.RecordFeedbackRequest] = asyncio.Queue()
        for stored in world.events:
            event = json_format.ParseDict(stored.body, fb.FeedbackEvent())
            event.user = stored.user
            queue.put_nowait(fb.RecordFeedbackRequest(event=event))

        async def drain() -> None:
            while not queue.empty():
                await record(queue.get_nowait(), timeout=60)
        await asyncio.gather(*(drain() for _ in range(concurrency)))
    return len(world.events)


def latency(artifacts: int, users: int, calls: int, seed: int) -> dict[str, float]:
    world = simulate(artifacts=artifacts, users=users, seed=seed)
    progress(f"latency world: {len(world.events):,} events over "
             f"{len(interactions(world.events).items):,} artifacts")
    settings = ServerSettings(extra=('plugins = ["image", "mesh"]', "feedback_max_concurrent_per_key = 0"))
    with museforge_server(settings) as server:
        wait_serving(server)
        started = time.perf_counter()
        asyncio.run(record_world(server.address, world))
        recorded_s = time.perf_counter() - started
        with grpc.insecure_channel(server.address) as channel:
            recommend = channel.unary_unary("/museforge.v1.Feedback/Recommend",
                                            request_serializer=fb.RecommendRequest.SerializeToString,
                                            response_deserializer=fb.RecommendResponse.FromString)
            started = time.perf_counter()
            first = recommend(fb.RecommendRequest(user="rater-0000", kind=fb.RECOMMEND_KIND_ARTIFACTS, k=K,
                                                  refresh=True), timeout=300)
            fit_s = time.perf_counter() - started
            names = sorted(world.tastes)
            rng = np.random.default_rng(seed)
            times = []
            for _ in range(calls):
                user = names[int(rng.integers(len(names)))]
                started = time.perf_counter()
                recommend(fb.RecommendRequest(user=user, kind=fb.RECOMMEND_KIND_ARTIFACTS, k=K), timeout=60)
                times.append((time.perf_counter() - started) * 1e3)
    return {"events": float(first.events_used), "artifacts": float(len(interactions(world.events).items)),
            "record_s": recorded_s, "fit_s": fit_s, "p50_ms": float(np.percentile(times, 50)),
            "p99_ms": float(np.percentile(times, 99))}
