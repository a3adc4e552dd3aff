"""Scale-out job executor on Ray: Ray Data ``map_batches`` over an actor pool.

Each actor builds its own Engine once (plugins, ONNX Runtime sessions on the GPU when
the cluster gives it one) and runs frames through the same ``run_chain`` and atomic
write as the local executor, reading and writing on storage the cluster shares. The
server stays the only writer of the job store: results stream back to it and it
commits each item, so progress, watching, cancel and resume work exactly as with the
local executor. Ray is an optional extra (``pip install 'museforge[ray]'``).

Cancel and shutdown go through a small named actor holding a flag that workers check
before each frame: frames already running finish and are reported, the rest come back
"not run", so every item's outcome is known when the dataset ends.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import Settings, data_directory, keys_path
from .chain import FrameLimits
from .item_work import ItemWork
from .runner import LocalExecutor, _Running
from .store import Item, ItemState, Job

log = logging.getLogger("museforge.jobs.ray")
EXECUTOR_NAME = "ray"
NOT_RUN = 0  # a worker's answer for a frame it skipped because the job was stopping
FLAG_POLL_SECONDS = 0.5
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024  # frames travel as paths, not bytes


class FrameWorker:
    """The Ray Data callable class: one per actor, holding an Engine for the actor's life."""

    def __init__(
        self,
        settings_json: str,
        spec_json: str,
        flag_name: str,
        timeout: float,
        max_input_bytes: int,
    ) -> None:
        import ray

        from ..engine.catalogue import Engine
        from .paths import Sandbox

        settings = Settings.model_validate_json(settings_json)
        self.engine = Engine(settings).start()
        self.sandbox = Sandbox.of(
            settings.job_input_roots,
            settings.job_output_roots,
            protected=(data_directory(settings), keys_path(settings).parent),
        )
        self.work = ItemWork.of(json.loads(spec_json))
        self.limits = FrameLimits(timeout, max_input_bytes)
        self.flag = ray.get_actor(flag_name)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import ray

        states: list[int] = []
        errors: list[str] = []
        rows = zip(batch["index"], batch["frame"], batch["input"], batch["output"], strict=True)
        for index, frame, source_name, target_name in rows:
            if ray.get(self.flag.is_set.remote()):
                states.append(NOT_RUN)
                errors.append("")
                continue
            item = Item("", int(index), int(frame), str(source_name), str(target_name), ItemState.PENDING,
                        "", 0, 0)
            state, error = self._item(item)
            states.append(state)
            errors.append(error)
        return {
            "index": batch["index"],
            "state": np.array(states, np.int64),
            "error": np.array(errors, dtype=object),
        }

    def _item(self, item: Item) -> tuple[int, str]:
        """(item state, error) for one item; a stop flag set meanwhile halts it at its next tile."""
        import ray

        halt = threading.Event()
        done = threading.Event()

        def watch_flag() -> None:
            while not done.wait(FLAG_POLL_SECONDS):
                if ray.get(self.flag.is_set.remote()):
                    halt.set()
                    return

        threading.Thread(target=watch_flag, daemon=True).start()
        try:
            state, error = self.work.run(self.engine, self.sandbox, item, halt, self.limits)
        finally:
            done.set()
        return (NOT_RUN, "") if state is None else (int(state), error)


def _flag_class() -> Any:
    import ray

    @ray.remote(num_cpus=0)
    class StopFlag:
        def __init__(self) -> None:
            self.stopped = False

        def set(self) -> None:
            self.stopped = True

        def is_set(self) -> bool:
            return self.stopped

    return StopFlag


class RayExecutor(LocalExecutor):
    """The local executor's queue, states and resume, with frames run by a Ray actor pool."""

    name = EXECUTOR_NAME

    def __init__(self, *args: Any, settings: Settings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings
        self._started_ray = False
        self._flag: Any = None

    def start(self) -> RayExecutor:
        import ray

        if not ray.is_initialized():
            address = self.settings.ray_address or None
            extra: dict[str, Any] = (
                {}
                if address
                else {
                    "num_cpus": self.settings.ray_num_cpus or None,
                    "object_store_memory": LOCAL_OBJECT_STORE_BYTES,
                }
            )
            ray.init(
                address=address,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
                **extra,
            )
            self._started_ray = True
        log.info("job executor on Ray: %s", ray.cluster_resources())
        super().start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        super().close(timeout)
        if self._started_ray:
            import ray

            ray.shutdown()

    def _stop_running(self, running: _Running) -> None:
        super()._stop_running(running)
        if self._flag is not None:
            self._flag.set.remote()

    def _gpus_per_worker(self) -> float:
        import ray

        if self.settings.ray_gpus_per_worker >= 0:
            return self.settings.ray_gpus_per_worker
        gpus = ray.cluster_resources().get("GPU", 0.0)
        return 1.0 if gpus >= self.workers else 0.0

    def _run_items(self, job: Job, running: _Running) -> None:
        import ray

        work = ItemWork.of(job.spec)
        pending: Sequence[Item] = work.side_by_side(self.store.items(job.id, [ItemState.PENDING]), job.total)
        if not pending:
            return
        flag_name = f"museforge-stop-{job.id}"
        self._flag = _flag_class().options(name=flag_name).remote()
        if running.cancel.is_set():  # stopped before the flag existed
            self._flag.set.remote()
        try:
            rows = [
                {"index": i.index, "frame": i.frame, "input": i.input, "output": i.output} for i in pending
            ]
            results = ray.data.from_items(rows).map_batches(
                FrameWorker,
                batch_size=1,
                concurrency=self.workers,
                num_cpus=self.settings.ray_cpus_per_worker,
                num_gpus=self._gpus_per_worker(),
                fn_constructor_kwargs={
                    "settings_json": self.settings.model_dump_json(),
                    "spec_json": json.dumps(job.spec),
                    "flag_name": flag_name,
                    "timeout": self.limits.timeout_seconds,
                    "max_input_bytes": self.limits.max_input_bytes,
                },
            )
            for batch in results.iter_batches(batch_size=1, batch_format="numpy"):
                for index, state, error in zip(batch["index"], batch["state"], batch["error"], strict=True):
                    if int(state) != NOT_RUN:
                        self._record(running, int(index), ItemState(int(state)), str(error))
                if running.paused is not None:
                    break  # the store cannot record frames: the flag stops the workers
        finally:
            ray.kill(self._flag)
            self._flag = None
