"""Artifacts to give feedback on, made by a real server, and events about them."""

from __future__ import annotations

import uuid

from museforge.client import Client, artifact_ref, feedback_event
from museforge.v1 import feedback_pb2 as fb


def made_artifacts(client: Client, count: int = 3, seed: int = 11) -> list[fb.ArtifactRef]:
    """References to ``count`` digits the server generates (sha256 and provenance from the reply)."""
    reply = client.generate("image.digits", {"digit": 5}, seed=seed, count=count)
    return [artifact_ref(a) for a in reply.artifacts]


def fresh_user(prefix: str = "user") -> str:
    """A user id no other test uses (servers of one session share their feedback database)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def one_of_each(refs: list[fb.ArtifactRef], user: str) -> list[fb.FeedbackEvent]:
    """A thumbs up, four stars, a pick of the second among three, and a keep."""
    return [
        feedback_event("thumbs", refs[0], user=user, thumb="up"),
        feedback_event("stars", refs[1], user=user, stars=4),
        feedback_event("pick", fb.ArtifactRef(sha256=refs[1].sha256), user=user, candidates=refs[:3]),
        feedback_event("keep", refs[2], user=user),
    ]
