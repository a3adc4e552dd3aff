"""Checks of feedback requests: every problem found at once, each a field violation naming its field.

A checked event comes back normalised (sha256 in lower case; a pick's chosen artifact
filled in from its candidate) so the store keeps one spelling of each artifact id.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..engine import user_ids
from ..engine.errors import FieldViolation, InvalidArgument
from ..v1 import feedback_pb2 as fb
from .structs import struct_to_dict

MAX_USER_CHARS = user_ids.MAX_USER_CHARS
MAX_NAME_CHARS = 128
MAX_VERSION_CHARS = 64
MAX_PARAMETER_BYTES = 16 * 1024
# A whole event as stored (a pick's chosen artifact counted with its provenance): keeps a
# page of events, and each message of an export, well inside a client's receive limit.
MAX_EVENT_BYTES = 64 * 1024
MIN_CANDIDATES, MAX_CANDIDATES = 2, 16
SHA256 = re.compile(r"[0-9a-fA-F]{64}")
DOTTED_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
# What a user id may hold (museforge.engine.user_ids; a generator's preference checks the same).
CONTROL = user_ids.CONTROL
KINDS = {fb.FEEDBACK_KIND_THUMBS, fb.FEEDBACK_KIND_STARS, fb.FEEDBACK_KIND_PICK, fb.FEEDBACK_KIND_KEEP,
         fb.FEEDBACK_KIND_SHOWN}
KIND_NAMES = ", ".join(fb.FeedbackKind.Name(k) for k in sorted(KINDS))
# Whether the server knows a generator ("generator") or an effect ("effect") by this name.
Known = Callable[[str, str], bool]


def user_problems(user: str, field: str, required: bool) -> list[FieldViolation]:
    """What is wrong with a user id as sent; the id is checked in the spelling it is kept in (NFC)."""
    if not user:
        return [FieldViolation(field, "required: the server has no auth, so nothing else says who the user "
                               "is")] if required else []
    problem = user_ids.user_problem(user_ids.normal_user(user))
    return [FieldViolation(field, problem)] if problem else []


def artifact_problems(ref: fb.ArtifactRef, field: str, known: Known) -> list[FieldViolation]:
    """What is wrong with one artifact reference (its provenance)."""
    found = []
    if not SHA256.fullmatch(ref.sha256):
        found.append(FieldViolation(f"{field}.sha256", "must be the artifact's sha256: 64 hexadecimal "
                                    f"digits, got {ref.sha256[:80]!r}"))
    if ref.generator and ref.effect:
        found.append(FieldViolation(f"{field}.effect", "name the generator or the effect that made it, "
                                    "not both"))
    elif not ref.generator and not ref.effect:
        found.append(FieldViolation(f"{field}.generator", "required: the generator (or effect) that made it"))
    for kind, name in (("generator", ref.generator), ("effect", ref.effect)):
        if not name:
            continue
        if len(name) > MAX_NAME_CHARS or not DOTTED_NAME.fullmatch(name):
            found.append(FieldViolation(f"{field}.{kind}", "must be a dotted name of at most "
                                        f"{MAX_NAME_CHARS} characters, e.g. image.digits"))
        elif not known(kind, name):
            found.append(FieldViolation(f"{field}.{kind}", f"this server has no {kind} {name!r}"))
    if len(ref.model_version) > MAX_VERSION_CHARS or CONTROL.search(ref.model_version):
        found.append(FieldViolation(f"{field}.model_version", f"at most {MAX_VERSION_CHARS} printable "
                                    "characters"))
    size = ref.parameters.ByteSize()
    if size > MAX_PARAMETER_BYTES:
        found.append(FieldViolation(f"{field}.parameters", f"holds {size:,} bytes; at most "
                                    f"{MAX_PARAMETER_BYTES:,}"))
    else:
        try:
            struct_to_dict(ref.parameters, f"{field}.parameters")  # NaN, infinities, nesting
        except InvalidArgument as exc:
            found.extend(exc.violations)
    return found


def rating_problems(event: fb.FeedbackEvent) -> list[FieldViolation]:
    """The kind's own fields set, and the others' left empty."""
    found = []
    thumbs, stars, pick = (event.kind == k for k in
                           (fb.FEEDBACK_KIND_THUMBS, fb.FEEDBACK_KIND_STARS, fb.FEEDBACK_KIND_PICK))
    if thumbs and event.thumb not in (fb.THUMB_UP, fb.THUMB_DOWN):
        found.append(FieldViolation("event.thumb", "a THUMBS event needs THUMB_UP or THUMB_DOWN"))
    elif not thumbs and event.thumb != fb.THUMB_UNSPECIFIED:
        found.append(FieldViolation("event.thumb", "only a THUMBS event has a thumb"))
    if stars and not 1 <= event.stars <= 5:
        found.append(FieldViolation("event.stars", f"must be 1 to 5 stars, got {event.stars}"))
    elif not stars and event.stars:
        found.append(FieldViolation("event.stars", "only a STARS event has stars"))
    if not pick and event.candidates:
        found.append(FieldViolation("event.candidates", "only a PICK event has candidates"))
    return found


def pick_problems(event: fb.FeedbackEvent, known: Known) -> list[FieldViolation]:
    """A pick's candidates (2 to 16, distinct, each a valid artifact) and its choice among them."""
    count = len(event.candidates)
    if not MIN_CANDIDATES <= count <= MAX_CANDIDATES:
        return [FieldViolation("event.candidates", f"a pick is one artifact among {MIN_CANDIDATES} to "
                               f"{MAX_CANDIDATES} shown together; got {count}")]
    found = []
    seen: set[str] = set()
    for i, candidate in enumerate(event.candidates):
        found += artifact_problems(candidate, f"event.candidates[{i}]", known)
        if candidate.sha256.lower() in seen:
            found.append(FieldViolation(f"event.candidates[{i}].sha256", "the same artifact twice"))
        seen.add(candidate.sha256.lower())
    chosen = event.artifact.sha256.lower()
    if not SHA256.fullmatch(chosen):
        found.append(FieldViolation("event.artifact.sha256", "the chosen artifact's sha256 (64 hexadecimal "
                                    f"digits), got {event.artifact.sha256[:80]!r}"))
    elif chosen not in seen:
        found.append(FieldViolation("event.artifact.sha256", "the chosen artifact must be one of "
                                    "event.candidates"))
    return found


