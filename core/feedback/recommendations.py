"""A fitted recommender per API key, kept fresh without holding up anyone's call.

- The first Recommend of a key fits its model (in the calling thread); later calls use
  the model fitted last and, once new feedback came in and ``refit_seconds`` passed,
  refit it on a thread of its own while answers keep coming from the old one.
- A timer does the same for every key with a model, so models follow the feedback even
  when nobody asks (the schedule).
- ``refresh`` fits at once when anything changed since the model (otherwise the model is
  already fresh). So does a key that forgot users or had all its events deleted (a revoked
  key's), in any worker process: the store counts every deletion, and a model fitted before
  one is never answered from again.
- What artifacts look like (looks) is rendered only by fits in the background, a few seconds'
  worth each, once no call nor generation is under way (or a few seconds passed): a fit that
  answers a call uses what is known and starts one at once if any are left; while some are
  left, the timer refits the key as if new feedback had come in; so it does when a generator's
  models were loaded or reloaded since the looks were rendered, and when a render that failed
  is due to be tried again.
- One fit per key at a time: callers who need a fit while one runs wait for it and
  check again, rather than fitting twice.
- At most ``max_owners`` models are kept (the least recently used goes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from .interactions import Interactions, interactions
from .looks import Described, Looks
from .recommender import DefaultsOf, PresetCheck, Recommender, any_preset, no_defaults
from .store import FeedbackStore, StoredEvent

log = logging.getLogger(__name__)

MAX_OWNERS = 16
QUIET = 0.25  # seconds without a call before background renders go on
PAGE = 5000  # events read per query while fitting: a big key is never read in one piece

Version = tuple[int, int, int]  # FeedbackStore.version: (kept, newest seq, deleted ever)


class Recommendations:
    def __init__(self, store: FeedbackStore, served: Callable[[], list[str]], refit_seconds: float = 60.0,
                 max_owners: int = MAX_OWNERS, usable: PresetCheck = any_preset,
                 defaults: DefaultsOf = no_defaults, looks: Looks | None = None,
                 working: Callable[[], bool] = lambda: False) -> None:
        self.store = store
        self.looks = looks
        self._last_call = 0.0  # time.monotonic() of the newest call for a model
        self._working = working  # whether the server is generating (renders wait for that too)
        if looks is not None:
            looks.busy = self.busy
        self.served = served
        self.usable = usable
        self.defaults = defaults
        self.refit_seconds = refit_seconds
        self.max_owners = max_owners
        self._models: OrderedDict[str, tuple[Recommender, Version]] = OrderedDict()
        self._owner_locks: dict[str, threading.Lock] = {}
        self._refitting: set[str] = set()
        self._retry_at: dict[str, float] = {}  # owner -> when a failed render of theirs is due again
        self._lock = threading.Lock()
        self._fitter = ThreadPoolExecutor(1, thread_name_prefix="museforge-recommend")
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._schedule, name="museforge-recommend-timer", daemon=True)
        self._timer.start()

    def close(self) -> None:
        self._stop.set()
        if self.looks is not None:
            self.looks.stop.set()  # a render under way ends at its next check
        self._fitter.shutdown(wait=True, cancel_futures=True)

    def idle(self, timeout: float = 600.0) -> None:
        """Waits until the background fits asked for so far are done (for tests and tools)."""
        self._fitter.submit(lambda: None).result(timeout)

    def forget(self, owner: str) -> None:
        """Drop the owner's model at once (after it forgot users in this process)."""
        with self._lock:
            self._models.pop(owner, None)

    def busy(self) -> bool:
        """Whether a call came in the last QUIET seconds or a generation is under way (background
        renders wait for quiet)."""
        return time.monotonic() - self._last_call < QUIET or self._working()

    def model(self, owner: str, refresh: bool = False) -> Recommender:
        """The owner's model; call from a worker thread (a first fit or a refresh runs here)."""
        self._last_call = time.monotonic()
        version = self.store.version(owner)
        held = self._held(owner)
        if held is None or held[1][2] != version[2] or (refresh and held[1] != version):
            return self._fit(owner)  # none yet, someone forgotten, or asked for and stale
        model, fitted_on = held
        since = time.time() - max(model.fitted, model.tried)
        if (fitted_on != version or model.undescribed) and since >= self.refit_seconds:
            self._refit_later(owner)
        return model

    def _held(self, owner: str) -> tuple[Recommender, Version] | None:
        with self._lock:
            held = self._models.get(owner)
            if held is not None:
                self._models.move_to_end(owner)
            return held

    def _fit(self, owner: str, render: bool = False) -> Recommender:
        """Fits the owner's model. Only background fits (``render``) render artifacts' looks, and
        before they take the owner's lock, so a call never waits for a render: a fit that answers
        a call uses the looks known, and leaves the rest to one in the background."""
        with self._lock:
            owner_lock = self._owner_locks.setdefault(owner, threading.Lock())
        if render:  # a model fitted on older events is published too: its version says so
            described, version, found, held = self._described(owner)
            if described is None:
                assert held is not None
                return held[0]
        with owner_lock:  # a fit that ran meanwhile may already be what is needed
            if not render:
                version, held = self.store.version(owner), self._held(owner)
                if held is not None and held[1] == version:
                    return held[0]
                found = interactions(self._events(owner))
                described = self._looks(found, held, version, render=False)
            assert described is not None
            model = Recommender(found, self.served(), through_seq=version[1], usable=self.usable,
                                defaults=self.defaults, looks=described.looks)
            model.undescribed, model.looks_served = described.left, described.served
            with self._lock:
                self._models[owner] = (model, version)
                self._models.move_to_end(owner)
                while len(self._models) > self.max_owners:
                    gone, _ = self._models.popitem(last=False)
                    self._owner_locks.pop(gone, None)
                    self._retry_at.pop(gone, None)
        if described.left and not render:  # the looks left are rendered in the background, from now
            self._refit_later(owner)
        return model

    def _described(self, owner: str) -> tuple[Described | None, Version, Interactions,
                                              tuple[Recommender, Version] | None]:
        """A background fit's looks, rendered outside the owner's lock; None when there is nothing
        new to fit: the same events, and no look described that the held model lacks (it then
        waits refit_seconds before the next try)."""
        version, held = self.store.version(owner), self._held(owner)
        found = interactions(self._events(owner))
        described = self._looks(found, held, version, render=True)
        with self._lock:
            if described.retry_at:
                self._retry_at[owner] = described.retry_at
            else:
                self._retry_at.pop(owner, None)
        if held is not None and held[1] == version and len(described.looks) <= held[0].looks.described \
                and _rendered(described.served) == _rendered(held[0].looks_served):
            held[0].undescribed, held[0].tried = described.left, time.time()
            held[0].looks_served = described.served  # differs in generators not rendered now only
            return None, version, found, held
        return described, version, found, held

    def _looks(self, found: Interactions, held: tuple[Recommender, Version] | None, version: Version,
               render: bool) -> Described:
        if self.looks is None:
            return Described({}, 0, {})
        carried = held is not None and held[1][2] == version[2]  # nobody forgotten since
        model = held[0] if held is not None and carried else None
        known = model.looks.known(model.items) if model else {}
        return self.looks.describe(list(found.items.values()), known, render,
                                   model.looks_served if model else {})

    def _events(self, owner: str) -> Iterator[StoredEvent]:
        after = 0
        while True:
            page = self.store.events(owner, None, after, PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1].seq

    def _refit_later(self, owner: str) -> None:
        with self._lock:
            if owner in self._refitting:
                return
            self._refitting.add(owner)
        try:
            self._fitter.submit(self._refit, owner)
        except RuntimeError:  # shutting down
            with self._lock:
                self._refitting.discard(owner)

    def _refit(self, owner: str) -> None:
        try:
            self._fit(owner, render=True)
        except Exception as exc:  # the old model keeps answering; the next call tries again
            log.warning("refitting the recommender of %s failed: %s", owner or "(no key)", exc)
        finally:
            with self._lock:
                self._refitting.discard(owner)

    def _schedule(self) -> None:
        while not self._stop.wait(self.refit_seconds):
            with self._lock:
                held = [(owner, model.undescribed, version, model.looks_served)
                        for owner, (model, version) in self._models.items()]
                due = {owner for owner, when in self._retry_at.items() if when <= time.monotonic()}
            for owner, undescribed, version, served in held:
                try:
                    if undescribed or owner in due or self.store.version(owner) != version or \
                            (self.looks is not None and self.looks.changed(served)):
                        self._refit_later(owner)
                except Exception as exc:  # a locked or closing store: try again next round
                    log.debug("recommender schedule skipped %s: %s", owner, exc)


def _rendered(served: dict[str, str]) -> dict[str, str]:
    """The generators rendered by some models (a generator with none, "", tells a fit nothing new)."""
    return {name: models for name, models in served.items() if models}
