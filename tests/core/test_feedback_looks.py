"""Recommendations that know what artifacts look like: each artifact of a latent generator is
rendered again from its provenance (the shipped models, real ONNX Runtime) and its measures
become feature tokens, so a taste for bright faces reaches faces nobody rated yet."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import json_format
from PIL import Image

from museforge.client import Client, artifact_ref, feedback_event
from museforge.config import Settings
from museforge.engine.catalogue import Engine
from museforge.engine.generator import Media
from museforge.feedback.appearance import Appearance
from museforge.feedback.interactions import Item, interactions
from museforge.feedback.looks import MEASURES, Looks, Renderer
from museforge.feedback.looks_taste import LooksTaste
from museforge.feedback.recommendations import Recommendations
from museforge.feedback.recommender import Recommender
from museforge.feedback.store import FeedbackStore
from museforge.v1 import feedback_pb2 as fb
from museforge.v1 import museforge_pb2 as pb
from tests.core.feedback_helpers import fresh_user
from tests.servers import ServerThread

FACES = {"size": 32}


def brightness(artifact: pb.Artifact) -> float:
    return float(np.asarray(Image.open(io.BytesIO(artifact.data)), dtype=np.float64).mean())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    data = tmp_path_factory.mktemp("looks")
    with ServerThread(Settings(address="127.0.0.1:0", plugins=["image"], data_dir=str(data))) as server:
        yield server


@pytest.fixture(scope="module")
def engine() -> Engine:
    found = Engine()
    found.settings.plugins = ["image"]
    found.start()
    return found


def renderer_of(engine: Engine) -> partial[Renderer | None]:
    def renderer(made: Engine, name: str) -> Renderer | None:
        generator = made.generators.get(name)
        return None if generator is None else (generator, partial(made.render, generator),
                                               made.served_models(generator))
    return partial(renderer, engine)


def test_a_taste_for_bright_faces_reaches_faces_nobody_rated(served: ServerThread) -> None:
    """Faces share every parameter, so without their looks nothing tells two unrated ones apart."""
    with Client(served.address, timeout=120) as client:
        rated = client.generate("image.faces", FACES, seed=5, count=60).artifacts
        new = client.generate("image.faces", FACES, seed=6, count=30).artifacts
        middle = float(np.median([brightness(a) for a in rated]))
        bright, dark = fresh_user("bright"), fresh_user("dark")
        rng = np.random.default_rng(0)
        for user, likes_bright in [(bright, True), (dark, False), *[(fresh_user("fan"), i % 2 == 0)
                                                                   for i in range(8)]]:
            for i in rng.choice(len(rated), 24, replace=False):
                up = (brightness(rated[i]) > middle) == likes_bright
                client.record_feedback(feedback_event("thumbs", artifact_ref(rated[i]), user=user,
                                                      thumb="up" if up else "down"))
        passer = fresh_user("passer")  # the new faces enter the catalogue, shown and not rated
        for artifact in new:
            client.record_feedback(feedback_event("shown", artifact_ref(artifact), user=passer))
        new_middle = float(np.median([brightness(a) for a in new]))
        by_sha = {a.metadata["sha256"] if "sha256" in a.metadata else artifact_ref(a).sha256: a
                  for a in new}
        for user, likes_bright in [(bright, True), (dark, False)]:
            reply = client.recommend("artifacts", user, k=100, refresh=True)
            cold = [by_sha[r.artifact.sha256] for r in reply.recommendations
                    if r.artifact.sha256 in by_sha][:6]
            assert len(cold) == 6
            hits = sum((brightness(a) > new_middle) == likes_bright for a in cold)
            assert hits >= 5, (user, [brightness(a) for a in cold], new_middle)


def test_a_users_liking_for_looks_is_learnt_within_each_generator() -> None:
    """Brightness is standardised per generator: faces brighter than other faces, not than props."""
    items = [Item(f"{i:064x}", "image.faces", "", "1", i, {"size": 32}) for i in range(10)]
    items += [Item(f"{100 + i:064x}", "mesh.props", "", "1", i, {}) for i in range(4)]
    vectors = {item.sha256: np.r_[np.zeros(6), 0.3 + 0.01 * i, np.zeros(32)]
               for i, item in enumerate(items[:10])}
    vectors.update({item.sha256: np.r_[np.zeros(3), 0.1 * i, np.zeros(10)]
                    for i, item in enumerate(items[10:])})
    taste = LooksTaste(items, vectors)
    assert taste.described == 14 and taste.makers == 2
    column = MEASURES.index("brightness")
    assert taste.x[:10, column].mean() == pytest.approx(0.0)
    assert taste.x[:10, column].std() == pytest.approx(1.0)
    assert not taste.x[10:, column].any() and not taste.x[:10, MEASURES.index("contrast")].any()
    liking = taste.liking({i: 1.0 if i >= 5 else -1.0 for i in range(10)})
    assert liking is not None and np.all(np.diff(liking[:10]) > 0)  # brighter faces, liked more
    assert taste.liking({10: 1.0, 11: -1.0}) is not None
    assert LooksTaste(items, {}).added(np.ones(14, np.float32), {0: 1.0}).tolist() == [1.0] * 14


def test_an_unrated_bright_face_outranks_an_unrated_dark_one_for_who_liked_bright() -> None:
    items = [Item(f"{i:064x}", "image.faces", "", "1", i, {"size": 32}) for i in range(12)]
    shine = [*range(10), 9.5, 0.5]  # the last two: nobody rated them, one bright and one dark
    vectors = {item.sha256: np.r_[np.zeros(6), shine[i], np.zeros(32)] for i, item in enumerate(items)}
    found = interactions([])
    found.weights.update({f"fan-{u}": {items[i].sha256: 1.0 if i >= 6 else -1.0
                                       for i in range(u % 2, 10, 2 if u < 4 else 1)} for u in range(8)})
    found.items.update({item.sha256: item for item in items})
    model = Recommender(found, ["image.faces"], looks=vectors)
    plain = Recommender(found, ["image.faces"])
    bright, dark = model.index[items[10].sha256], model.index[items[11].sha256]
    for user in found.weights:
        with_looks, without = model.user_scores(user), plain.user_scores(user)
        assert with_looks is not None and without is not None
        assert with_looks[bright] > with_looks[dark]
        assert without[bright] == pytest.approx(without[dark], abs=1e-5)  # the same tokens


def test_a_fit_renders_for_its_time_and_the_next_fits_go_on(engine: Engine, tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    for i in range(70):
        ref = {"sha256": f"{i:064x}", "generator": "image.tiles", "modelVersion": "1", "seed": str(1000 + i),
               "parameters": {"look": "green", "kind": "wall"}}
        store.record("", f"fan-{i % 5}", fb.FEEDBACK_KIND_THUMBS, ref["sha256"],
                     {"artifact": ref, "thumb": "THUMB_UP" if i % 3 else "THUMB_DOWN"})
    looks = Looks(Appearance(), renderer_of(engine), 1e-6)  # one chunk of 8 per fit
    recommendations = Recommendations(store, lambda: ["image.tiles"], refit_seconds=3600, looks=looks)
    try:
        first = recommendations.model("")
        assert first.undescribed == 62
        assert recommendations.model("") is first  # no refit before refit_seconds without refresh
        second = recommendations.model("", refresh=True)
        assert second is not first and second.undescribed == 54
        while (third := recommendations.model("", refresh=True)).undescribed:
            assert third.undescribed % 8 == 6
        assert third.undescribed == 0
        assert recommendations.model("", refresh=True) is third  # nothing left, nothing new: no fit
        assert (first.looks.described, second.looks.described, third.looks.described) == (8, 16, 70)
    finally:
        recommendations.close()
        store.close()


def test_no_time_for_looks_means_no_rendering(engine: Engine) -> None:
    items = [Item(f"{i:064x}", "image.tiles", "", "1", i, {"look": "red"}) for i in range(8)]
    assert Looks(Appearance(), renderer_of(engine), 0.0).describe(items) == ({}, 0)


def test_a_generator_that_fails_to_render_costs_only_its_looks(engine: Engine,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    tiles = engine.generators["image.tiles"]

    def broken(params: object, count: int) -> list[Media]:
        raise RuntimeError("the plugin fell over")

    def renderer(name: str) -> Renderer | None:
        return (tiles, broken, "") if name == "image.tiles" else renderer_of(engine)(name)

    items = [Item(f"{i:064x}", "image.tiles", "", "1", i, {"look": "red"}) for i in range(4)]
    items += [Item(f"{10 + i:064x}", "image.faces", "", "1", i, {"size": 32}) for i in range(4)]
    looks = Looks(Appearance(), renderer, 60.0)
    with caplog.at_level(logging.WARNING):
        vectors, left = looks.describe(items)
    assert left == 0 and set(vectors) == {item.sha256 for item in items[4:]}
    assert "the plugin fell over" in caplog.text
    caplog.clear()
    assert looks.describe(items)[0].keys() == vectors.keys() and not caplog.text  # not tried again


def test_the_looks_are_those_of_the_artifact_the_provenance_names(engine: Engine) -> None:
    """Rendered again from seed, index and parameters: the pixels the server made."""
    request = engine.prepare("image.faces", FACES, 77, 3, "png")
    made = [e for e in engine.run(request) if hasattr(e, "data") and hasattr(e, "metadata")]
    items = []
    for artifact in made:
        ref = json_format.MessageToDict(artifact_ref(artifact.data, artifact.metadata))
        items.append(Item(ref["sha256"], "image.faces", "", ref["modelVersion"], int(ref["seed"]),
                          ref["parameters"], int(ref.get("index", 0))))
    vectors, _ = Looks(Appearance(), renderer_of(engine), 60.0).describe(items)
    for artifact, item in zip(made, items, strict=True):
        grey = np.asarray(Image.open(io.BytesIO(artifact.data)), dtype=np.float64) / 255.0  # faces: L
        assert vectors[item.sha256][6] == pytest.approx(grey.mean(), abs=2e-3)
    assert len({float(v[6]) for v in vectors.values()}) == 3



