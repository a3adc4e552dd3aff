"""Recommend through real servers: a revoked key's deleted events are never answered from, a
preset the user turned down is not "new" and ranks below what they loved, reasons say what an
artifact is, and one draw written in two formats is one artifact."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from museforge.client import Client, artifact_ref, feedback_event
from museforge.config import Settings
from museforge.v1 import feedback_pb2 as fb
from tests.core.test_feedback_keys import fresh_keys, guarded_settings, key_id
from tests.core.test_feedback_recommend import tile
from tests.servers import ServerThread


@pytest.fixture()
def own(tmp_path: Path) -> Iterator[Client]:
    settings = Settings(address="127.0.0.1:0", plugins=["image"], data_dir=str(tmp_path))
    with ServerThread(settings) as server, Client(server.address, timeout=60) as client:
        yield client


def test_a_revoked_keys_forgotten_events_are_never_answered_from_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from museforge.cli.main import main

    path, made = fresh_keys(tmp_path, "gone")
    rng = random.Random(1)
    kept = [tile(rng, "green") for _ in range(4)]
    with ServerThread(guarded_settings(path, tmp_path)) as server, \
            Client(server.address, timeout=60, api_key=made["gone"]) as client:
        for number, ref in enumerate(kept):
            client.record_feedback(feedback_event("keep", ref, user=f"fan-{number % 2}"))
        before = client.recommend("artifacts", "newcomer", k=10)  # fits the key's model
        assert before.events_used == 4 and len(before.recommendations) == 4
        # `keys revoke --forget-feedback` opens the database itself, as another process would;
        # the running server goes on accepting the key until it restarts.
        monkeypatch.setenv("MUSEFORGE_API_KEYS_FILE", str(path))
        monkeypatch.setenv("MUSEFORGE_DATA_DIR", str(tmp_path))
        assert main(["keys", "revoke", key_id(made["gone"]), "--forget-feedback"]) == 0
        for kind in ("artifacts", "presets", "generators"):
            after = client.recommend(kind, "fan-0", k=10)  # no refresh asked
            assert after.events_used == 0, kind
            named = " ".join(r.reason for r in after.recommendations)
            assert not {r.artifact.sha256 for r in after.recommendations} & {r.sha256 for r in kept}
            assert not any(r.sha256[:12] in named for r in kept) and "you liked" not in named


def test_a_preset_the_user_turned_down_ranks_below_one_they_loved_and_is_not_new(own: Client) -> None:
    rng = random.Random(2)
    loved = [tile(rng, "green", "wall") for _ in range(5)]
    for ref in loved:
        own.record_feedback(feedback_event("stars", ref, user="ann", stars=5))
    # A preset of the same look, which ann turned down once; others were only shown the rest of it.
    shunned = [tile(rng, "green", "floor") for _ in range(4)]
    own.record_feedback(feedback_event("thumbs", shunned[0], user="ann", thumb="down"))
    for ref in shunned[1:]:
        own.record_feedback(feedback_event("shown", ref, user="bystander"))
    for user in ("bo", "cy"):  # a second liker, so the model is personal
        own.record_feedback(feedback_event("keep", tile(rng, "red", "wall"), user=user))
    offered = own.recommend("presets", "ann", k=10, refresh=True).recommendations
    kinds = [r.preset.parameters["kind"] for r in offered if r.preset.parameters["look"] == "green"]
    assert kinds[0] == "wall", [(r.preset.parameters, r.score, r.reason) for r in offered]
    scores = {r.preset.parameters["kind"]: r.score for r in offered if r.preset.parameters["look"] == "green"}
    assert "floor" not in scores or scores["floor"] < scores["wall"]
    for found in offered:
        if found.preset.parameters["look"] == "green" and found.preset.parameters["kind"] == "floor":
            assert not found.reason.startswith("new, not rated yet"), found.reason
            assert "you disliked 1 of its artifacts" in found.reason


def test_a_reason_names_what_differs_from_the_generators_defaults(own: Client) -> None:
    # Every tile at the defaults but its look (kind=floor is the default kind), nothing varying.
    rng = random.Random(3)
    made = []
    for _ in range(3):
        ref = tile(rng, "ochre", "floor")
        ref.parameters.update({"columns": 1, "rows": 1, "frames": 8, "palette": 12, "pixel_scale": 1,
                               "truncation": 1})
        made.append(ref)
    own.record_feedback(feedback_event("keep", made[0], user="ann"))
    own.record_feedback(feedback_event("keep", made[1], user="bo"))
    own.record_feedback(feedback_event("shown", made[2], user="cy"))
    for user in ("newcomer", "ann"):
        reasons = [r.reason for r in own.recommend("artifacts", user, k=5, refresh=True).recommendations]
        assert reasons and all("image.tiles, kind=floor, look=ochre" in r for r in reasons), reasons


def test_one_draw_in_two_formats_is_one_artifact(own: Client) -> None:
    pngs = own.generate("image.tiles", {"look": "green"}, seed=7, count=3, fmt="png").artifacts
    webps = own.generate("image.tiles", {"look": "green"}, seed=7, count=3, fmt="webp").artifacts
    png_refs, webp_refs = [artifact_ref(a) for a in pngs], [artifact_ref(a) for a in webps]
    assert {r.sha256 for r in png_refs}.isdisjoint(r.sha256 for r in webp_refs)
    for ref in png_refs:
        own.record_feedback(feedback_event("stars", ref, user="ann", stars=5))
    for ref in webp_refs:  # another user met the same draws as WebP
        own.record_feedback(feedback_event("keep", ref, user="bo"))
    other = fb.ArtifactRef(sha256="ab" * 32, generator="image.tiles", model_version=png_refs[0].model_version,
                           seed=99)
    other.parameters.update(dict(png_refs[0].parameters))
    own.record_feedback(feedback_event("shown", other, user="cy"))
    mine = own.recommend("artifacts", "ann", k=10, refresh=True).recommendations
    # ann rated these draws as PNG: their WebPs are not offered back to her as new.
    assert [r.artifact.sha256 for r in mine] == [other.sha256], [r.reason for r in mine]
    offered = own.recommend("artifacts", "newcomer", k=10).recommendations
    draws = [(r.artifact.seed, r.artifact.index) for r in offered]
    assert len(offered) == 3 and len(set(draws)) == 3, draws  # each draw once, not once per format
