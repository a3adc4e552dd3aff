"""A misspelt generator, effect or model is answered with the nearest name before the list of all,
and an output format may be asked for by its files' extension (jpg), as the command line takes it."""

from __future__ import annotations

import grpc
import pytest

from museforge.client import Client, InvalidArgument, NotFound, field_violations
from museforge.inference import grpc_service_pb2 as oip
from museforge.v1 import jobs_pb2
from museforge.v1 import museforge_pb2 as pb


def test_a_misspelt_generator_or_effect_is_answered_with_the_nearest_name(client: Client) -> None:
    near = r"unknown generator 'image\.digit' \(did you mean 'image\.digits'\?\); known generators: .*faces"
    with pytest.raises(NotFound, match=near):
        client.generate("image.digit")
    with pytest.raises(NotFound, match=r"'effect\.upscal' \(did you mean 'effect\.upscale'\?\); known eff"):
        client.apply_effect("effect.upscal", [b""])
    with pytest.raises(NotFound, match=r"unknown generator 'zzz'; known"):  # nothing near: the list alone
        client.generate("zzz")


def test_a_misspelt_job_step_is_answered_with_the_nearest_effect(client: Client) -> None:
    spec = jobs_pb2.JobSpec(output_pattern="out.####.png")
    spec.steps.add(effect="effect.denois")
    spec.input.pattern, spec.input.first_frame, spec.input.last_frame = "in.####.png", 1, 2
    with pytest.raises(InvalidArgument) as caught:
        client.submit_job(spec)
    said = dict(caught.value.violations)["job.steps[0].effect"]
    assert "(did you mean 'effect.denoise'?); known effects: effect.denoise" in said, said


def test_a_misspelt_model_is_answered_with_the_nearest_model(client: Client) -> None:
    with pytest.raises(NotFound, match=r"unknown model 'image\.digit' \(did you mean 'image\.digits'\?\); "
                                       r"models: .*image\.faces"):
        client.load_model("image.digit")
    with pytest.raises(grpc.RpcError) as caught:  # the inference protocol's own lookup
        client.inference.ModelMetadata(oip.ModelMetadataRequest(name="image.digit"), timeout=60)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "(did you mean 'image.digits'?)" in str(caught.value.details())
    with pytest.raises(InvalidArgument) as refused:
        client.recommend("presets", user="ann", generator="image.digit")
    assert "(did you mean 'image.digits'?)" in dict(field_violations(refused.value))["generator"]


@pytest.mark.parametrize("fmt", ["jpg", "JPG", "jpeg"])
def test_jpg_names_the_jpeg_format(client: Client, fmt: str) -> None:
    # Before, the server refused jpg: "'jpg' is not supported ... use one of ['png', ..., 'jpeg', ...]".
    made = client.generate("image.digits", {"digit": 7}, seed=42, fmt=fmt).artifacts[0]
    assert made.format == "jpeg" and made.filename.endswith(".jpg") and made.data[:2] == b"\xff\xd8"
    by_hand = Client.request("image.digits", {"digit": 7}, seed=42, fmt=fmt)
    on_the_stub = client.stub.Generate(by_hand, timeout=60)
    assert on_the_stub.artifacts[0].data == made.data  # the server reads it, not the client
    effect = client.apply_effect("effect.denoise", [made.data], seed=1, fmt=fmt).artifacts[0]
    assert effect.format == "jpeg" and effect.media_type == "image/jpeg"


@pytest.mark.parametrize(("generator", "fmt", "meant"), [("music.melody", "midi", "mid"),
                                                      ("mesh.props", "USD", "usda")])
def test_other_formats_by_their_files_extension(client: Client, generator: str, fmt: str, meant: str) -> None:
    assert client.generate(generator, seed=3, fmt=fmt).artifacts[0].format == meant


def test_an_alias_of_a_format_not_written_is_refused_in_the_callers_words(client: Client) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.generate("music.melody", fmt="jpg")
    assert dict(caught.value.violations)["format"].startswith("'jpg' is not supported by music.melody")


def test_the_unknown_name_of_a_request_made_by_hand_is_answered_too(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.stub.ApplyEffect(pb.ApplyEffectRequest(effect="effect.denoize"), timeout=60)
    assert "(did you mean 'effect.denoise'?)" in str(caught.value.details())
