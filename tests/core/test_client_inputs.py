"""What the Python client accepts before any call: numpy values, paths, seeds, addresses, and a
closed client; each mistake a plain Python error naming what is wrong."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

import museforge
from museforge.client import CLIENT_TIMEOUT, Client, DeadlineExceeded, NotFound
from museforge.engine.codecs.png_writer import write_png
from tests.servers import ServerThread, inline_engine


@pytest.fixture(scope="module")
def client(server: ServerThread) -> Client:
    return Client(server.address, timeout=60)


def test_numpy_values_are_sent_as_the_numbers_they_hold(client: Client) -> None:
    from decimal import Decimal
    from fractions import Fraction

    from google.protobuf import struct_pb2

    from museforge.client import to_struct

    listed = struct_pb2.ListValue()
    listed.extend([1, 2])
    sent = to_struct({"a": Decimal("0.5"), "b": Fraction(1, 4), "c": listed})
    assert sent["a"] == 0.5 and sent["b"] == 0.25 and list(sent["c"]) == [1, 2]
    plain = client.generate("image.digits", {"digit": 7}, seed=3)
    numpy = client.generate("image.digits", {"digit": np.int64(7)}, seed=np.uint32(3))
    assert [a.data for a in numpy.artifacts] == [a.data for a in plain.artifacts]


@pytest.mark.parametrize(("parameters", "said"), [
    ({"digit": object()}, "parameters.digit: object cannot be sent"),
    ({"deep": {"list": [1, {2: 3}]}}, "parameters.deep.list[1]: names are text, got 2"),
])
def test_a_value_json_cannot_carry_is_named(client: Client, parameters: dict[str, object], said: str) -> None:
    with pytest.raises(TypeError, match=said.replace("[", r"\[").replace("]", r"\]")):
        client.generate("image.digits", parameters)


@pytest.mark.parametrize(("seed", "error", "said"), [
    (-1, ValueError, "seed: 0 to 2"), (2**64, ValueError, "seed: 0 to 2"),
    (1.5, TypeError, "seed: a whole number"), (True, TypeError, "seed: a whole number"),
])
def test_a_seed_out_of_range_is_named(client: Client, seed: object, error: type[Exception],
                                      said: str) -> None:
    with pytest.raises(error, match=said):
        client.generate("image.digits", {}, seed=seed)


@pytest.mark.parametrize(("count", "error", "said"), [
    (0, ValueError, "count: 1 to 2"), (-1, ValueError, "count: 1 to 2"), (2**32, ValueError, "count: 1 to 2"),
    (True, TypeError, "count: a whole number, got bool"), (2.0, TypeError, "count: a whole number"),
])
def test_a_count_out_of_range_is_named_by_every_method_taking_one(client: Client, count: object,
                                                                  error: type[Exception], said: str) -> None:
    # Before, 0 made one artifact, True was taken as 1 and -1 failed in protobuf naming no field.
    with pytest.raises(error, match=said):
        client.generate("image.digits", {}, count=count)
    with pytest.raises(error, match=said):
        list(client.stream_generate("image.digits", {}, count=count))
    with pytest.raises(error, match=said):
        Client.request("image.digits", count=count)
    assert len(client.generate("image.digits", {}, count=np.int64(2)).artifacts) == 2


def test_effect_inputs_may_be_paths(client: Client, tmp_path: Path) -> None:
    picture = write_png(np.arange(24 * 24, dtype=np.uint16).reshape(24, 24).astype(np.uint8))
    (tmp_path / "ramp.png").write_bytes(picture)
    by_path = client.apply_effect("effect.denoise", [tmp_path / "ramp.png"], seed=1)
    by_name = client.apply_effect("effect.denoise", [str(tmp_path / "ramp.png")], seed=1)
    by_bytes = client.apply_effect("effect.denoise", [("ramp.png", picture)], seed=1)
    assert by_path.artifacts[0].data == by_name.artifacts[0].data == by_bytes.artifacts[0].data
    with pytest.raises(TypeError, match=r"inputs\[1\]: a file's bytes, a \(name, bytes\) pair or a path"):
        client.apply_effect("effect.denoise", [picture, 42])


def test_schema_of_a_generator_or_an_effect_or_not_found(client: Client) -> None:
    assert "digit" in client.schema("image.digits")["properties"]
    assert "sigma" in client.schema("effect.denoise")["properties"]
    with pytest.raises(NotFound, match=r"'image\.digit' \(did you mean 'image\.digits'\?\); this server"):
        client.schema("image.digit")
    with pytest.raises(KeyError):  # as it raised before it said NotFound
        client.schema("image.digit")


def test_a_per_call_timeout_overrides_the_clients(client: Client) -> None:
    with pytest.raises(DeadlineExceeded):
        client.generate("image.faces", {}, count=8, timeout=0.001)
    assert len(client.generate("image.digits", {}, timeout=30).artifacts) == 1


def test_every_call_the_client_makes_carries_a_deadline() -> None:
    # Read from the code: a call answered in under a millisecond beats any deadline a test could
    # set, so a timing test could not tell a missing one. ExportFeedback had none.
    import ast
    import inspect

    import museforge.client

    source = "\n".join(inspect.getsource(cls) for cls in museforge.client.Client.__mro__[:-1])  # and bases
    tree = ast.parse(source)
    stubs = {"stub", "inference", "jobs", "operations", "feedback", "health_stub"}
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr[:1].isupper()
             and isinstance(node.func.value, ast.Attribute) and node.func.value.attr in stubs]
    methods = {call.func.attr for call in calls}  # type: ignore[attr-defined]
    assert {"ExportFeedback", "RecordFeedback", "Recommend", "WatchJob", "ModelInfer"} & methods >= {
        "ExportFeedback", "RecordFeedback", "Recommend", "WatchJob"}
    untimed = {call.func.attr for call in calls  # type: ignore[attr-defined]
               if not any(keyword.arg == "timeout" for keyword in call.keywords)}
    assert untimed == set(), untimed  # a watch too: its own timeout, None (a job's length) left out


def test_addresses_and_timeouts_are_checked_when_the_client_is_made() -> None:
    with pytest.raises(ValueError, match="not a URL"):
        Client("http://127.0.0.1:50051")
    with pytest.raises(TypeError, match="HOST:PORT text"):
        Client(None)
    with pytest.raises(ValueError, match="timeout: seconds above 0"):
        Client("127.0.0.1:50051", timeout="5")
    assert Client("localhost").address == "localhost:50051"  # gRPC alone would dial port 443


def test_a_closed_client_raises_and_does_not_crash() -> None:
    # In a process of its own: before, health() on a closed client ended the process (SIGSEGV).
    script = ("from museforge.client import Client\n"
              "c = Client('127.0.0.1:1'); c.close()\n"
              "try:\n    c.health()\nexcept ValueError as e:\n    print('raised', e)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "raised" in done.stdout, (done.returncode, done.stderr[-500:])


def test_every_public_method_and_name_of_the_client_says_what_it_does() -> None:
    import museforge.client

    public = {f"Client.{name}": getattr(Client, name) for name in dir(Client)  # with the inherited calls
              if not name.startswith("_") and callable(getattr(Client, name))}
    public.update((name, getattr(museforge.client, name)) for name in museforge.client.__all__)
    undocumented = sorted(name for name, member in public.items()
                          if not (getattr(member, "__func__", member).__doc__ or "").strip())
    assert undocumented == []


def test_one_input_alone_is_a_list_of_one(client: Client, tmp_path: Path) -> None:
    # Before, a str was read char by char as paths, a Path was "not iterable", bytes were ints.
    picture = write_png(np.arange(24 * 24, dtype=np.uint16).reshape(24, 24).astype(np.uint8))
    (tmp_path / "ramp.png").write_bytes(picture)
    path = tmp_path / "ramp.png"
    for alone, listed in ((str(path), [path]), (path, [path]), (picture, [picture]),
                          (bytearray(picture), [picture])):
        made = client.apply_effect("effect.denoise", alone, seed=1).artifacts
        assert [a.data for a in made] == [a.data for a in client.apply_effect(
            "effect.denoise", listed, seed=1).artifacts], alone  # the name, if any, is in the provenance
    for wrong in (42, {"ramp.png": picture}):
        with pytest.raises(TypeError, match=r"inputs: a list of file bytes, \(name, bytes\) pairs or paths"):
            client.apply_effect("effect.denoise", wrong)


@pytest.mark.parametrize("timeout", ["5", -1, 0, True, float("inf"), float("nan"), 1e12])
def test_a_per_call_timeout_is_checked_as_the_clients_is(client: Client, timeout: object) -> None:
    # Before, "5" failed adding a float to a str, -1 was sent and expired, 1e12 wrapped and expired.
    with pytest.raises(ValueError, match="timeout: seconds above 0"):
        Client("127.0.0.1:50051", timeout=timeout)
    with pytest.raises(ValueError, match="timeout: seconds above 0"):
        client.generate("image.digits", timeout=timeout)
    with pytest.raises(ValueError, match="timeout: seconds above 0"):
        list(client.stream_apply_effect("effect.denoise", [b""], timeout=timeout))


class Lingers:
    """A generator that takes its time: far past the client's limit in the test below."""

    @museforge.hookimpl
    def register_generators(self, register: Callable[[Any], None]) -> None:
        register(museforge.Generator("test.lingers", "image", Empty, lingers, ("png",)))


