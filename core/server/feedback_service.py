"""The ``museforge.v1.Feedback`` gRPC service: record, list, export and forget feedback events.

Whose data a call touches: the caller's API key (museforge.server.caller) and the ``user``
it names, which is kept under that key, so a key reaches only its own users; a user it
never recorded is NOT_FOUND. With auth off there is no key and ``user`` is required.

Store calls run on a small thread pool of the service's own: a slow or locked feedback
database holds only those threads, never the event loop or the threads that generate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format

from ..engine.catalogue import Engine
from ..engine.errors import FieldViolation, InvalidArgument, NotFound
from ..feedback.store import FeedbackStore, StoredEvent
from ..jobs.service import answering, page_args, timestamp
from ..v1 import feedback_pb2 as fb
from ..v1 import feedback_pb2_grpc as fb_grpc
from .caller import caller_key
from .feedback_checks import checked_event, user_problems

Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")
DEFAULT_PAGE, MAX_PAGE = 100, 1000
EXPORT_BATCH = 500  # events read from the store per round trip while exporting
STORE_THREADS = 2


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


def whose(user: str, field: str = "user") -> tuple[str, str]:
    """(owner, user) for a call: the caller's key and the user it names, or InvalidArgument."""
    key = caller_key()
    problems = user_problems(user, field, required=key is None)
    if problems:
        raise InvalidArgument(f"invalid {field}", problems)
    return key or "", user


def missing_user(owner: str, user: str) -> NotFound:
    under = f"under API key {owner}" if owner else "on this server"
    return NotFound(f"no feedback from user {user!r} {under}; each API key sees only the users it "
                    "recorded feedback for")


class FeedbackService(fb_grpc.FeedbackServicer):
    def __init__(self, store: FeedbackStore, engine: Engine) -> None:
        self.store = store
        self.engine = engine
        self.threads = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="museforge-feedback")

    def close(self) -> None:
        self.threads.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    def known(self, kind: str, name: str) -> bool:
        return name in (self.engine.generators if kind == "generator" else self.engine.effects)

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.threads, partial(work, *args))

    async def _require_user(self, owner: str, user: str) -> None:
        """A user the caller names must be one it recorded (the key itself always exists)."""
        if user and not await self._run(self.store.has_user, owner, user):
            raise missing_user(owner, user)

    async def RecordFeedback(self, request: fb.RecordFeedbackRequest, context: Context) -> fb.FeedbackEvent:
        async with answering(context):
            event = checked_event(request.event, self.known, user_required=caller_key() is None)
            owner, user = whose(event.user, "event.user")
            stored = await self._run(self.store.record, owner, user, int(event.kind), event.artifact.sha256,
                                     event_body(event))
            return event_message(stored)

    async def ListFeedback(self, request: fb.ListFeedbackRequest,
                           context: Context) -> fb.ListFeedbackResponse:
        async with answering(context):
            owner, user = whose(request.user)
            after, size = page_args(request.page_size, request.page_token, DEFAULT_PAGE, MAX_PAGE)
            await self._require_user(owner, user)
            rows = await self._run(self.store.events, owner, user, after, size + 1)
            page = rows[:size]
            token = str(page[-1].seq) if len(rows) > size else ""
            return fb.ListFeedbackResponse(events=[event_message(r) for r in page], next_page_token=token)

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
                rows = await self._run(self.store.events, owner, user, after, EXPORT_BATCH)
                for row in rows:
                    yield event_message(row)
                if len(rows) < EXPORT_BATCH:
                    return
                after = rows[-1].seq

    async def ForgetUser(self, request: fb.ForgetUserRequest, context: Context) -> fb.ForgetUserResponse:
        async with answering(context):
            owner, user = whose(request.user)
            deleted = await self._run(self.store.forget, owner, user)
            if user and not deleted:
                raise missing_user(owner, user)
            return fb.ForgetUserResponse(deleted=deleted)
