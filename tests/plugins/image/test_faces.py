"""image.faces on the shipped model: sizes, walks, formats and bad parameters."""

from __future__ import annotations

import io
import itertools

import grpc
import numpy as np
import pytest
from PIL import Image

from museforge.client import Client, field_violations
from museforge.plugins.image import faces


def test_serving_constants_match_the_trained_model() -> None:
    from museforge.plugins.image import faces_gan

    assert faces.LATENT_DIM == faces_gan.LATENT_DIM


def test_sizes_and_determinism(client: Client) -> None:
    reply = client.generate("image.faces", {"size": 96}, seed=4, count=3)
    assert [Image.open(io.BytesIO(a.data)).size for a in reply.artifacts] == [(96, 96)] * 3
    again = client.generate("image.faces", {"size": 96}, seed=4, count=3)
    assert [a.data for a in reply.artifacts] == [a.data for a in again.artifacts]


def test_morph_sequence(client: Client) -> None:
    reply = client.generate("image.faces", {"size": 32, "interpolate_to": 8, "frames": 6},
                            seed=2)
    frames = [np.asarray(Image.open(io.BytesIO(a.data)), np.float32) / 255 for a in reply.artifacts]
    assert len(frames) == 6 and [a.index for a in reply.artifacts] == list(range(6))
    steps = [np.abs(b - a).mean() for a, b in itertools.pairwise(frames)]
    assert max(steps) < np.abs(frames[-1] - frames[0]).mean()


def test_a_walk_ends_on_a_64_bit_seed_exactly(client: Client) -> None:
    far = 2**63 + 2**60 + 1  # past 2^53, where a JSON number loses its last digits
    walk = client.generate("image.faces", {"size": 32, "interpolate_to": far, "frames": 2}, seed=1)
    alone = client.generate("image.faces", {"size": 32}, seed=far)
    assert walk.artifacts[-1].data.split(b"IDAT")[1] == alone.artifacts[0].data.split(b"IDAT")[1]
    assert str(far) in walk.artifacts[-1].metadata["parameters"]


@pytest.mark.parametrize(("params", "field"),
                         [({"size": 8}, "parameters.size"), ({"size": 4096}, "parameters.size"),
                          ({"frames": 1}, "parameters.frames"),
                          ({"interpolate_to": -3}, "parameters.interpolate_to")])
def test_bad_parameters(client: Client, params: dict[str, object], field: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        client.generate("image.faces", params)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in field_violations(info.value)]


def test_count_times_frames_is_bounded(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as info:
        client.generate("image.faces", {"interpolate_to": 1, "frames": 100}, count=10)
    assert [f for f, _ in field_violations(info.value)] == ["parameters.frames"]
