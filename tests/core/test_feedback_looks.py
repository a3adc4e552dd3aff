"""Recommendations that know what artifacts look like: each artifact of a latent generator is
rendered again from its provenance (the shipped models, real ONNX Runtime) and its measures
become feature tokens, so a taste for bright faces reaches faces nobody rated yet."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from PIL import Image

from museforge.client import Client, artifact_ref, feedback_event
from museforge.config import Settings
from museforge.engine.catalogue import Engine
from museforge.engine.generator import Media
from museforge.engine.latent import Draw, Variations
from museforge.engine.request import Artifact
from museforge.engine.steering import models_served
from museforge.feedback import looks as looks_module
from museforge.feedback.appearance import Appearance, affordable
from museforge.feedback.interactions import Item, interactions
from museforge.feedback.looks import MEASURES, Described, Looks, Renderer, engine_renderer
from museforge.feedback.looks_taste import LooksTaste
from museforge.feedback.recommendations import Recommendations
from museforge.feedback.recommender import Recommender
from museforge.feedback.steering import Rated, parameters_of
from museforge.feedback.store import FeedbackStore
from museforge.inference import grpc_service_pb2 as oip
from museforge.inference import grpc_service_pb2_grpc as oip_grpc
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
    settings = Settings(address="127.0.0.1:0", plugins=["image"], data_dir=str(data),
                        recommend_looks_seconds=600)  # one background pass describes every face
    with ServerThread(settings) as server:
        yield server


@pytest.fixture(scope="module")
def engine() -> Engine:
    found = Engine()
    found.settings.plugins = ["image"]
    found.start()
    return found


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
        by_sha = {artifact_ref(a).sha256: a for a in new}
        # The fit that answers renders nothing; the looks come from the fit it starts behind it.
        first = client.recommend("artifacts", bright, k=100, refresh=True).fitted_time.ToDatetime()
        deadline = time.monotonic() + 300
        while client.recommend("artifacts", bright, k=1).fitted_time.ToDatetime() == first:
            assert time.monotonic() < deadline, "no background fit with the faces' looks"
            time.sleep(1.0)  # calls come first: renders wait for a quarter second without any
        for user, likes_bright in [(bright, True), (dark, False)]:
            reply = client.recommend("artifacts", user, k=100)
            cold = [by_sha[r.artifact.sha256] for r in reply.recommendations
                    if r.artifact.sha256 in by_sha][:6]
            assert len(cold) == 6
            hits = sum((brightness(a) > new_middle) == likes_bright for a in cold)
            assert hits >= 5, (user, [brightness(a) for a in cold], new_middle)


def looks_of(**named: float) -> np.ndarray:
    found = np.zeros(len(MEASURES))
    for name, value in named.items():
        found[MEASURES.index(name)] = value
    return found


def test_a_users_liking_for_looks_is_learnt_within_each_generator() -> None:
    """Brightness is standardised per generator: faces brighter than other faces, not than props."""
    items = [Item(f"{i:064x}", "image.faces", "", "1", i, {"size": 32}) for i in range(10)]
    items += [Item(f"{100 + i:064x}", "mesh.props", "", "1", i, {}) for i in range(4)]
    looks = {item.sha256: looks_of(brightness=0.3 + 0.01 * i) for i, item in enumerate(items[:10])}
    looks.update({item.sha256: looks_of(girth=0.1 * i) for i, item in enumerate(items[10:])})
    taste = LooksTaste(items, looks)
    assert taste.described == 14 and taste.makers == 2
    column = MEASURES.index("brightness")
    assert taste.x[:10, column].mean() == pytest.approx(0.0)
    assert taste.x[:10, column].std() == pytest.approx(1.0)
    assert not taste.x[10:, column].any() and not taste.x[:10, MEASURES.index("contrast")].any()
    liking = taste.liking({i: 1.0 if i >= 5 else -1.0 for i in range(10)})
    assert liking is not None and np.all(np.diff(liking[:10]) > 0)  # brighter faces, liked more
    assert taste.liking({10: 1.0, 11: -1.0}) is not None
    assert taste.known(items).keys() == looks.keys()
    assert all(np.array_equal(taste.known(items)[sha], value) for sha, value in looks.items())
    assert LooksTaste(items, {}).added(np.ones(14, np.float32), {0: 1.0}).tolist() == [1.0] * 14


def test_an_unrated_bright_face_outranks_an_unrated_dark_one_for_who_liked_bright() -> None:
    items = [Item(f"{i:064x}", "image.faces", "", "1", i, {"size": 32}) for i in range(12)]
    shine = [*range(10), 9.5, 0.5]  # the last two: nobody rated them, one bright and one dark
    looks = {item.sha256: looks_of(brightness=shine[i]) for i, item in enumerate(items)}
    found = interactions([])
    found.weights.update({f"fan-{u}": {items[i].sha256: 1.0 if i >= 6 else -1.0
                                       for i in range(u % 2, 10, 2 if u < 4 else 1)} for u in range(8)})
    found.items.update({item.sha256: item for item in items})
    model = Recommender(found, ["image.faces"], looks=looks)
    plain = Recommender(found, ["image.faces"])
    bright, dark = model.index[items[10].sha256], model.index[items[11].sha256]
    for user in found.weights:
        with_looks, without = model.user_scores(user), plain.user_scores(user)
        assert with_looks is not None and without is not None
        assert with_looks[bright] > with_looks[dark]
        assert without[bright] == pytest.approx(without[dark], abs=1e-5)  # the same tokens


def test_only_background_fits_render_and_they_go_on_until_all_are_described(engine: Engine,
                                                                            tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    for i in range(20):
        ref = {"sha256": f"{i:064x}", "generator": "image.tiles", "modelVersion": "1", "seed": str(1000 + i),
               "parameters": {"look": "green", "kind": "wall"}}
        store.record("", f"fan-{i % 5}", fb.FEEDBACK_KIND_THUMBS, ref["sha256"],
                     {"artifact": ref, "thumb": "THUMB_UP" if i % 3 else "THUMB_DOWN"})
    # One chunk of 8 per background fit, into a cache of 4: what a fit learnt goes on in the model.
    looks = Looks(Appearance(4), engine_renderer(engine), 1e-6)
    recommendations = Recommendations(store, lambda: ["image.tiles"], refit_seconds=1.0, looks=looks)
    try:
        first = recommendations.model("", refresh=True)
        assert (first.undescribed, first.looks.described) == (20, 0)  # the call's fit renders nothing
        seen = []
        deadline = time.monotonic() + 300
        while (latest := recommendations.model("")).undescribed:
            assert time.monotonic() < deadline
            seen.append(latest.looks.described)
            time.sleep(0.5)  # calls come first: renders wait for a quarter second without any
        assert latest.looks.described == 20 and set(seen) <= {0, 8, 16}
        assert max(seen) > 0  # the fits came one after another, eight more each time
        recommendations.idle()
        assert recommendations.model("", refresh=True) is latest  # nothing left, nothing new
    finally:
        recommendations.close()
        store.close()


def test_no_time_for_looks_means_no_rendering(engine: Engine) -> None:
    items = [Item(f"{i:064x}", "image.tiles", "", "1", i, {"look": "red"}) for i in range(8)]
    assert Looks(Appearance(), engine_renderer(engine), 0.0).describe(items) == Described({}, 0, {})


def counting_renderer(engine: Engine, calls: list[int], fail: str = "") -> Callable[[str], Renderer | None]:
    """The engine's renderer, recording how many outputs each render asks for; ``fail``: a
    generator whose renders raise."""
    own = engine_renderer(engine)

    def renderer(name: str) -> Renderer | None:
        found = own(name)
        if found is None:
            return None
        generator, render, served = found

        def counted(params: Variations, count: int) -> list[Media]:
            calls.append(count)
            if name == fail:
                raise RuntimeError("the plugin fell over")
            return render(params, count)
        return generator, counted, served
    return renderer


def test_a_render_that_fails_costs_only_its_own_looks_and_poisons_nothing(
        engine: Engine, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # The capture hangs on the module's own logger: another test of the session may have set up
    # logging anew (basicConfig(force=True) takes every handler off the root) or disabled loggers.
    logger = logging.getLogger(Looks.__module__)
    monkeypatch.setattr(logger, "disabled", False)
    monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr(logger, "handlers", [caplog.handler])
    items = [Item(f"{i:064x}", "image.tiles", "", "1", i, {"look": "red"}) for i in range(4)]
    items += [Item(f"{10 + i:064x}", "image.faces", "", "1", i, {"size": 32}) for i in range(4)]
    calls: list[int] = []
    appearance = Appearance()
    looks = Looks(appearance, counting_renderer(engine, calls, fail="image.tiles"), 60.0)
    with caplog.at_level(logging.WARNING, logger=Looks.__module__):  # whatever its parents' levels
        described = looks.describe(items)
    found, left = described.looks, described.left
    assert left == 0 and set(found) == {item.sha256 for item in items[4:]}
    assert sorted(calls) == [1, 1, 1, 1, 4, 4]  # the failing chunk, then its tiles one by one
    assert caplog.text.count("the plugin fell over") == 4
    caplog.clear()
    calls.clear()
    assert looks.describe(items).looks.keys() == found.keys() and not calls  # not tried again soon
    tiles = engine.generators["image.tiles"]
    params = parameters_of(tiles, {"look": "red"})
    assert params is not None
    rated = [Rated(item, params, 0.0, Draw(seed=item.seed)) for item in items[:4]]
    served = models_served(engine.models_of(tiles))
    assert appearance.missing(tiles, rated, served) == [0, 1, 2, 3]  # steering will try them


def test_the_looks_are_those_of_the_artifact_the_provenance_names(engine: Engine) -> None:
    """Rendered again from seed, index and parameters: the pixels the server made."""
    request = engine.prepare("image.faces", FACES, 77, 3, "png")
    made = [e for e in engine.run(request) if isinstance(e, Artifact)]
    items = []
    for artifact in made:
        ref = json_format.MessageToDict(artifact_ref(artifact.data, artifact.metadata))
        items.append(Item(ref["sha256"], "image.faces", "", ref["modelVersion"], int(ref["seed"]),
                          ref["parameters"], int(ref.get("index", 0))))
    found = Looks(Appearance(), engine_renderer(engine), 60.0).describe(items).looks
    for artifact, item in zip(made, items, strict=True):
        grey = np.asarray(Image.open(io.BytesIO(artifact.data)), dtype=np.float64) / 255.0  # faces: L
        assert found[item.sha256][MEASURES.index("brightness")] == pytest.approx(grey.mean(), abs=2e-3)
    assert len({float(v[0]) for v in found.values()}) == 3


def test_provenance_naming_a_huge_output_or_huge_noise_is_never_rendered(engine: Engine) -> None:
    """Feedback names artifacts by the caller's word: no 2048 px texture, no draw 1,023 deep."""
    calls: list[int] = []
    huge = [Item(f"{i:064x}", "image.texture", "", "1", i, {"width": 2048, "height": 2048, "family": "brick"})
            for i in range(3)]
    deep = [Item(f"{5 + i:064x}", "image.texture", "", "1", i, {"width": 1024, "height": 1024,
                                                                 "family": "brick"}, index=1023)
            for i in range(2)]
    small = [Item(f"{10 + i:064x}", "image.tiles", "", "1", i, {"look": "red"}) for i in range(20)]
    described = Looks(Appearance(), counting_renderer(engine, calls), 60.0).describe(huge + deep + small)
    assert described.left == 0 and set(described.looks) == {item.sha256 for item in small}
    assert calls == [8, 8, 4]  # chunks of at most 8 outputs
    texture = engine.generators["image.texture"]
    params = parameters_of(texture, {"width": 1024, "height": 1024, "family": "brick"})
    assert params is not None
    assert affordable(texture, params, Draw(seed=1, index=3))
    assert not affordable(texture, params, Draw(seed=1, index=1023))