def checked_event(event: fb.FeedbackEvent, known: Known, user_required: bool) -> fb.FeedbackEvent:
    """The event to store (normalised), or InvalidArgument listing every problem."""
    found = user_problems(event.user, "event.user", user_required)
    if event.kind not in KINDS:
        found.append(FieldViolation("event.kind", f"must be one of {KIND_NAMES}"))
    else:
        found += rating_problems(event)
        if event.kind == fb.FEEDBACK_KIND_PICK:
            found += pick_problems(event, known)
        elif not event.HasField("artifact"):
            found.append(FieldViolation("event.artifact", "required: the artifact the feedback is about"))
        else:
            found += artifact_problems(event.artifact, "event.artifact", known)
    if found:
        raise InvalidArgument("invalid feedback event", found)
    clean = normalised(event)
    size = clean.ByteSize()
    if size > MAX_EVENT_BYTES:
        raise InvalidArgument("invalid feedback event", [FieldViolation(
            "event", f"is {size:,} bytes serialized; at most {MAX_EVENT_BYTES:,} (fewer candidates or "
            "smaller parameters)")])
    return clean


def normalised(event: fb.FeedbackEvent) -> fb.FeedbackEvent:
    """Lower-case sha256s; a pick's chosen artifact as its candidate describes it; no server fields."""
    clean = fb.FeedbackEvent()
    clean.CopyFrom(event)
    clean.ClearField("id")
    clean.ClearField("create_time")
    for ref in clean.candidates:
        ref.sha256 = ref.sha256.lower()
    clean.artifact.sha256 = clean.artifact.sha256.lower()
    if clean.kind == fb.FEEDBACK_KIND_PICK:
        chosen = next(c for c in clean.candidates if c.sha256 == clean.artifact.sha256)
        clean.artifact.CopyFrom(chosen)
    return clean
