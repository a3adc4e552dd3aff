"""Page requests of the jobs and feedback services: sizes, offset tokens, and job cursors."""

from __future__ import annotations

import base64
import json
import re

from ..engine.errors import FieldViolation, InvalidArgument
from .store import Job

TOKEN = re.compile(r"[0-9]{1,18}")  # an offset into a job's items


def page_size(size: int, default: int, most: int) -> int:
    """A request's page size (0: ``default``; at most ``most``), or InvalidArgument."""
    if size < 0:
        raise InvalidArgument("bad page", [FieldViolation("page_size", "must not be negative")])
    return min(size or default, most)


def page_args(size: int, page_token: str, default: int, most: int) -> tuple[int, int]:
    """(start, size) of a page request with an offset token, or InvalidArgument."""
    if page_token and not TOKEN.fullmatch(page_token):
        raise InvalidArgument("bad page", [FieldViolation("page_token", "not a token from this server")])
    return int(page_token or 0), page_size(size, default, most)


def job_token(job: Job) -> str:
    """The next page starts after this job: its place by creation, not a count of the jobs before
    it (one deleted would shift every later page by one, and a job would be on none)."""
    return base64.urlsafe_b64encode(json.dumps([job.created, job.id]).encode()).decode().rstrip("=")


def job_cursor(token: str) -> tuple[float, str] | None:
    """The (created, id) a ``job_token`` names; None for the first page; InvalidArgument else."""
    if not token:
        return None
    try:
        created, job_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(created, (int, float)) and isinstance(job_id, str) and len(token) <= 200:
            return float(created), job_id
    except (ValueError, TypeError):
        pass
    raise InvalidArgument("bad page", [FieldViolation("page_token", "not a token from this server")])
