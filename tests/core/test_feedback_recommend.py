"""Recommend through a real server of its own (real SQLite, implicit's ALS): tastes learnt from
ratings, new artifacts ranked before anyone rated them, forgotten users gone, bad input refused."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from museforge.client import Client, feedback_event, field_violations
from museforge.config import Settings
from museforge.feedback.interactions import Item
from museforge.feedback.item_features import Vocabulary
from museforge.server.auth import KeyFile
from museforge.v1 import feedback_pb2 as fb
from tests.servers import ServerThread

LOOKS = ("green", "red", "teal")


def tile(rng: random.Random, look: str, kind: str = "") -> fb.ArtifactRef:
    """A tile as its provenance would name it (the sha256 is only checked for its form)."""
    ref = fb.ArtifactRef(sha256=rng.randbytes(32).hex(), generator="image.tiles", model_version="3",
                         seed=rng.randrange(1, 2**31))
    ref.parameters.update({"look": look, "kind": kind or rng.choice(("floor", "wall"))})
    return ref


class Studio:
    """Thirty users who each like one look: thumbs up on it, down on the others."""

    def __init__(self, client: Client, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.pool = [tile(self.rng, look) for look in LOOKS for _ in range(30)]
        self.taste = {f"fan-{i}": LOOKS[i % 3] for i in range(30)}
        for user, look in self.taste.items():
            for ref in self.rng.sample(self.pool, 12):
                liked = ref.parameters["look"] == look
                thumb = "up" if liked else "down"
                client.record_feedback(feedback_event("thumbs", ref, user=user, thumb=thumb))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    data = tmp_path_factory.mktemp("recommend")
    with ServerThread(Settings(address="127.0.0.1:0", plugins=["image"], data_dir=str(data))) as server:
        yield server


@pytest.fixture(scope="module")
def studio(served: ServerThread) -> Studio:
    with Client(served.address, timeout=60) as client:
        return Studio(client)


@pytest.fixture()
def client(served: ServerThread) -> Iterator[Client]:
    with Client(served.address, timeout=60) as c:
        yield c


def looks_of(reply: fb.RecommendResponse) -> list[str]:
    return [r.artifact.parameters["look"] for r in reply.recommendations]


def test_artifacts_follow_each_users_taste_and_skip_what_they_saw(client: Client, studio: Studio) -> None:
    hits = total = 0
    for user, look in list(studio.taste.items())[:9]:
        reply = client.recommend("artifacts", user, k=5, refresh=True)
        assert len(reply.recommendations) == 5 and reply.events_used >= 360
        seen = {e.artifact.sha256 for e in client.list_feedback(user)}
        assert not seen & {r.artifact.sha256 for r in reply.recommendations}
        scores = [r.score for r in reply.recommendations]
        assert scores == sorted(scores, reverse=True)
        assert all(r.reason for r in reply.recommendations)
        hits += sum(found == look for found in looks_of(reply))
        total += len(reply.recommendations)
    assert hits / total >= 0.8, f"{hits} of {total} recommendations had the look their user likes"


def test_a_new_artifact_is_recommended_before_anyone_rated_it(client: Client, studio: Studio) -> None:
    # A bystander is shown six new tiles, two of each look, and says nothing.
    fresh = [tile(studio.rng, look) for look in LOOKS for _ in range(2)]
    for ref in fresh:
        client.record_feedback(feedback_event("shown", ref, user="bystander"))
    new = {ref.sha256 for ref in fresh}
    for user, look in list(studio.taste.items())[:3]:
        reply = client.recommend("artifacts", user, k=100, refresh=True)
        ranked = [r for r in reply.recommendations if r.artifact.sha256 in new]
        assert len(ranked) == 6
        assert {r.artifact.parameters["look"] for r in ranked[:2]} == {look}, looks_of(reply)
        assert ranked[0].reason.startswith("new, not rated yet")


def test_presets_and_generators_say_why(client: Client, studio: Studio) -> None:
    user, look = next(iter(studio.taste.items()))
    presets = client.recommend("presets", user, k=3, generator="image.tiles")
    best = presets.recommendations[0]
    assert best.preset.generator == "image.tiles" and best.preset.parameters["look"] == look
    assert best.reason.startswith("you liked")
    generators = client.recommend("generators", user, k=3)
    names = [r.generator for r in generators.recommendations]
    assert names[0] == "image.tiles" and len(names) == 3  # then served ones nobody rated
    assert generators.recommendations[1].reason == "served here; no feedback on it yet"


def test_what_a_user_disliked_is_not_offered_back_as_a_preset(client: Client, studio: Studio) -> None:
    odd = tile(random.Random(3), "red", "wall")
    odd.parameters.update({"palette": 5})  # a preset nobody else made
    client.record_feedback(feedback_event("thumbs", odd, user="grump", thumb="down"))
    client.record_feedback(feedback_event("keep", tile(random.Random(4), "red", "wall"), user="fan-1"))
    offered = client.recommend("presets", "grump", k=100, refresh=True).recommendations
    assert offered and all(r.preset.parameters["look"] for r in offered)
    assert not [r for r in offered if "palette" in r.preset.parameters]


def test_a_user_with_no_feedback_gets_what_most_users_liked(client: Client, studio: Studio) -> None:
    reply = client.recommend("artifacts", "newcomer", k=3)
    assert len(reply.recommendations) == 3
    assert all("of this key's users" in r.reason for r in reply.recommendations)


def test_a_new_user_is_never_offered_what_nobody_liked(client: Client, studio: Studio) -> None:
    shunned = tile(random.Random(6), "red", "floor")
    for user in ("critic-1", "critic-2"):
        client.record_feedback(feedback_event("thumbs", shunned, user=user, thumb="down"))
    offered = client.recommend("artifacts", "newcomer-2", k=100, refresh=True).recommendations
    assert offered and shunned.sha256 not in {r.artifact.sha256 for r in offered}
    assert all(not r.reason.startswith("liked by 0 ") for r in offered)
    # Rated, if only against: never "new, not rated yet" to anyone.
    for user in list(studio.taste)[:3]:
        for r in client.recommend("artifacts", user, k=100).recommendations:
            assert r.artifact.sha256 != shunned.sha256 or not r.reason.startswith("new, not rated yet")


def test_what_a_user_just_met_is_not_offered_before_the_next_fit(client: Client, studio: Studio) -> None:
    user = next(iter(studio.taste))
    first = client.recommend("artifacts", user, k=3, refresh=True).recommendations[0]
    client.record_feedback(feedback_event("thumbs", first.artifact, user=user, thumb="down"))
    again = client.recommend("artifacts", user, k=3)  # no refresh: the same fitted model answers
    assert again.fitted_time == client.recommend("artifacts", user, k=3).fitted_time
    assert first.artifact.sha256 not in {r.artifact.sha256 for r in again.recommendations}


def test_a_forgotten_user_leaves_the_model_at_once(client: Client, studio: Studio) -> None:
    rng = random.Random(5)
    mine = [tile(rng, "green", "wall") for _ in range(3)]
    for ref in mine:
        client.record_feedback(feedback_event("keep", ref, user="leaver"))
    before = client.recommend("artifacts", "newcomer", k=100, refresh=True)
    assert {r.sha256 for r in mine} <= {r.artifact.sha256 for r in before.recommendations}
    assert client.forget_user("leaver") == 3
    after = client.recommend("artifacts", "newcomer", k=100)  # no refresh asked: forgetting refits
    assert after.events_used == before.events_used - 3
    assert not {r.sha256 for r in mine} & {r.artifact.sha256 for r in after.recommendations}


@pytest.mark.parametrize(("request_", "field"), [
    (fb.RecommendRequest(user="ann"), "kind"),
    (fb.RecommendRequest(user="ann", kind=fb.RECOMMEND_KIND_ARTIFACTS, k=101), "k"),
    (fb.RecommendRequest(user="ann", kind=fb.RECOMMEND_KIND_ARTIFACTS, k=-1), "k"),
    (fb.RecommendRequest(user="ann", kind=fb.RECOMMEND_KIND_PRESETS, generator="image.nope"), "generator"),
    (fb.RecommendRequest(kind=fb.RECOMMEND_KIND_ARTIFACTS), "user"),
    (fb.RecommendRequest(user="a\x00b", kind=fb.RECOMMEND_KIND_ARTIFACTS), "user"),
])
def test_bad_requests_name_the_field(client: Client, request_: fb.RecommendRequest, field: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.feedback.Recommend(request_, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in field_violations(caught.value)]


def test_keys_never_see_each_others_artifacts(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path / "api_keys.json")
    made = {name: keys.create(name, ["generate"])[0] for name in ("studio", "rival")}
    settings = Settings(address="127.0.0.1:0", auth=True, api_keys_file=str(tmp_path / "api_keys.json"),
                        plugins=["image"], data_dir=str(tmp_path))
    rng = random.Random(9)
    secret = [tile(rng, "red") for _ in range(4)]
    with ServerThread(settings) as server, \
            Client(server.address, timeout=30, api_key=made["studio"]) as studio, \
            Client(server.address, timeout=30, api_key=made["rival"]) as rival:
        for ref in secret:
            studio.record_feedback(feedback_event("keep", ref, user="ann"))
        rival.record_feedback(feedback_event("keep", tile(rng, "teal"), user="bob"))
        assert len(studio.recommend("artifacts", "zed", k=10).recommendations) == 4
        answer = rival.recommend("artifacts", "zed", k=10)
        assert [r.artifact.parameters["look"] for r in answer.recommendations] == ["teal"]


def test_the_gateway_and_the_cli_answer_too(served: ServerThread, studio: Studio,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from museforge.cli.main import main as cli

    user = next(iter(studio.taste))
    assert cli(["feedback", "recommend", "presets", "--user", user, "-k", "2", "--server", served.address,
                "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    reply = json_format.ParseDict(printed, fb.RecommendResponse())
    assert len(reply.recommendations) == 2 and reply.recommendations[0].preset.generator == "image.tiles"
    assert cli(["feedback", "recommend", "generators", "--user", user, "--server", served.address]) == 0
    assert "image.tiles" in capsys.readouterr().out


def test_a_user_forgotten_by_another_process_leaves_the_next_answer(tmp_path: Path) -> None:
    from museforge.feedback.recommendations import Recommendations
    from museforge.feedback.store import FeedbackStore

    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    rng = random.Random(11)
    for user in ("ann", "bob"):
        for _ in range(3):
            ref = json_format.MessageToDict(tile(rng, "green"))
            store.record("", user, fb.FEEDBACK_KIND_KEEP, ref["sha256"], {"artifact": ref})
    recommendations = Recommendations(store, lambda: ["image.tiles"], refit_seconds=3600)
    try:
        assert recommendations.model("").events == 6
        other = FeedbackStore(tmp_path / "feedback.sqlite3")  # as `museforge keys` or a worker would
        assert other.forget("", "bob") == 3
        other.close()
        # No refresh asked, the refit interval far off: the deletion alone makes it refit.
        model = recommendations.model("")
        assert model.events == 3 and set(model.found.weights) == {"ann"}
        # Events recorded after the deletion do not hide it from a model fitted before it.
        for _ in range(3):
            ref = json_format.MessageToDict(tile(rng, "red"))
            store.record("", "cy", fb.FEEDBACK_KIND_KEEP, ref["sha256"], {"artifact": ref})
        assert recommendations.model("", refresh=True).events == 6
        # Another process forgets a user and records as many events for a new one: the count is
        # back where it was, yet the next answer, unasked to refresh, is from a model without them.
        other = FeedbackStore(tmp_path / "feedback.sqlite3")
        assert other.forget("", "cy") == 3
        for _ in range(3):
            ref = json_format.MessageToDict(tile(rng, "teal"))
            other.record("", "dee", fb.FEEDBACK_KIND_KEEP, ref["sha256"], {"artifact": ref})
        other.close()
        model = recommendations.model("")
        assert model.events == 6 and set(model.found.weights) == {"ann", "dee"}
    finally:
        recommendations.close()
        store.close()


@pytest.fixture()
def own(tmp_path: Path) -> Iterator[Client]:
    """A server of the test's own: what these tests record would change the shared one's answers."""
    settings = Settings(address="127.0.0.1:0", plugins=["image"], data_dir=str(tmp_path))
    with ServerThread(settings) as server, Client(server.address, timeout=60) as client:
        Studio(client)
        yield client


def test_a_disliked_generator_is_not_offered_as_one_nobody_rated(own: Client) -> None:
    client = own
    rng = random.Random(9)
    for user in ("icon-critic-1", "icon-critic-2"):
        icon = fb.ArtifactRef(sha256=rng.randbytes(32).hex(), generator="image.icons", model_version="1",
                              seed=rng.randrange(1, 2**31))
        client.record_feedback(feedback_event("thumbs", icon, user=user, thumb="down"))
    for user in ("icon-critic-1", "newcomer-3"):
        offered = client.recommend("generators", user, k=100, refresh=True).recommendations
        reasons = {r.generator: r.reason for r in offered}
        assert "image.icons" not in reasons, (user, reasons)
        assert reasons.get("image.faces") == "served here; no feedback on it yet"  # nobody rated it


def test_a_reason_names_the_parameters_that_tell_artifacts_apart() -> None:
    # Provenance holds every parameter, defaults and nulls too: those say nothing in a reason.
    def made(look: str, kind: str) -> Item:
        return Item(sha256=look + kind, generator="image.tiles", effect="", model_version="4", seed=1,
                    parameters={"columns": 1, "frames": 8, "interpolate_to": None, "kind": kind,
                                "look": look})

    items = [made("green", "wall"), made("red", "floor"), made("green", "floor")]
    assert Vocabulary(items).describe(items[0]) == "image.tiles, kind=wall, look=green"
    alone = Vocabulary(items[:1])  # nothing varies yet: text (what it is) before knobs, nulls left out
    assert alone.describe(items[0]) == "image.tiles, kind=wall, look=green"


def test_a_preset_its_generator_would_refuse_is_never_offered(own: Client) -> None:
    client = own
    rng = random.Random(12)
    odd = fb.ArtifactRef(sha256=rng.randbytes(32).hex(), generator="image.faces", model_version="1", seed=5)
    odd.parameters.update({"a": {"b": 1}})  # provenance is the caller's word: faces has no "a"
    for user in ("odd-1", "odd-2", "odd-3"):
        client.record_feedback(feedback_event("keep", odd, user=user))
    offered = client.recommend("presets", "newcomer-4", k=100, refresh=True).recommendations
    assert offered and not [r for r in offered if r.preset.generator == "image.faces"]
    for found in offered[:3]:  # what is offered is what Generate takes
        reply = client.generate(found.preset.generator, json_format.MessageToDict(found.preset.parameters))
        assert len(reply.artifacts) == 1
