"""The ``museforge.v1.Feedback`` gRPC service: record, list, export and forget feedback events.

Whose data a call touches: the caller's API key (museforge.server.caller) and the ``user``
it names, which is kept under that key, so a key reaches only its own users; a user it
never recorded is NOT_FOUND. With auth off there is no key and ``user`` is required.

Store calls run on a small thread pool of the service's own: a slow or locked feedback
database holds only those threads, never the event loop or the threads that generate.
Stored rows become protobuf messages in those threads too: a page of large events takes
milliseconds to convert, which the loop (and every health check it answers) must not wait.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format

from ..engine.catalogue import Engine
from ..engine.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound, ResourceExhausted
from ..engine.user_ids import normal_user
from ..engine.validation import validate_parameters
from ..feedback.appearance import Appearance
from ..feedback.interactions import interactions
from ..feedback.looks import Looks, engine_renderer
from ..feedback.recommendations import Recommendations
from ..feedback.recommender import Recommender, Scored
from ..feedback.steering import FeedbackSteerer
from ..feedback.store import FeedbackStore, OverQuota, RequestReused, StoredEvent, StoreError
from ..jobs.pages import page_size
from ..jobs.service import STORE_RETRY_SECONDS, answering, timestamp
from ..near_names import did_you_mean
from ..v1 import feedback_pb2 as fb
from ..v1 import feedback_pb2_grpc as fb_grpc
from .caller import caller_key
from .feedback_checks import checked_event, user_problems

Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")
DEFAULT_PAGE, MAX_PAGE = 100, 1000
# A ListFeedback page stops growing past this many serialized bytes (it always holds at
# least one event), so a full page stays far below a client's default 4 MiB receive limit.
MAX_PAGE_BYTES = 1024 * 1024
PAGE_READ = 100  # rows read per query while filling a page: a byte-cut page reads few extra rows
EXPORT_BATCH = 500  # events read from the store per round trip while exporting
SINCE_FIT = 1000  # a user's events since the model's fit that an answer still takes into account
STORE_THREADS = 2
DEFAULT_K, MAX_K = 10, 100
EVENT_ID = re.compile(r"[0-9a-f]{20}")  # FeedbackStore.record's ids
REQUEST_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")  # a caller's RecordFeedbackRequest.request_id
SEQ_TOKEN = re.compile(r"[0-9]{1,19}")  # earlier versions' tokens (never 20 characters, as an id is)


def listed_event(token: str) -> str:
    """The event id a ListFeedback page token names ('' for the first page), or InvalidArgument."""
    if token and not EVENT_ID.fullmatch(token) and not SEQ_TOKEN.fullmatch(token):
        raise InvalidArgument("bad page", [FieldViolation("page_token", "not a token from this server")])
    return token


def event_message(stored: StoredEvent) -> fb.FeedbackEvent:
    event = json_format.ParseDict(stored.body, fb.FeedbackEvent(), ignore_unknown_fields=True)
    event.id, event.user, event.kind = stored.id, stored.user, stored.kind  # type: ignore[assignment]
    event.create_time.CopyFrom(timestamp(stored.created))
    return event


def event_body(event: fb.FeedbackEvent) -> dict[str, Any]:
    """What the store keeps beside its own columns: provenance, rating and candidates (proto3 JSON)."""
    body = fb.FeedbackEvent()
    body.CopyFrom(event)
    for server_field in ("id", "user", "kind", "create_time"):
        body.ClearField(server_field)
    return json_format.MessageToDict(body)


def page_of(store: FeedbackStore, owner: str, user: str, after: int, size: int,
            max_bytes: int = MAX_PAGE_BYTES) -> tuple[list[fb.FeedbackEvent], int | None]:
    """A page of at most ``size`` events and ``max_bytes`` (but at least one event), and the seq
    to go on after (None: no more).

    Runs in a store thread: it reads and converts the rows.
    """
    page: list[fb.FeedbackEvent] = []
    total = 0
    while True:
        want = min(size - len(page), PAGE_READ)
        rows = store.events(owner, user, after, want + 1)  # one more: is there a next page?
        for row in rows[:want]:
            message = event_message(row)
            total += message.ByteSize()
            if page and total > max_bytes:
                return page, after
            page.append(message)
            after = row.seq
        if len(rows) <= want:
            return page, None
        if len(page) == size:
            return page, after


def messages(store: FeedbackStore, owner: str, user: str | None, after: int,
             limit: int) -> list[tuple[int, fb.FeedbackEvent]]:
    """Up to ``limit`` events after ``after`` as (seq, message); runs in a store thread."""
    return [(row.seq, event_message(row)) for row in store.events(owner, user, after, limit)]


def recorded(store: FeedbackStore, owner: str, user: str, event: fb.FeedbackEvent,
             most: int = 0, request_id: str = "") -> fb.FeedbackEvent:
    """Store one checked event and return it as stored (or as a request with ``request_id``
    already stored it); runs in a store thread."""
    body = event_body(event)
    return event_message(store.record(owner, user, int(event.kind), event.artifact.sha256, body, most,
                                      request_id))


def over_quota(error: OverQuota) -> ResourceExhausted:
    whose = f"API key {error.owner}" if error.owner else "this server (auth off)"
    return ResourceExhausted(
        f"{whose} keeps {error.kept:,} feedback events, the most one key may keep "
        f"(feedback_max_events_per_key {error.most:,}); forget users to record more", STORE_RETRY_SECONDS)


def no_room(error: StoreError, max_bytes: int | None) -> ResourceExhausted:
    cap = f"it reached feedback_max_bytes ({max_bytes:,} bytes) or its disk is full" if max_bytes else \
        "its disk is full"
    return ResourceExhausted(f"the feedback store takes no new events: {cap}; forget users to free room",
                             STORE_RETRY_SECONDS)


def whose(user: str, field: str = "user") -> tuple[str, str]:
    """(owner, user) for a call: the caller's key and the user it names (in the one spelling kept,
    NFC), or InvalidArgument."""
    key = caller_key()
    problems = user_problems(user, field, required=key is None)
    if problems:
        raise InvalidArgument(f"invalid {field}", problems)
    return key or "", normal_user(user)


def missing_user(owner: str, user: str) -> NotFound:
    under = f"under API key {owner}" if owner else "on this server"
    return NotFound(f"no feedback from user {user!r} {under}; each API key sees only the users it "
                    "recorded feedback for")


def takes_preset(engine: Engine, generator: str, preset: Mapping[str, Any]) -> bool:
    """Whether ``generator`` is served and takes ``preset`` as a request's parameters."""
    found = engine.generators.get(generator)
    if found is None:
        return False
    params, problems = validate_parameters(generator, found.parameters, preset)
    return params is not None and not problems