class Empty(BaseModel):
    pass


def lingers(ctx: museforge.GenerationContext, params: Empty, seed: int, count: int) -> Iterator[Any]:
    for _ in range(40):  # 2 s, against a client limit of 0.3 s
        ctx.check_cancelled()
        time.sleep(0.05)
    yield museforge.Media("image", np.zeros((4, 4), np.float32), 0)


def test_a_per_call_timeout_of_none_lifts_the_clients() -> None:
    """A call's timeout left out, or CLIENT_TIMEOUT, is the client's own; None is no deadline.
    (A 1 µs client limit once stood in for the slow call: a call could beat it.)"""
    engine = inline_engine(("lingers", Lingers()))
    with ServerThread(engine.settings, engine) as running, Client(running.address, timeout=0.3) as hurried:
        with pytest.raises(DeadlineExceeded):  # left out: the client's own
            hurried.generate("test.lingers", {})
        with pytest.raises(DeadlineExceeded):  # or named, for a wrapper that passes its own on
            hurried.generate("test.lingers", {}, timeout=CLIENT_TIMEOUT)
        assert len(hurried.generate("test.lingers", {}, timeout=None).artifacts) == 1
        assert len(list(hurried.stream_generate("test.lingers", {}, timeout=None))) >= 1


@pytest.mark.parametrize("parameters", [[("digit", 7)], "digit=7", 7])
def test_parameters_that_are_no_mapping_are_named(client: Client, parameters: object) -> None:
    # Before, a list of pairs failed in protobuf: 'list' object has no attribute 'items'.
    named = f"parameters: a mapping of names to values.*got {type(parameters).__name__}"
    with pytest.raises(TypeError, match=named):
        client.generate("image.digits", parameters)
    with pytest.raises(TypeError, match="parameters: a mapping"):
        Client.effect_request("effect.denoise", [b""], parameters)