def test_a_batch_of_big_outputs_is_rendered_a_few_megabytes_at_a_time(engine: Engine) -> None:
    calls: list[int] = []
    found = counting_renderer(engine, calls)("image.texture")
    assert found is not None
    texture, render, served = found
    params = parameters_of(texture, {"width": 512, "height": 512, "family": "grass"})  # 1 MB each
    assert params is not None
    rated = [Rated(Item(f"{i:064x}", "image.texture", "", "1", i, {}), params, 0.0, Draw(seed=i))
             for i in range(10)]
    features = Appearance().features(texture, rated, render, served)
    assert calls == [8, 2] and all(f is not None for f in features)


def test_renders_wait_for_quiet_but_not_for_ever_and_end_when_the_server_stops(engine: Engine) -> None:
    items = [Item(f"{i:064x}", "image.tiles", "", "1", i, {"look": "teal"}) for i in range(12)]
    calls: list[int] = []
    looks = Looks(Appearance(), counting_renderer(engine, calls), 0.3)
    looks.busy = lambda: True  # calls never stop coming
    started = time.monotonic()
    described = looks.describe(items)
    assert (len(described.looks), described.left, calls) == (8, 4, [8])  # one chunk, once the wait ran out
    assert time.monotonic() - started >= 0.3
    stopped = Looks(Appearance(), counting_renderer(engine, calls := []), 60.0)
    stopped.stop.set()
    assert stopped.describe(items).left == 12 and not stopped.describe(items).looks and not calls