def parameter_defaults(engine: Engine, maker: str) -> Mapping[str, Any]:
    """What a generator's (or effect's) request that sets no parameters gets, as provenance writes
    them; {} when it is not served or needs parameters. Reasons name what differs from these."""
    found = engine.generators.get(maker) or engine.effects.get(maker)
    try:
        return found.parameters().model_dump(mode="json") if found is not None else {}
    except Exception:  # a parameter without a default: nothing to compare with
        return {}


def appearance_of(engine: Engine) -> Appearance:
    """The steerer's cache of rendered artifacts, shared; one of its own without a steerer."""
    steerer = engine.steerer
    return steerer.appearance if isinstance(steerer, FeedbackSteerer) else Appearance()


def recommend_problems(request: fb.RecommendRequest, served: set[str]) -> list[FieldViolation]:
    problems = []
    if request.kind not in (fb.RECOMMEND_KIND_GENERATORS, fb.RECOMMEND_KIND_PRESETS,
                            fb.RECOMMEND_KIND_ARTIFACTS):
        problems.append(FieldViolation("kind", "say what to recommend: RECOMMEND_KIND_GENERATORS, "
                                               "RECOMMEND_KIND_PRESETS or RECOMMEND_KIND_ARTIFACTS"))
    if not 0 <= request.k <= MAX_K:
        problems.append(FieldViolation("k", f"must be 1 to {MAX_K} (0: {DEFAULT_K}), got {request.k}"))
    if request.generator and request.generator not in served:
        shown = request.generator[:128]
        near = did_you_mean(shown, served)
        problems.append(FieldViolation("generator", f"unknown generator {shown!r}{near}; "
                                                    f"served: {sorted(served)}"))
    return problems