def test_recommend_takes_each_kind_singular_or_plural_and_lists_them_otherwise(client: Client) -> None:
    for kind in ("artifact", "artifacts", "preset", "Presets"):
        client.recommend(kind, user="ann", k=3)
    for kind in ("generator", "generators"):  # every served generator, none rated yet
        assert client.recommend(kind, user="ann", k=3).recommendations[0].generator
    for wrong in ("artefacts", ""):
        with pytest.raises(ValueError, match=f"kind: one of generators, presets, artifacts.*got '{wrong}'"):
            client.recommend(wrong, user="ann")



def test_feedback_event_names_the_argument_a_mistake_is_in(client: Client) -> None:
    import grpc

    from museforge.client import artifact_ref, feedback_event, field_violations

    ref = artifact_ref(client.generate("image.digits", {"digit": 4}, seed=2).artifacts[0])
    # Before, protobuf's own errors named neither the argument nor what it takes
    # ('unknown enum label "THUMB_SIDEWAYS"', "'float' object cannot be interpreted as an integer").
    mistakes: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"kind": "rating"}, ValueError, "kind: one of thumbs, stars, pick, keep, shown; got 'rating'"),
        ({"kind": "thumbs", "thumb": "sideways"}, ValueError, "thumb: one of up, down; got 'sideways'"),
        ({"kind": "thumbs", "thumb": True}, TypeError, "thumb: text, one of up, down; got bool"),
        ({"kind": "stars", "stars": float("nan")}, TypeError, "stars: a whole number, 1 to 5; got float nan"),
        ({"kind": "stars", "stars": "5"}, TypeError, "stars: a whole number, 1 to 5; got str '5'"),
        ({"kind": "stars", "stars": True}, TypeError, "stars: a whole number, 1 to 5; got bool True"),
        ({"kind": "stars", "stars": -1}, ValueError, "stars: 1 to 5; got -1"),
    ]
    for arguments, error, said in mistakes:
        with pytest.raises(error) as caught:
            feedback_event(arguments.pop("kind"), ref, user="ann", **arguments)
        assert str(caught.value) == said
    # A count the event can carry goes to the server, which says what is allowed.
    with pytest.raises(grpc.RpcError) as refused:
        client.record_feedback(feedback_event("stars", ref, user="ann", stars=np.int64(6)))
    assert field_violations(refused.value) == [("event.stars", "must be 1 to 5 stars, got 6")]
    stored = client.record_feedback(feedback_event("Thumbs", ref, user="ann", thumb="UP"))
    assert stored.thumb == 1 and stored.kind == 1