def test_looks_carried_from_the_last_fit_are_rendered_again_when_the_models_change(engine: Engine) -> None:
    items = [Item(f"{i:064x}", "image.tiles", "", "1", i, {"look": "ochre"}) for i in range(5)]
    first = Looks(Appearance(), engine_renderer(engine), 60.0).describe(items)
    assert len(first.looks) == 5 and set(first.served) == {"image.tiles"}
    calls: list[int] = []
    looks = Looks(Appearance(), counting_renderer(engine, calls), 60.0)
    again = looks.describe(items, first.looks, known_served=first.served)
    assert not calls and again.looks.keys() == first.looks.keys()  # the same models: carried
    changed = looks.describe(items, first.looks, known_served={"image.tiles": "tiles@0:another"})
    assert calls == [5] and changed.looks.keys() == first.looks.keys()
    call = looks.describe(items, first.looks, render=False, known_served=first.served)
    assert call.left == 0 and call.looks.keys() == first.looks.keys()
    assert looks.describe(items, {}, render=False).left == 5  # a call's fit renders nothing


def test_renders_wait_while_the_server_generates(served: ServerThread, engine: Engine) -> None:
    assert served.running is not None and served.running.feedback is not None
    recommendations = served.running.feedback.recommendations
    time.sleep(0.3)  # past any Recommend call of an earlier test
    assert not recommendations.busy()
    with Client(served.address) as client:
        stream = client.stream_generate("image.faces", {"size": 128}, seed=4, count=64)  # ~0.1 s
        assert next(iter(stream)).HasField("seed")  # sent just before the run starts
        waited = time.monotonic() + 10
        while not recommendations.busy() and time.monotonic() < waited:
            time.sleep(0.001)
        assert recommendations.busy()
        assert sum(event.HasField("artifact") for event in stream) == 64
    assert not recommendations.busy()
    # Raw tensors through ModelInfer count too.
    z, label = np.zeros((64, 100), np.float32), np.zeros(64, np.int64)
    request = oip.ModelInferRequest(model_name="image.digits", inputs=[
        oip.ModelInferRequest.InferInputTensor(name="z", datatype="FP32", shape=list(z.shape)),
        oip.ModelInferRequest.InferInputTensor(name="label", datatype="INT64", shape=list(label.shape))],
        raw_input_contents=[z.tobytes(), label.tobytes()])
    with grpc.insecure_channel(served.address) as channel, ThreadPoolExecutor(1) as pool:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        inferred = pool.submit(lambda: [stub.ModelInfer(request) for _ in range(100)])
        seen = False
        while not inferred.done() and not seen:
            seen = recommendations.busy()
            time.sleep(0)  # the server's threads get the interpreter too
        assert seen and len(inferred.result()) == 100
    assert not recommendations.busy()
    # A run counts until it ends, or until its caller stops reading.
    running = engine.run(engine.prepare("image.tiles", {}, 1, 2, ""))
    next(running)
    assert engine.work.busy()
    running.close()  # a caller that stops reading ends the count too
    assert not engine.work.busy()
    calls: list[int] = []
    looks = Looks(Appearance(), counting_renderer(engine, calls), 0.3)
    looks.busy = engine.work.busy
    items = [Item(f"{i:064x}", "image.tiles", "", "1", i, {"look": "violet"}) for i in range(3)]
    with engine.work.held():
        started = time.monotonic()
        assert len(looks.describe(items).looks) == 3
        assert time.monotonic() - started >= 0.3  # it waited for the generation, then went on


