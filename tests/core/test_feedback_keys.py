"""Feedback with auth on: each key's users are its own, and events survive a restart."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from museforge.client import Client, feedback_event
from museforge.config import ConfigError, Settings, load_settings
from museforge.server.auth import KeyFile
from museforge.v1 import feedback_pb2 as fb
from tests.core.feedback_helpers import made_artifacts, one_of_each
from tests.servers import ServerThread, code_of


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("feedback-keys") / "api_keys.json"
    store = KeyFile(path)
    made = {name: store.create(name, scopes)[0]
            for name, scopes in (("studio", ["generate"]), ("rival", ["generate"]), ("farm", ["jobs"]))}
    return path, made


def guarded_settings(keys: Path, data: Path) -> Settings:
    return Settings(address="127.0.0.1:0", auth=True, api_keys_file=str(keys), plugins=["image"],
                    data_dir=str(data))


def test_a_key_reaches_only_its_own_users_and_events_survive_a_restart(
    keys: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, made = keys
    settings = guarded_settings(path, tmp_path)
    with ServerThread(settings) as server, \
            Client(server.address, timeout=30, api_key=made["studio"]) as studio, \
            Client(server.address, timeout=30, api_key=made["rival"]) as rival:
        refs = made_artifacts(studio)
        for event in one_of_each(refs, "bob"):
            studio.record_feedback(event)
        mine = studio.record_feedback(feedback_event("keep", refs[0]))  # the key itself is the user
        assert mine.user == ""
        rival.record_feedback(feedback_event("stars", refs[0], stars=1))
        # The rival key never sees, exports or deletes the studio's user "bob".
        with pytest.raises(grpc.RpcError) as caught:
            rival.list_feedback("bob")
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert "bob" in (caught.value.details() or "")
        assert code_of(lambda: list(rival.export_feedback("bob"))) == grpc.StatusCode.NOT_FOUND
        assert code_of(lambda: rival.forget_user("bob")) == grpc.StatusCode.NOT_FOUND
        assert [e.stars for e in rival.export_feedback(all_users=True)] == [1]
        assert [e.user for e in studio.export_feedback(all_users=True)] == ["bob"] * 4 + [""]
        assert [e.id for e in studio.list_feedback()] == [mine.id]
        before = studio.list_feedback("bob")
    with ServerThread(settings) as restarted, \
            Client(restarted.address, timeout=30, api_key=made["studio"]) as studio:
        assert studio.list_feedback("bob") == before
        assert studio.forget_user() == 1  # the key's own events; bob's stay
        assert len(studio.list_feedback("bob")) == 4
        assert studio.list_feedback() == []


def test_feedback_needs_a_key_with_the_generate_scope(keys: tuple[Path, dict[str, str]],
                                                      tmp_path: Path) -> None:
    path, made = keys
    with ServerThread(guarded_settings(path, tmp_path)) as server:
        request = fb.ListFeedbackRequest()
        with Client(server.address, timeout=30, api_key=made["farm"]) as farm:
            denied = code_of(lambda: farm.feedback.ListFeedback(request))
        assert denied == grpc.StatusCode.PERMISSION_DENIED
        with Client(server.address, timeout=30) as anonymous:
            unknown = code_of(lambda: anonymous.feedback.ListFeedback(request))
        assert unknown == grpc.StatusCode.UNAUTHENTICATED


def test_the_feedback_service_cannot_be_open(tmp_path: Path) -> None:
    # Callers without a key would all be one owner, free to export or forget everyone's users.
    config = tmp_path / "museforge.toml"
    config.write_text('open_services = ["grpc.health.v1.Health", "museforge.v1.Feedback"]\n')
    for source in ({"config_file": config, "environ": {}},
                   {"environ": {"MUSEFORGE_OPEN_SERVICES": "museforge.v1.Feedback"}}):
        with pytest.raises(ConfigError, match=r"open_services: .*museforge\.v1\.Feedback cannot be open"):
            load_settings(**source)
    assert load_settings(environ={"MUSEFORGE_OPEN_SERVICES": "grpc.health.v1.Health"}).open_services == [
        "grpc.health.v1.Health"]


def fresh_keys(directory: Path, *names: str) -> tuple[Path, dict[str, str]]:
    path = directory / "api_keys.json"
    store = KeyFile(path)
    return path, {name: store.create(name, ["generate"])[0] for name in names}


def key_id(key: str) -> str:
    return key.split("_")[1]


def test_feedback_calls_have_a_room_of_their_own_per_key(tmp_path: Path) -> None:
    path, made = fresh_keys(tmp_path, "studio")
    # One call per ten seconds: a bucket of one token that does not refill within the test.
    settings = guarded_settings(path, tmp_path).model_copy(update={
        "requests_per_second_per_key": 0.1, "feedback_requests_per_second_per_key": 0.1})
    with ServerThread(settings) as server, \
            Client(server.address, timeout=30, api_key=made["studio"]) as studio:
        refs = made_artifacts(studio, count=1)
        assert code_of(lambda: made_artifacts(studio, count=1)) == grpc.StatusCode.RESOURCE_EXHAUSTED
        studio.record_feedback(feedback_event("stars", refs[0], stars=5))  # generating used none of it
        with pytest.raises(grpc.RpcError) as caught:
            studio.record_feedback(feedback_event("keep", refs[0]))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "feedback calls" in (caught.value.details() or "")


def test_a_key_keeps_at_most_its_quota_and_forgetting_makes_room(tmp_path: Path) -> None:
    path, made = fresh_keys(tmp_path, "studio", "rival")
    settings = guarded_settings(path, tmp_path).model_copy(update={"feedback_max_events_per_key": 3})
    with ServerThread(settings) as server, \
            Client(server.address, timeout=30, api_key=made["studio"]) as studio, \
            Client(server.address, timeout=30, api_key=made["rival"]) as rival:
        refs = made_artifacts(studio)
        for user in ("ann", "bob", "bob"):
            studio.record_feedback(feedback_event("keep", refs[0], user=user))
        with pytest.raises(grpc.RpcError) as caught:
            studio.record_feedback(feedback_event("keep", refs[1], user="cid"))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "feedback_max_events_per_key 3" in (caught.value.details() or "")
        assert code_of(lambda: studio.list_feedback("cid")) == grpc.StatusCode.NOT_FOUND  # nothing stored
        rival.record_feedback(feedback_event("keep", refs[0], user="ann"))  # a quota per key
        assert studio.forget_user("bob") == 2
        studio.record_feedback(feedback_event("keep", refs[1], user="cid"))


def test_a_revoked_keys_feedback_can_be_forgotten_from_the_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from museforge.cli.main import main
    from museforge.feedback.store import DATABASE_NAME, FeedbackStore

    path, made = fresh_keys(tmp_path, "studio", "rival", "gone")
    with ServerThread(guarded_settings(path, tmp_path)) as server:
        for name in made:
            with Client(server.address, timeout=30, api_key=made[name]) as client:
                refs = made_artifacts(client, count=1)
                for user in ("ann", "bob"):
                    client.record_feedback(feedback_event("keep", refs[0], user=user))
    monkeypatch.setenv("MUSEFORGE_API_KEYS_FILE", str(path))
    monkeypatch.setenv("MUSEFORGE_DATA_DIR", str(tmp_path))
    assert main(["keys", "revoke", key_id(made["gone"])]) == 0  # the events stay behind the revoked key
    assert main(["keys", "forget-feedback", key_id(made["gone"])]) == 0  # without --yes: a count only
    assert "keeps 2 feedback events" in capsys.readouterr().err
    assert main(["keys", "forget-feedback", key_id(made["gone"]), "--yes"]) == 0
    assert "deleted 2 feedback events of 2 users" in capsys.readouterr().err
    assert main(["keys", "revoke", key_id(made["rival"]), "--forget-feedback"]) == 0
    store = FeedbackStore(tmp_path / DATABASE_NAME)
    try:
        kept = {name: store.kept(key_id(key)) for name, key in made.items()}
    finally:
        store.close()
    assert kept == {"studio": 2, "rival": 0, "gone": 0}


def test_one_user_of_a_key_can_be_forgotten_from_the_command_line_while_the_server_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from museforge.cli.main import main

    path, made = fresh_keys(tmp_path, "studio")
    monkeypatch.setenv("MUSEFORGE_API_KEYS_FILE", str(path))
    monkeypatch.setenv("MUSEFORGE_DATA_DIR", str(tmp_path))
    studio_id = key_id(made["studio"])
    with ServerThread(guarded_settings(path, tmp_path)) as server, \
            Client(server.address, timeout=30, api_key=made["studio"]) as studio:
        refs = made_artifacts(studio)
        for event in one_of_each(refs, "Zo\u00eb") + one_of_each(refs, "bob"):
            studio.record_feedback(event)
        assert studio.recommend("artifacts", user="bob").events_used == 8  # a model fitted on both
        # The operator holds the data directory, not the key; "Zoë" typed decomposed is the same user.
        assert main(["keys", "forget-feedback", studio_id, "--user", "Zoe\u0308"]) == 0  # a count only
        assert "would delete (add --yes) 4 feedback events of user 'Zo\u00eb'" in capsys.readouterr().err
        assert len(studio.list_feedback("Zo\u00eb")) == 4
        assert main(["keys", "forget-feedback", studio_id, "--user", "Zoe\u0308", "--yes"]) == 0
        assert "deleted 4 feedback events of user 'Zo\u00eb'" in capsys.readouterr().err
        assert code_of(lambda: studio.list_feedback("Zo\u00eb")) == grpc.StatusCode.NOT_FOUND
        assert len(studio.list_feedback("bob")) == 4
        assert studio.recommend("artifacts", user="bob").events_used == 4  # never again from her events
        assert main(["keys", "forget-feedback", studio_id, "--user", "Zo\u00eb", "--yes"]) == 1
        assert f"key {studio_id} keeps no feedback of user 'Zo\u00eb'" in capsys.readouterr().err
        assert main(["keys", "forget-feedback", studio_id, "--user", "ann\u200b", "--yes"]) == 2
        assert "--user 'ann\\u200b' must not hold control or invisible characters" in capsys.readouterr().err
