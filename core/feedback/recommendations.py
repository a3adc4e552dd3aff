"""A fitted recommender per API key, kept fresh without holding up anyone's call.

- The first Recommend of a key fits its model (in the calling store thread); later calls
  use the model fitted last and, once new feedback came in and ``refit_seconds`` passed,
  refit it on a thread of its own while answers keep coming from the old one.
- A timer does the same for every key with a model, so models follow the feedback even
  when nobody asks (the schedule).
- ``refresh`` fits at once. So does a key that forgot users: a forgotten user's feedback
  leaves the answers before the next one is given, not a minute later.
- At most ``max_owners`` models are kept (the least recently used goes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from .interactions import interactions
from .recommender import Recommender
from .store import FeedbackStore

log = logging.getLogger(__name__)

MAX_OWNERS = 64


class Recommendations:
    def __init__(self, store: FeedbackStore, served: Callable[[], list[str]], refit_seconds: float = 60.0,
                 max_owners: int = MAX_OWNERS) -> None:
        self.store = store
        self.served = served
        self.refit_seconds = refit_seconds
        self.max_owners = max_owners
        self._models: OrderedDict[str, tuple[Recommender, tuple[int, int]]] = OrderedDict()
        self._fitting: dict[str, Future[Recommender]] = {}
        self._lock = threading.Lock()
        self._fitter = ThreadPoolExecutor(1, thread_name_prefix="museforge-recommend")
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._schedule, name="museforge-recommend-timer", daemon=True)
        self._timer.start()

    def close(self) -> None:
        self._stop.set()
        self._fitter.shutdown(wait=True, cancel_futures=True)

    def forget(self, owner: str) -> None:
        """Drop the owner's model (after it forgot users): the next answer comes from a new fit."""
        with self._lock:
            self._models.pop(owner, None)

    def model(self, owner: str, refresh: bool = False) -> Recommender:
        """The owner's model; call from a worker thread (a first fit or a refresh runs here)."""
        version = self.store.version(owner)
        with self._lock:
            held = self._models.get(owner)
            if held is not None:
                self._models.move_to_end(owner)
        if held is None or refresh or version[0] < held[1][0]:  # none yet, asked, or events deleted
            return self._fit(owner)
        model, fitted_on = held
        if version != fitted_on and time.time() - model.fitted >= self.refit_seconds:
            self._refit_later(owner)
        return model

    def _fit(self, owner: str) -> Recommender:
        version = self.store.version(owner)
        model = Recommender(interactions(self.store.events(owner, None)), self.served())
        with self._lock:
            self._models[owner] = (model, version)
            self._models.move_to_end(owner)
            while len(self._models) > self.max_owners:
                self._models.popitem(last=False)
        return model

    def _refit_later(self, owner: str) -> None:
        with self._lock:
            if owner in self._fitting:
                return
            try:
                future = self._fitter.submit(self._fit, owner)
            except RuntimeError:  # shutting down
                return
            self._fitting[owner] = future
        future.add_done_callback(lambda done: self._fitted(owner, done))

    def _fitted(self, owner: str, done: Future[Recommender]) -> None:
        with self._lock:
            self._fitting.pop(owner, None)
        if not done.cancelled() and done.exception() is not None:
            log.warning("refitting the recommender of %s failed: %s", owner or "(no key)", done.exception())

    def _schedule(self) -> None:
        while not self._stop.wait(self.refit_seconds):
            with self._lock:
                owners = list(self._models)
            for owner in owners:
                try:
                    held = self._models.get(owner)
                    if held is not None and self.store.version(owner) != held[1]:
                        self._refit_later(owner)
                except Exception as exc:  # a locked or closing store: try again next round
                    log.debug("recommender schedule skipped %s: %s", owner, exc)