def test_models_loaded_or_reloaded_later_get_their_looks_without_new_feedback(engine: Engine,
                                                                            tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")

    def rate(i: int) -> None:
        ref = {"sha256": f"{i:064x}", "generator": "image.tiles", "modelVersion": "1", "seed": str(70 + i),
               "parameters": {"look": "ochre"}}
        store.record("", f"fan-{i % 2}", fb.FEEDBACK_KIND_THUMBS, ref["sha256"],
                     {"artifact": ref, "thumb": "THUMB_UP"})
    for i in range(6):
        rate(i)
    own = engine_renderer(engine)
    models = {"now": "loading"}  # what the tiles are served by: none yet, then a version, then another

    def renderer(name: str) -> Renderer | None:
        found = own(name)
        if found is None or models["now"] == "loading":
            return None
        return found[0], found[1], f"{found[2]} {models['now']}"
    recommendations = Recommendations(store, lambda: ["image.tiles"], refit_seconds=0.2,
                                      looks=Looks(Appearance(), renderer, 60.0))

    def settled(check: Callable[[Recommender], bool]) -> Recommender:
        deadline = time.monotonic() + 60
        while not check(model := recommendations.model("")):
            assert time.monotonic() < deadline, f"still {model.looks.described} looks, {model.looks_served}"
            time.sleep(0.3)
        return model
    try:
        first = recommendations.model("", refresh=True)
        recommendations.idle()
        time.sleep(1.0)  # the timer ran: with no models, nothing to describe and no refits
        assert recommendations.model("").looks.described == 0 and recommendations.model("").undescribed == 0
        models["now"] = "v1"  # the tiles' model finished loading: no new feedback, yet described
        loaded = settled(lambda m: m.looks.described == 6)
        assert loaded is not first and loaded.looks_served["image.tiles"].endswith(" v1")
        models["now"] = "v2"  # reloaded: rendered again by the new version
        reloaded = settled(lambda m: m.looks_served["image.tiles"].endswith(" v2"))
        assert reloaded.looks.described == 6
        models["now"] = "loading"  # unloaded: the looks stay, and nothing is refitted for it
        time.sleep(1.0)
        recommendations.idle()
        assert recommendations.model("") is reloaded
        rate(6)  # rated while unloaded: undescribed until the same models are back
        waiting = settled(lambda m: m.looks.described == 6 and len(m.items) == 7)
        models["now"] = "v2"
        back = settled(lambda m: m.looks.described == 7)
        assert waiting is not back and back.looks_served["image.tiles"].endswith(" v2")
    finally:
        recommendations.close()
        store.close()


def test_a_render_that_failed_is_tried_again_when_due_without_new_feedback(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(looks_module, "RETRY_FAILED", 0.5)
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    for i in range(5):
        ref = {"sha256": f"{i:064x}", "generator": "image.tiles", "modelVersion": "1", "seed": str(90 + i),
               "parameters": {"look": "teal"}}
        store.record("", "fan", fb.FEEDBACK_KIND_THUMBS, ref["sha256"],
                     {"artifact": ref, "thumb": "THUMB_UP"})
    broken = {"now": True}
    calls: list[int] = []
    failing, working = counting_renderer(engine, calls, fail="image.tiles"), engine_renderer(engine)

    def renderer(name: str) -> Renderer | None:
        return failing(name) if broken["now"] else working(name)
    recommendations = Recommendations(store, lambda: ["image.tiles"], refit_seconds=0.2,
                                      looks=Looks(Appearance(), renderer, 60.0))
    try:
        recommendations.model("", refresh=True)
        deadline = time.monotonic() + 60
        while len(calls) < 6:  # the chunk of 5, then each alone: all failed, none left to render
            assert time.monotonic() < deadline, calls
            time.sleep(0.1)
        recommendations.idle()
        assert recommendations.model("").looks.described == 0
        broken["now"] = False  # the fault passed: once due, tried again with no new event
        while (model := recommendations.model("")).looks.described < 5:
            assert time.monotonic() < deadline, model.looks.described
            time.sleep(0.3)
        time.sleep(1.0)
        recommendations.idle()
        assert recommendations.model("") is model  # nothing failed any more: no more refits
    finally:
        recommendations.close()
        store.close()
