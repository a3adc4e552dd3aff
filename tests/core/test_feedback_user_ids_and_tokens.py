"""Feedback user ids that print alike are one user or refused (feedback and a generator's
preference alike), page tokens from another listing say so, and the CLI's missing ARTIFACT is a
usage error."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from museforge.client import Client, feedback_event, field_violations
from museforge.v1 import feedback_pb2 as fb
from tests.core.feedback_helpers import made_artifacts
from tests.core.test_feedback_keys import fresh_keys, guarded_settings
from tests.servers import ServerThread

Keys = tuple[Path, dict[str, str]]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return fresh_keys(tmp_path_factory.mktemp("ids-keys"), "studio", "rival")


@pytest.fixture(scope="module")
def server(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(guarded_settings(keys[0], tmp_path_factory.mktemp("ids-data"))) as running:
        yield running


def refused(call: object) -> list[tuple[str, str]]:
    with pytest.raises(grpc.RpcError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return field_violations(caught.value)


def test_a_user_id_in_two_normal_forms_is_one_user(server: ServerThread, keys: Keys) -> None:
    composed = unicodedata.normalize("NFC", "Zoë-山田")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    with Client(server.address, timeout=60, api_key=keys[1]["studio"]) as client:
        refs = made_artifacts(client, count=2)
        client.record_feedback(feedback_event("keep", refs[0], user=composed))
        client.record_feedback(feedback_event("keep", refs[1], user=decomposed))
        listed = client.list_feedback(decomposed)
        assert len(listed) == 2 and {e.user for e in listed} == {composed}
        assert client.forget_user(composed) == 2


@pytest.mark.parametrize("user", ["ann\u3164", "ann\u115f", "ann\uffa0", "\u0301", "\u0301ann", "ann\u034f",
                                  "ann\u2063", "ann\u200b", "ann\n"])
def test_a_user_id_that_prints_as_another_is_refused(server: ServerThread, keys: Keys, user: str) -> None:
    with Client(server.address, timeout=60, api_key=keys[1]["studio"]) as client:
        ref = made_artifacts(client, count=1)[0]
        assert [f for f, _ in refused(lambda: client.record_feedback(
            feedback_event("keep", ref, user=user)))] == ["event.user"]
        assert [f for f, _ in refused(lambda: client.list_feedback(user))] == ["user"]
        # preference names a feedback user too: what can never name one is refused there as well
        [(field, why)] = refused(lambda: client.generate("image.tiles", {"preference": user}))
        assert field == "parameters.preference" and "user id" in why


def test_a_preference_in_another_normal_form_is_the_same_user(server: ServerThread, keys: Keys) -> None:
    with Client(server.address, timeout=60, api_key=keys[1]["studio"]) as client:
        name = unicodedata.normalize("NFD", "Zoë")
        reply = client.generate("image.tiles", {"preference": name}, seed=3, count=2)
        assert len(reply.artifacts) == 2


def test_a_page_token_from_another_listing_says_so(server: ServerThread, keys: Keys) -> None:
    made = keys[1]
    with Client(server.address, timeout=60, api_key=made["studio"]) as studio, \
            Client(server.address, timeout=60, api_key=made["rival"]) as rival:
        for client in (studio, rival):
            for ref in made_artifacts(client, count=3):
                for user in ("ann", "bob"):
                    client.record_feedback(feedback_event("keep", ref, user=user))
        token = studio.feedback.ListFeedback(fb.ListFeedbackRequest(user="ann", page_size=1)).next_page_token
        assert token
        [(field, why)] = refused(lambda: studio.feedback.ListFeedback(
            fb.ListFeedbackRequest(user="bob", page_token=token)))
        assert field == "page_token" and "another user's listing" in why and "forgotten" not in why
        # Another key's token: whether its event is still stored is that key's business.
        [(field, why)] = refused(lambda: rival.feedback.ListFeedback(
            fb.ListFeedbackRequest(user="ann", page_token=token)))
        assert field == "page_token" and "another listing" in why


def test_a_missing_artifact_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from museforge.cli.main import main

    missing = str(tmp_path / "nonexist.png")
    for argv in (["rate", missing, "--stars", "3"], ["keep", missing], ["pick", missing, "a" * 64]):
        # 48150: nothing listens there, and nothing is sent: the file is missed first
        assert main(["feedback", *argv, "--user", "gus", "--server", "127.0.0.1:48150"]) == 2
        assert "nonexist.png: no such file" in capsys.readouterr().err
    assert main(["feedback", "keep", str(tmp_path), "--user", "gus", "--server", "127.0.0.1:48150"]) == 2
    assert "cannot be read" in capsys.readouterr().err