def recommendation(found: Scored) -> fb.Recommendation:
    answer = fb.Recommendation(score=found.score, reason=found.reason)
    if found.parameters is not None:
        answer.preset.generator = found.generator
        answer.preset.parameters.update(found.parameters)
    elif found.item is not None:
        json_format.ParseDict(found.item.ref(), answer.artifact, ignore_unknown_fields=True)
    else:
        answer.generator = found.generator
    return answer


def recommended(model: Recommender, request: fb.RecommendRequest, user: str,
                since: Sequence[StoredEvent] = ()) -> fb.RecommendResponse:
    """The answer from a fitted model; runs in a store thread (the reasons take a little work).
    ``since``: the user's events recorded after the fit, so what they just met is not offered."""
    k = request.k or DEFAULT_K
    rank = {fb.RECOMMEND_KIND_GENERATORS: model.generators, fb.RECOMMEND_KIND_PRESETS: model.presets,
            fb.RECOMMEND_KIND_ARTIFACTS: model.artifacts}[request.kind]
    fresh = interactions(since).weights.get(user, {}) if since else {}
    found = [recommendation(s) for s in rank(user, k, request.generator, fresh)]
    answer = fb.RecommendResponse(recommendations=found, events_used=model.events)
    answer.fitted_time.CopyFrom(timestamp(model.fitted))
    return answer


