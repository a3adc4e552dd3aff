"""Latent draws: seeds, truncation and walks (museforge.latents)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from museforge import Variations, latents
from museforge.client import Client, field_violations
from museforge.engine.codecs.encoders import read_png_provenance


def test_truncation_one_gives_the_seeds_own_draws_bit_for_bit() -> None:
    expected = np.random.default_rng(42).standard_normal((3, 8)).astype(np.float32)
    drawn = [z for _, z in latents((8,), 42, 3, Variations())]
    np.testing.assert_array_equal(np.stack(drawn), expected)


def test_truncation_scales_every_draw_and_both_ends_of_a_walk() -> None:
    plain = [z for _, z in latents((8,), 7, 2, Variations(interpolate_to=9, frames=4))]
    half = [z for _, z in latents((8,), 7, 2, Variations(interpolate_to=9, frames=4, truncation=0.5))]
    assert len(half) == 8 and all(z.dtype == np.float32 for z in half)
    for a, b in zip(plain, half, strict=True):
        np.testing.assert_allclose(b, a * 0.5, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("generator", ["image.tiles", "mesh.props"])
def test_frames_without_a_seed_to_walk_to_is_refused(client: Client, generator: str) -> None:
    """frames alone was ignored without a word (one output, not a walk); mesh.props already refused
    interpolate_family alone. frames at its default, as forms send it, is no walk asked for."""
    with pytest.raises(grpc.RpcError) as refused:
        client.generate(generator, {"frames": 4}, seed=1, fmt="obj" if "mesh" in generator else "png")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, problem)] = field_violations(refused.value)
    assert field == "parameters.frames" and "needs interpolate_to" in problem, problem
    assert len(client.generate("image.tiles", {"frames": 8}, seed=1).artifacts) == 1


def test_a_seed_past_2_53_sent_as_a_number_is_refused_not_rounded(client: Client) -> None:
    """A Struct holds numbers as doubles: 6739438659817262002 arrived as ...080 and made another
    picture without a word; from 2^63 the refusal spoke of parsing a string."""
    from google.protobuf import struct_pb2

    from museforge.v1 import museforge_pb2 as pb

    def asked(value: float | str) -> pb.GenerateRequest:
        parameters = struct_pb2.Struct()
        parameters.update({"interpolate_to": value, "frames": 2})
        return pb.GenerateRequest(generator="image.tiles", parameters=parameters, seed=1)

    for big in (6739438659817262002, 2**63):
        with pytest.raises(grpc.RpcError) as refused:
            client.stub.Generate(asked(float(big)), timeout=60)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        [(field, problem)] = field_violations(refused.value)
        assert field == "parameters.interpolate_to" and "decimal text" in problem, problem
    walk = client.stub.Generate(asked("6739438659817262002"), timeout=60)
    parameters = read_png_provenance(walk.artifacts[-1].data)["parameters"]
    assert "6739438659817262002" in parameters, parameters  # as text, exactly
    assert len(client.stub.Generate(asked(float(2**53)), timeout=60).artifacts) == 2
