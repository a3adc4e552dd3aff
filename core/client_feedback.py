"""The Python client's feedback calls (``Client`` inherits them): record, list, export and
forget a user's events, and recommend, each with the per-call ``timeout`` every call takes."""

from __future__ import annotations

from collections.abc import Iterator

from .client_errors import typed_errors
from .client_requests import CLIENT_TIMEOUT, Timeout, deadline, recommend_kind
from .v1 import feedback_pb2 as fb
from .v1 import feedback_pb2_grpc as feedback_grpc

__all__ = ["FeedbackCalls"]


@typed_errors
class FeedbackCalls:
    """Ratings, picks and keeps, per user (see docs/feedback.md), and what they recommend."""

    timeout: float | None  # the client's own: what CLIENT_TIMEOUT stands for
    feedback: feedback_grpc.FeedbackStub

    def record_feedback(self, event: fb.FeedbackEvent, request_id: str = "", *,
                        timeout: Timeout = CLIENT_TIMEOUT) -> fb.FeedbackEvent:
        """Record one event (see ``feedback_event``); returns it as stored, with its id and time.

        ``request_id``: an id of your own (``uuid.uuid4().hex``) that makes a retry safe: sent
        again with the same event, it is recorded once and the stored event comes back.
        """
        request = fb.RecordFeedbackRequest(event=event, request_id=request_id)
        return self.feedback.RecordFeedback(request, timeout=deadline(timeout, self.timeout))

    def list_feedback(self, user: str = "", page_size: int = 0, *,
                      timeout: Timeout = CLIENT_TIMEOUT) -> list[fb.FeedbackEvent]:
        """Every event of ``user`` (empty: the API key's own), oldest first, page after page
        (``timeout`` for each page)."""
        limit = deadline(timeout, self.timeout)
        found: list[fb.FeedbackEvent] = []
        token = ""
        while True:
            reply = self.feedback.ListFeedback(fb.ListFeedbackRequest(user=user, page_size=page_size,
                                                                      page_token=token), timeout=limit)
            found.extend(reply.events)
            token = reply.next_page_token
            if not token:
                return found

    def export_feedback(self, user: str = "", all_users: bool = False, *,
                        timeout: Timeout = CLIENT_TIMEOUT) -> Iterator[fb.FeedbackEvent]:
        """The events of ``user`` (or, with ``all_users``, of every user the key recorded) as they
        stream; ``timeout`` is for the whole stream."""
        yield from self.feedback.ExportFeedback(fb.ExportFeedbackRequest(user=user, all_users=all_users),
                                                timeout=deadline(timeout, self.timeout))

    def forget_user(self, user: str = "", *, timeout: Timeout = CLIENT_TIMEOUT) -> int:
        """Delete every event of ``user`` (empty: the API key's own); how many were deleted."""
        reply = self.feedback.ForgetUser(fb.ForgetUserRequest(user=user),
                                         timeout=deadline(timeout, self.timeout))
        return int(reply.deleted)

    def recommend(self, kind: str = "artifacts", user: str = "", k: int = 10, generator: str = "",
                  refresh: bool = False, *, timeout: Timeout = CLIENT_TIMEOUT) -> fb.RecommendResponse:
        """What ``user`` (empty: the API key's own) likely wants next, best first, each with a reason.

        ``kind``: "generators", "presets" or "artifacts" (or the singular; ValueError for any other);
        ``generator`` keeps to one generator; ``refresh`` refits the model on every event so far
        before answering (give a slow refit a ``timeout`` of its own).
        """
        request = fb.RecommendRequest(user=user, kind=recommend_kind(kind), k=k,  # type: ignore[arg-type]
                                      generator=generator, refresh=refresh)
        return self.feedback.Recommend(request, timeout=deadline(timeout, self.timeout))