class FeedbackService(fb_grpc.FeedbackServicer):
    def __init__(self, store: FeedbackStore, engine: Engine, max_events_per_key: int = 0,
                 max_bytes: int | None = None, refit_seconds: float = 60.0,
                 looks_seconds: float = 0.0) -> None:
        self.store = store
        self.engine = engine
        self.max_events_per_key = max_events_per_key
        self.max_bytes = max_bytes
        self.threads = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="museforge-feedback")
        # Fits and answers of Recommend run apart from the store threads: a first fit over a big
        # key takes seconds, and recording feedback must not wait for it.
        self.recommend_threads = ThreadPoolExecutor(STORE_THREADS,
                                                    thread_name_prefix="museforge-recommend-call")
        stopping = threading.Event()  # set on close: a render of looks under way ends
        self.recommendations = Recommendations(store, lambda: sorted(engine.generators), refit_seconds,
                                               usable=partial(takes_preset, engine),
                                               defaults=partial(parameter_defaults, engine),
                                               looks=Looks(appearance_of(engine),
                                                           engine_renderer(engine, stopping), looks_seconds,
                                                           stopping),
                                               working=engine.work.busy)

    def close(self) -> None:
        self.recommendations.close()
        self.recommend_threads.shutdown(wait=True, cancel_futures=True)
        self.threads.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    def known(self, kind: str, name: str) -> bool:
        return name in (self.engine.generators if kind == "generator" else self.engine.effects)

    async def _run(self, work: Callable[..., T], *args: Any, threads: ThreadPoolExecutor | None = None) -> T:
        return await asyncio.get_running_loop().run_in_executor(threads or self.threads, partial(work, *args))

    async def _require_user(self, owner: str, user: str) -> None:
        """A user the caller names must be one it recorded (the key itself always exists)."""
        if user and not await self._run(self.store.has_user, owner, user):
            raise missing_user(owner, user)

    async def _foreign_token(self, owner: str, event_id: str) -> str:
        """Why a page token names none of this listing's events. Another key's events are never
        looked up: whether they are still stored is that key's business."""
        if await self._run(self.store.lister_of, owner, event_id) is not None:
            return "is from another user's listing; a token goes on only the listing it came from"
        return ("names an event of another listing (another user's or API key's) or one no longer stored "
                "(its user was forgotten); list again from the first page")

    async def RecordFeedback(self, request: fb.RecordFeedbackRequest, context: Context) -> fb.FeedbackEvent:
        async with answering(context):
            event = checked_event(request.event, self.known, user_required=caller_key() is None)
            if request.request_id and not REQUEST_ID.fullmatch(request.request_id):
                raise InvalidArgument("bad request_id", [FieldViolation(
                    "request_id", "1 to 64 letters, digits, '-', '_', '.' or ':' (a UUID will do)")])
            owner, user = whose(event.user, "event.user")
            try:
                return await self._run(recorded, self.store, owner, user, event, self.max_events_per_key,
                                       request.request_id)
            except RequestReused as exc:
                raise AlreadyExists(f"{exc}: a retry must send the same event; a new event needs a new "
                                    "request_id") from None
            except OverQuota as exc:
                raise over_quota(exc) from None
            except StoreError as exc:
                if exc.full:
                    raise no_room(exc, self.max_bytes) from None
                raise

    async def ListFeedback(self, request: fb.ListFeedbackRequest,
                           context: Context) -> fb.ListFeedbackResponse:
        async with answering(context):
            owner, user = whose(request.user)
            size = page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)
            last_listed = listed_event(request.page_token)
            await self._require_user(owner, user)
            after = 0
            if SEQ_TOKEN.fullmatch(last_listed):  # a token of an earlier version: a sequence number
                after = int(last_listed)  # it reads only this user's events past it: it tells nothing
            elif last_listed:
                found = await self._run(self.store.seq_of, owner, user, last_listed)
                if found is None:
                    raise InvalidArgument("bad page", [FieldViolation(
                        "page_token", await self._foreign_token(owner, last_listed))])
                after = found
            page, more = await self._run(page_of, self.store, owner, user, after, size)
            # The token is the last listed event's own id, which the caller already holds: the
            # store's sequence number would tell a key how much every other key records.
            token = page[-1].id if more is not None else ""
            return fb.ListFeedbackResponse(events=page, next_page_token=token)

    async def ExportFeedback(self, request: fb.ExportFeedbackRequest,
                             context: Context) -> AsyncIterator[fb.FeedbackEvent]:
        async with answering(context):
            if request.all_users:
                if request.user:
                    problem = FieldViolation("user", "leave it empty with all_users: every user is exported")
                    raise InvalidArgument("invalid export", [problem])
                owner, user = caller_key() or "", None
            else:
                owner, user = whose(request.user)
                await self._require_user(owner, user)
            after = 0
            while True:
                batch = await self._run(messages, self.store, owner, user, after, EXPORT_BATCH)
                for _, message in batch:
                    yield message
                if len(batch) < EXPORT_BATCH:
                    return
                after = batch[-1][0]

    async def ForgetUser(self, request: fb.ForgetUserRequest, context: Context) -> fb.ForgetUserResponse:
        async with answering(context):
            owner, user = whose(request.user)
            deleted = await self._run(self.store.forget, owner, user)
            if user and not deleted:
                raise missing_user(owner, user)
            self.recommendations.forget(owner)  # the next answer comes from a model without them
            return fb.ForgetUserResponse(deleted=deleted)

    async def Recommend(self, request: fb.RecommendRequest, context: Context) -> fb.RecommendResponse:
        async with answering(context):
            owner, user = whose(request.user)
            problems = recommend_problems(request, set(self.engine.generators))
            if problems:
                raise InvalidArgument("invalid recommendation request", problems)
            model = await self._run(self.recommendations.model, owner, request.refresh,
                                    threads=self.recommend_threads)
            since = await self._run(self.store.events, owner, user, model.through_seq, SINCE_FIT)
            return await self._run(recommended, model, request, user, since, threads=self.recommend_threads)
