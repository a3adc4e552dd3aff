"""Steered generation through a real server (real SQLite, the shipped models): ``preference``
moves the draws toward what a user rated highly, keeps them apart, names them exactly in the
provenance, and refuses bad input with the field named."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from museforge.client import Client, artifact_ref, feedback_event, field_violations
from museforge.config import Settings
from museforge.server.app import FEEDBACK_DB
from museforge.server.auth import KeyFile
from museforge.v1 import museforge_pb2 as pb
from tests.core.feedback_helpers import fresh_user
from tests.servers import ServerThread

FACES = {"size": 32}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    data = tmp_path_factory.mktemp("steering")
    with ServerThread(Settings(address="127.0.0.1:0", plugins=["image"], data_dir=str(data))) as server:
        yield server


@pytest.fixture()
def client(served: ServerThread) -> Iterator[Client]:
    with Client(served.address, timeout=120) as c:
        yield c


def pixels(artifact: pb.Artifact) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(artifact.data)), dtype=np.float64) / 255.0


def brightness(artifact: pb.Artifact) -> float:
    return float(pixels(artifact).mean())


def rate_by_brightness(client: Client, user: str, rounds: int = 3) -> float:
    """A user who likes bright faces rates three rounds of 20 steered ones; the threshold used."""
    threshold = float(np.median([brightness(a) for a in client.generate("image.faces", FACES, seed=5,
                                                                       count=40).artifacts]))
    for r in range(rounds):
        reply = client.generate("image.faces", {**FACES, "preference": user}, seed=100 + r, count=20)
        for artifact in reply.artifacts:
            seen = brightness(artifact)
            stars = 5 if seen > threshold + 0.03 else 1 if seen < threshold else 3
            client.record_feedback(feedback_event("stars", artifact_ref(artifact), user=user, stars=stars))
    return threshold


def test_a_user_with_no_ratings_gets_the_seeds_own_pixels(client: Client) -> None:
    plain = client.generate("image.faces", FACES, seed=42, count=3).artifacts
    asked = {**FACES, "preference": fresh_user()}
    steered = client.generate("image.faces", asked, seed=42, count=3).artifacts
    for a, b in zip(plain, steered, strict=True):
        np.testing.assert_array_equal(pixels(a), pixels(b))
    note = json.loads(steered[0].metadata["steering"])
    assert note["rated"] == 0 and "no ratings" in note["how"]
    assert "steering" not in plain[0].metadata


def test_steering_moves_toward_what_the_user_liked_and_names_every_draw(client: Client) -> None:
    user = fresh_user("bright")
    rate_by_brightness(client, user)
    gains = []
    for seed in (900, 901, 902):
        steered = client.generate("image.faces", {**FACES, "preference": user}, seed=seed, count=8).artifacts
        plain = client.generate("image.faces", FACES, seed=seed, count=8).artifacts
        gains.append(np.mean([brightness(a) for a in steered]) - np.mean([brightness(a) for a in plain]))
        note = json.loads(steered[0].metadata["steering"])
        assert note["preference"] == user and note["rated"] >= 40 and note["candidates"] >= 16
        # The diversity floor: no two outputs are the same picture.
        images = [pixels(a) for a in steered]
        assert min(np.abs(images[i] - images[j]).mean() for i in range(8) for j in range(i)) > 0.01
    ordinary = client.generate("image.faces", FACES, seed=6, count=40).artifacts
    spread = np.std([brightness(a) for a in ordinary])
    assert np.mean(gains) > spread, (gains, spread)


def test_the_provenance_of_a_steered_artifact_regenerates_it(client: Client) -> None:
    user = fresh_user("again")
    rate_by_brightness(client, user, rounds=1)
    first = client.generate("image.faces", {**FACES, "preference": user}, seed=77, count=4).artifacts
    parameters = json.loads(first[2].metadata["parameters"])
    assert parameters["preference"] is None and len(parameters["draws"]) == 4
    assert all(isinstance(d["seed"], str) for d in parameters["draws"])  # exact through JSON numbers
    again = client.generate("image.faces", parameters, seed=77, count=4).artifacts
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(pixels(a), pixels(b))
    # One draw alone, sent back as a request of one: the same face.
    alone = client.generate("image.faces", {**FACES, "draws": [parameters["draws"][2]]}, seed=1).artifacts
    np.testing.assert_array_equal(pixels(alone[0]), pixels(first[2]))


def test_a_steered_artifact_can_be_rated_and_its_draw_is_no_preset(client: Client) -> None:
    user = fresh_user("loop")
    rate_by_brightness(client, user, rounds=1)
    steered = client.generate("image.faces", {**FACES, "preference": user}, seed=3, count=2).artifacts
    for artifact in steered:
        client.record_feedback(feedback_event("thumbs", artifact_ref(artifact), user=user, thumb="up"))
    presets = client.recommend("presets", user, k=5, refresh=True).recommendations
    assert presets and all("draws" not in p.preset.parameters and "preference" not in p.preset.parameters
                           for p in presets)


def test_streamed_generation_is_steered_too(client: Client) -> None:
    user = fresh_user("stream")
    rate_by_brightness(client, user, rounds=1)
    events = list(client.stream_generate("image.faces", {**FACES, "preference": user}, seed=12, count=3))
    artifacts = [e.artifact for e in events if e.HasField("artifact")]
    assert len(artifacts) == 3 and json.loads(artifacts[0].metadata["steering"])["rated"] == 20


@pytest.mark.parametrize(("generator", "parameters", "count", "field", "words"), [
    ("image.digits", {"preference": "ann"}, 1, "parameters.preference", "unknown parameter"),
    ("image.faces", {"preference": "ann", "interpolate_to": 5}, 1, "parameters.interpolate_to", "walk"),
    ("image.faces", {"preference": "ann", "draws": [{"seed": 1}]}, 1, "parameters.preference", "not both"),
    ("image.faces", {"draws": [{"seed": 1}]}, 2, "parameters.draws", "one per output"),
    ("image.faces", {"preference": "x" * 129}, 1, "parameters.preference", "at most 128"),
    ("image.faces", {"preference": ""}, 1, "parameters.preference", "at least 1"),
    ("image.faces", {"draws": [{"seed": -1}]}, 1, "parameters.draws", ""),
    ("image.faces", {"draws": [{"seed": 1, "index": 5000}]}, 1, "parameters.draws", "1023"),
    ("image.faces", {"draws": [{"seed": 1, "colour": 2}]}, 1, "parameters.draws.0.colour", "not permitted"),
    ("image.faces", {"draws": [{"seed": 1, "near": {"seed": 2}, "spread": 0}]}, 1, "parameters.draws", "0"),
    ("image.texture", {"width": 2048, "height": 2048, "tileable": False,
                       "draws": [{"seed": 1, "index": 1023}]}, 1, "parameters.draws", "max_output_bytes"),
])
def test_bad_steering_input_names_the_field(client: Client, generator: str, parameters: dict[str, object],
                                            count: int, field: str, words: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.generate(generator, parameters, seed=1, count=count)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = dict(field_violations(caught.value))
    assert any(f.startswith(field) for f in found), found
    assert any(words in text for f, text in found.items() if f.startswith(field)), found


def test_nesting_past_eight_levels_is_refused(client: Client) -> None:
    draw: dict[str, object] = {"seed": 1}
    for level in range(9):
        draw = {"seed": level + 2, "near": draw, "spread": 0.5}
    with pytest.raises(grpc.RpcError) as caught:
        client.generate("image.faces", {"draws": [draw]}, seed=1)
    assert "at most 8" in dict(field_violations(caught.value)).get("parameters.draws", "")


@contextmanager
def two_keys(tmp_path: Path) -> Iterator[tuple[Client, Client]]:
    """A server with auth on and clients of two keys: a studio's and a rival's."""
    keys = tmp_path / "api_keys.json"
    store = KeyFile(keys)
    studio, rival = (store.create(name, ["generate"])[0] for name in ("studio", "rival"))
    settings = Settings(address="127.0.0.1:0", auth=True, api_keys_file=str(keys), plugins=["image"],
                        data_dir=str(tmp_path))
    with ServerThread(settings) as server, Client(server.address, timeout=120, api_key=studio) as mine, \
            Client(server.address, timeout=120, api_key=rival) as theirs:
        yield mine, theirs


def test_one_keys_users_never_steer_anothers(tmp_path: Path) -> None:
    with two_keys(tmp_path) as (mine, theirs):
        rate_by_brightness(mine, "ann", rounds=1)
        assert json.loads(mine.generate("image.faces", {**FACES, "preference": "ann"}, seed=2)
                          .artifacts[0].metadata["steering"])["rated"] == 20
        # The rival key's "ann" is another person: nothing rated, the seed's own draws.
        reply = theirs.generate("image.faces", {**FACES, "preference": "ann"}, seed=2)
        assert json.loads(reply.artifacts[0].metadata["steering"])["rated"] == 0


def test_another_keys_events_cannot_change_what_an_artifact_looks_like(tmp_path: Path) -> None:
    # What a rated artifact looks like is rendered from its provenance; a rival that sends one
    # artifact's sha256 with another's provenance must not decide it for everyone else.
    with two_keys(tmp_path) as (mine, theirs):
        made = sorted(theirs.generate("image.faces", FACES, seed=500, count=12).artifacts, key=brightness)
        for rank, (artifact, opposite) in enumerate(zip(made, reversed(made), strict=True)):
            ref = artifact_ref(opposite)  # each sha256 sent with another's recipe
            ref.sha256 = artifact_ref(artifact).sha256
            theirs.record_feedback(feedback_event("stars", ref, user="mallory", stars=4 if rank % 2 else 2))
        theirs.generate("image.faces", {**FACES, "preference": "mallory"}, seed=1)
        # The studio's own user likes the bright ones of the very same artifacts.
        for artifact in mine.generate("image.faces", FACES, seed=500, count=12).artifacts:
            mine.record_feedback(feedback_event("stars", artifact_ref(artifact), user="bob",
                                                stars=5 if brightness(artifact) > brightness(made[5]) else 1))
        plain = np.mean([brightness(a) for a in
                         mine.generate("image.faces", FACES, seed=11, count=8).artifacts])
        steered = np.mean([brightness(a) for a in mine.generate(
            "image.faces", {**FACES, "preference": "bob"}, seed=11, count=8).artifacts])
        assert steered > plain, (steered, plain)


def test_steering_reads_the_store_while_a_write_waits_on_another_process_lock(tmp_path: Path) -> None:
    # A write waits (up to its busy timeout) for another process's lock; reading a user's
    # ratings to steer by must not queue behind it, or steered calls hold generation's threads.
    settings = Settings(address="127.0.0.1:0", plugins=["image"], data_dir=str(tmp_path))
    with ServerThread(settings) as server, Client(server.address, timeout=120) as client:
        artifact = client.generate("image.faces", FACES, seed=3).artifacts[0]
        holder = sqlite3.connect(tmp_path / FEEDBACK_DB, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        outcome: list[object] = []
        writing = threading.Thread(target=lambda: outcome.append(client.record_feedback(
            feedback_event("stars", artifact_ref(artifact), user="ann", stars=5))))
        try:
            writing.start()
            time.sleep(0.5)  # the write is waiting on the lock by now
            reply = client.generate("image.faces", {**FACES, "preference": "ann"}, seed=4)
            assert len(reply.artifacts) == 1
            assert writing.is_alive()  # the steered call did not wait for the write to give up
        finally:
            holder.execute("ROLLBACK")
            holder.close()
            writing.join(60)
        assert len(outcome) == 1  # and the write went in once the lock was let go
