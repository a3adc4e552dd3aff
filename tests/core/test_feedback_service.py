"""Feedback through the shared real server (auth off): record, list, export, forget, bad input."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from museforge.client import Client, feedback_event, field_violations
from museforge.server import feedback_service
from museforge.server.feedback_checks import MAX_EVENT_BYTES
from museforge.server.feedback_service import MAX_PAGE_BYTES
from museforge.v1 import feedback_pb2 as fb
from tests.core.feedback_helpers import fresh_user, made_artifacts, one_of_each
from tests.servers import ServerThread


@pytest.fixture(scope="module")
def refs(server: ServerThread) -> list[fb.ArtifactRef]:
    with Client(server.address, timeout=60) as client:
        return made_artifacts(client)


@pytest.fixture()
def feedback(server: ServerThread) -> Iterator[Client]:
    with Client(server.address, timeout=30) as client:
        yield client


def refused(call: Callable[[], object]) -> tuple[grpc.StatusCode, list[str], str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    return error.code(), [f for f, _ in field_violations(error)], error.details() or ""


def test_each_kind_is_recorded_and_listed_back(feedback: Client, refs: list[fb.ArtifactRef]) -> None:
    user = fresh_user()
    sent = one_of_each(refs, user)
    stored = [feedback.record_feedback(event) for event in sent]
    assert len({e.id for e in stored}) == 4 and all(e.create_time.seconds > 0 for e in stored)
    listed = feedback.list_feedback(user)
    assert listed == stored
    thumbs, stars, pick, keep = listed
    assert thumbs.kind == fb.FEEDBACK_KIND_THUMBS and thumbs.thumb == fb.THUMB_UP
    assert stars.stars == 4 and stars.artifact == refs[1]
    assert stars.artifact.generator == "image.digits" and stars.artifact.model_version
    assert stars.artifact.parameters["digit"] == 5 and stars.artifact.seed == 11
    assert [r.index for r in refs] == [0, 1, 2] and stars.artifact.index == 1
    # The chosen artifact was sent by its sha256 alone: it is stored as its candidate describes it.
    assert pick.artifact == refs[1] and list(pick.candidates) == refs[:3]
    assert keep.kind == fb.FEEDBACK_KIND_KEEP and keep.artifact == refs[2] and keep.user == user


def test_upper_case_sha256_is_stored_in_lower_case(feedback: Client, refs: list[fb.ArtifactRef]) -> None:
    user = fresh_user()
    shouted = fb.ArtifactRef()
    shouted.CopyFrom(refs[0])
    shouted.sha256 = refs[0].sha256.upper()
    stored = feedback.record_feedback(feedback_event("keep", shouted, user=user))
    assert stored.artifact.sha256 == refs[0].sha256


def test_list_comes_in_pages(feedback: Client, refs: list[fb.ArtifactRef]) -> None:
    user = fresh_user()
    for ref in refs + refs[:2]:
        feedback.record_feedback(feedback_event("keep", ref, user=user))
    first = feedback.feedback.ListFeedback(fb.ListFeedbackRequest(user=user, page_size=2))
    assert len(first.events) == 2 and first.next_page_token
    assert [e.artifact.sha256 for e in feedback.list_feedback(user, page_size=2)] == [
        r.sha256 for r in refs + refs[:2]]
    code, fields, _ = refused(lambda: feedback.feedback.ListFeedback(
        fb.ListFeedbackRequest(user=user, page_token="not-a-token")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["page_token"]


def test_a_page_token_tells_nothing_of_other_users_and_reaches_only_its_own(
        feedback: Client, refs: list[fb.ArtifactRef]) -> None:
    user, other = fresh_user(), fresh_user()
    for ref in refs[:3]:
        feedback.record_feedback(feedback_event("keep", ref, user=user))
    first = feedback.feedback.ListFeedback(fb.ListFeedbackRequest(user=user, page_size=2))
    # The token is the last listed event's id, not a count of the store's events.
    assert first.next_page_token == first.events[-1].id
    for ref in refs:  # others recording between pages do not change what the next page holds
        feedback.record_feedback(feedback_event("keep", ref, user=other))
    rest = feedback.feedback.ListFeedback(fb.ListFeedbackRequest(
        user=user, page_size=2, page_token=first.next_page_token))
    assert [e.artifact.sha256 for e in rest.events] == [refs[2].sha256] and not rest.next_page_token
    # Another user's event id is no token for this user's pages.
    theirs = next(iter(feedback.list_feedback(other))).id
    code, fields, _ = refused(lambda: feedback.feedback.ListFeedback(
        fb.ListFeedbackRequest(user=user, page_token=theirs)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["page_token"]
    # Forgotten between pages: the token names an event that is gone, and says so.
    feedback.forget_user(user)
    feedback.record_feedback(feedback_event("keep", refs[0], user=user))
    with pytest.raises(grpc.RpcError) as caught:
        feedback.feedback.ListFeedback(fb.ListFeedbackRequest(user=user, page_token=first.next_page_token))
    [(field, why)] = field_violations(caught.value)
    assert field == "page_token" and "no longer stored" in why and "first page" in why


def test_export_gives_json_lines_equal_to_the_list(feedback: Client, refs: list[fb.ArtifactRef]) -> None:
    user, other = fresh_user(), fresh_user()
    for event in one_of_each(refs, user):
        feedback.record_feedback(event)
    feedback.record_feedback(feedback_event("keep", refs[0], user=other))
    lines = [json_format.MessageToJson(e, indent=None) for e in feedback.export_feedback(user)]
    assert [json.loads(line) for line in lines] == [
        json_format.MessageToDict(e) for e in feedback.list_feedback(user)]
    everyone = list(feedback.export_feedback(all_users=True))
    assert {user, other} <= {e.user for e in everyone}
    code, fields, _ = refused(lambda: list(feedback.export_feedback(user, all_users=True)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["user"]


def test_forget_deletes_one_users_events_and_no_one_elses(feedback: Client,
                                                          refs: list[fb.ArtifactRef]) -> None:
    gone, kept = fresh_user("gone"), fresh_user("kept")
    for event in one_of_each(refs, gone) + one_of_each(refs, kept):
        feedback.record_feedback(event)
    assert feedback.forget_user(gone) == 4
    code, _, details = refused(lambda: feedback.list_feedback(gone))
    assert code == grpc.StatusCode.NOT_FOUND and gone in details
    assert refused(lambda: feedback.forget_user(gone))[0] == grpc.StatusCode.NOT_FOUND
    assert refused(lambda: list(feedback.export_feedback(gone)))[0] == grpc.StatusCode.NOT_FOUND
    assert len(feedback.list_feedback(kept)) == 4


def _valid(refs: list[fb.ArtifactRef], kind: str = "stars") -> fb.FeedbackEvent:
    if kind == "pick":
        return feedback_event("pick", fb.ArtifactRef(sha256=refs[0].sha256), user="ann", candidates=refs[:2])
    return feedback_event("stars", refs[0], user="ann", stars=3)


def _edit(kind: str, change: Callable[[fb.FeedbackEvent], object]) -> Callable[[list[fb.ArtifactRef]],
                                                                               fb.FeedbackEvent]:
    def make(refs: list[fb.ArtifactRef]) -> fb.FeedbackEvent:
        event = _valid(refs, kind)
        change(event)
        return event

    return make


def _thumbs_without_thumb(event: fb.FeedbackEvent) -> None:
    event.kind, event.stars = fb.FEEDBACK_KIND_THUMBS, 0


BAD_EVENTS = {
    "no stars": (_edit("stars", lambda e: setattr(e, "stars", 0)), "event.stars"),
    "six stars": (_edit("stars", lambda e: setattr(e, "stars", 6)), "event.stars"),
    "thumbs without a thumb": (_edit("stars", lambda e: _thumbs_without_thumb(e)), "event.thumb"),
    "stars on a keep": (_edit("stars", lambda e: setattr(e, "kind", fb.FEEDBACK_KIND_KEEP)), "event.stars"),
    "no kind": (_edit("stars", lambda e: setattr(e, "kind", fb.FEEDBACK_KIND_UNSPECIFIED)), "event.kind"),
    "unknown kind": (_edit("stars", lambda e: setattr(e, "kind", 99)), "event.kind"),
    "no artifact": (_edit("stars", lambda e: e.ClearField("artifact")), "event.artifact"),
    "short sha256": (_edit("stars", lambda e: setattr(e.artifact, "sha256", "abc123")),
                     "event.artifact.sha256"),
    "sha256 not hex": (_edit("stars", lambda e: setattr(e.artifact, "sha256", "g" * 64)),
                       "event.artifact.sha256"),
    "no generator": (_edit("stars", lambda e: setattr(e.artifact, "generator", "")),
                     "event.artifact.generator"),
    "unknown generator": (_edit("stars", lambda e: setattr(e.artifact, "generator", "image.nothing")),
                          "event.artifact.generator"),
    "generator and effect": (_edit("stars", lambda e: setattr(e.artifact, "effect", "effect.upscale")),
                             "event.artifact.effect"),
    "huge parameters": (_edit("stars", lambda e: e.artifact.parameters.update({"x": "y" * 17_000})),
                        "event.artifact.parameters"),
    "long model version": (_edit("stars", lambda e: setattr(e.artifact, "model_version", "9" * 65)),
                           "event.artifact.model_version"),
    "no user": (_edit("stars", lambda e: setattr(e, "user", "")), "event.user"),
    "long user": (_edit("stars", lambda e: setattr(e, "user", "u" * 129)), "event.user"),
    "user with a newline": (_edit("stars", lambda e: setattr(e, "user", "ann\nbob")), "event.user"),
    "user with a C1 newline": (_edit("stars", lambda e: setattr(e, "user", "ann\x85bob")), "event.user"),
    "user printed backwards": (_edit("stars", lambda e: setattr(e, "user", "ann\u202ebob")), "event.user"),
    "user that prints as another": (_edit("stars", lambda e: setattr(e, "user", "ann\u200b")), "event.user"),
    "user behind a BOM": (_edit("stars", lambda e: setattr(e, "user", "\ufeffann")), "event.user"),
    "pick of one": (_edit("pick", lambda e: e.candidates.pop()), "event.candidates"),
    "pick of seventeen": (_edit("pick", lambda e: e.candidates.extend([e.candidates[0]] * 15)),
                          "event.candidates"),
    "chosen not shown": (_edit("pick", lambda e: setattr(e.artifact, "sha256", "0" * 64)),
                         "event.artifact.sha256"),
    "same candidate twice": (_edit("pick", lambda e: e.candidates[1].CopyFrom(e.candidates[0])),
                             "event.candidates[1].sha256"),
    "bad candidate": (_edit("pick", lambda e: setattr(e.candidates[1], "sha256", "x")),
                      "event.candidates[1].sha256"),
    "candidates on stars": (_edit("stars", lambda e: e.candidates.add().CopyFrom(e.artifact)),
                            "event.candidates"),
}


@pytest.mark.parametrize("case", sorted(BAD_EVENTS))
def test_each_bad_event_is_refused_naming_its_field(feedback: Client, refs: list[fb.ArtifactRef],
                                                    case: str) -> None:
    make, field = BAD_EVENTS[case]
    code, fields, _ = refused(lambda: feedback.record_feedback(make(refs)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and field in fields, fields


def test_every_problem_is_named_at_once(feedback: Client, refs: list[fb.ArtifactRef]) -> None:
    event = _valid(refs)
    event.user, event.stars, event.artifact.sha256 = "", 9, "nope"
    code, fields, _ = refused(lambda: feedback.record_feedback(event))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert {"event.user", "event.stars", "event.artifact.sha256"} <= set(fields)


def test_without_auth_every_call_needs_a_user(feedback: Client) -> None:
    for call in (lambda: feedback.list_feedback(), lambda: list(feedback.export_feedback()),
                 lambda: feedback.forget_user()):
        code, fields, _ = refused(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["user"]


def test_a_locked_feedback_database_does_not_stall_generation(server: ServerThread, feedback: Client,
                                                              refs: list[fb.ArtifactRef]) -> None:
    assert server.running is not None and server.running.feedback is not None
    user = fresh_user()
    holder = sqlite3.connect(server.running.feedback.store.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing, or a stuck disk
    try:
        pending = feedback.feedback.RecordFeedback.future(
            fb.RecordFeedbackRequest(event=feedback_event("keep", refs[0], user=user)), timeout=30)
        time.sleep(0.3)  # let the write reach the server and wait on the lock
        made = feedback.generate("image.digits", {"digit": 1}, seed=3)
        assert len(made.artifacts) == 1 and not pending.done()  # generation went past the waiting write
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert pending.result().user == user  # and the write went through once the lock was gone
    assert len(feedback.list_feedback(user)) == 1


def test_the_service_is_healthy_and_reflected(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service="museforge.v1.Feedback"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    [answer] = list(stub.ServerReflectionInfo(iter([request])))
    assert "museforge.v1.Feedback" in {s.name for s in answer.list_services_response.service}


def test_concurrent_records_all_land(feedback: Client, refs: list[fb.ArtifactRef]) -> None:
    user = fresh_user()
    threads = [threading.Thread(target=feedback.record_feedback,
                                args=(feedback_event("stars", refs[i % 3], user=user, stars=1 + i % 5),))
               for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(e.stars for e in feedback.list_feedback(user)) == sorted(1 + i % 5 for i in range(12))


def _padded(ref: fb.ArtifactRef, sha256: str, pad_bytes: int) -> fb.ArtifactRef:
    """``ref`` under another sha256, its parameters padded to about ``pad_bytes``."""
    padded = fb.ArtifactRef()
    padded.CopyFrom(ref)
    padded.sha256 = sha256
    padded.parameters.update({"note": "p" * pad_bytes})
    return padded


def _big_pick(refs: list[fb.ArtifactRef], user: str, candidates: int, pad_bytes: int) -> fb.FeedbackEvent:
    shown = [_padded(refs[0], f"{i:064x}", pad_bytes) for i in range(1, candidates + 1)]
    return feedback_event("pick", fb.ArtifactRef(sha256=shown[0].sha256), user=user, candidates=shown)


def test_an_event_over_64_kib_is_refused_naming_the_event(feedback: Client,
                                                          refs: list[fb.ArtifactRef]) -> None:
    # Every part within its own limit (16 candidates, 5 KiB of parameters each): the whole is too big.
    user = fresh_user()
    with pytest.raises(grpc.RpcError) as caught:
        feedback.record_feedback(_big_pick(refs, user, 16, 5_000))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(caught.value)
    assert field == "event" and re.fullmatch(rf"is [\d,]+ bytes serialized; at most {MAX_EVENT_BYTES:,} .*",
                                             description), description  # its size and the limit
    assert refused(lambda: feedback.list_feedback(user))[0] == grpc.StatusCode.NOT_FOUND  # nothing stored


def test_a_page_of_big_events_is_cut_by_bytes_and_paging_returns_each_once(
        feedback: Client, refs: list[fb.ArtifactRef]) -> None:
    user = fresh_user()
    sent = [feedback.record_feedback(_big_pick(refs, user, 3, 15_000)) for _ in range(30)]
    assert all(MAX_EVENT_BYTES * 0.85 < e.ByteSize() <= MAX_EVENT_BYTES for e in sent)  # near the limit
    seen: list[str] = []
    token, pages = "", 0
    while True:
        page = feedback.feedback.ListFeedback(fb.ListFeedbackRequest(user=user, page_token=token))
        assert 1 <= len(page.events) < 30 and sum(e.ByteSize() for e in page.events) <= MAX_PAGE_BYTES
        seen += [e.id for e in page.events]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == [e.id for e in sent] and pages >= 2


def test_an_export_longer_than_one_batch_gives_every_event_once_in_order(
        server: ServerThread, feedback: Client, refs: list[fb.ArtifactRef],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert server.running is not None  # the server runs in this process: the patched batch applies
    monkeypatch.setattr(feedback_service, "EXPORT_BATCH", 3)
    user = fresh_user()
    sent = [feedback.record_feedback(feedback_event("stars", refs[i % 3], user=user, stars=1 + i % 5))
            for i in range(9)]  # three full batches, then an empty one
    assert [e.id for e in feedback.export_feedback(user)] == [e.id for e in sent]
    feedback.record_feedback(feedback_event("keep", refs[0], user=user))  # and one batch part full
    assert len({e.id for e in feedback.export_feedback(user)}) == 10


def test_a_retried_record_with_its_request_id_counts_once(feedback: Client,
                                                          refs: list[fb.ArtifactRef]) -> None:
    user = fresh_user()
    rating = feedback_event("stars", refs[0], user=user, stars=5)
    first = feedback.record_feedback(rating, request_id="rate-7f3a")
    again = feedback.record_feedback(rating, request_id="rate-7f3a")  # a retry after a lost answer
    assert again == first and feedback.list_feedback(user) == [first]
    other = feedback_event("stars", refs[0], user=user, stars=1)
    code, fields, said = refused(lambda: feedback.record_feedback(other, request_id="rate-7f3a"))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "another event" in said
    code, fields, _ = refused(lambda: feedback.record_feedback(other, request_id="no spaces"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["request_id"]
    assert len(feedback.list_feedback(user)) == 1
    # Forgetting the user forgets its request ids with its events: the same id records anew.
    assert feedback.forget_user(user) == 1
    assert feedback.record_feedback(other, request_id="rate-7f3a").stars == 1
