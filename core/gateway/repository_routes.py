"""Triton's model repository extension in the OIP's REST form: index, load and unload over HTTP.

``POST /v2/repository/index`` answers a JSON array (Triton's form, not an object);
``POST /v2/repository/models/{model}/load`` and ``.../unload`` answer 200 and ``{}``. Each
request becomes the ``inference.GRPCInferenceService`` call a gRPC client makes, so the
admin scope, the validation and the messages are the gRPC ones; errors come back as
``{"error": "<message>"}`` like every /v2 route.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.message import Message

from ..inference import grpc_service_pb2 as pb
from .json_codec import bad_request
from .oip_routes import OIP, parameter
from .routes import Route

LoadOrUnload = pb.RepositoryModelLoadRequest | pb.RepositoryModelUnloadRequest


def _fields(document: Any, allowed: frozenset[str]) -> dict[str, Any]:
    """The body as an object (an empty body is ``{}``); a field Triton does not define is refused."""
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise bad_request("body", f"must be a JSON object, got {type(document).__name__}")
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise bad_request(unknown[0], f"unknown field; this route takes {', '.join(sorted(allowed))}")
    return document


def index_request(variables: Mapping[str, str], document: Any) -> pb.RepositoryIndexRequest:
    ready = _fields(document, frozenset({"ready"})).get("ready", False)
    if not isinstance(ready, bool):
        raise bad_request("ready", "must be true or false")
    return pb.RepositoryIndexRequest(ready=ready)


def change_request(request: type[LoadOrUnload]) -> Callable[[Mapping[str, str], Any], Message]:
    """A load or unload request: the model from the path, ``{"parameters": {...}}`` from the body
    (which parameters the server takes is its own check, the same as over gRPC)."""
    def build(variables: Mapping[str, str], document: Any) -> Message:
        parameters = _fields(document, frozenset({"parameters"})).get("parameters", {})
        if not isinstance(parameters, dict):
            raise bad_request("parameters", "must be a JSON object")
        message = request(model_name=variables["model"])
        for key, value in parameters.items():
            message.parameters[key].CopyFrom(
                parameter(pb.ModelRepositoryParameter, value, f"parameters.{key}"))
        return message

    return build


def index_reply(reply: Message) -> tuple[int, Any]:
    """Triton's index: an array; "version" is left out for a model that never loaded one."""
    assert isinstance(reply, pb.RepositoryIndexResponse)
    entries: list[dict[str, str]] = []
    for model in reply.models:
        entry = {"name": model.name, "version": model.version, "state": model.state, "reason": model.reason}
        if not model.version:
            del entry["version"]
        entries.append(entry)
    return 200, entries


def done(reply: Message) -> tuple[int, dict[str, Any]]:
    return 200, {}


REPOSITORY_ROUTES: tuple[Route, ...] = (
    Route("POST", "/v2/repository/index", OIP + "RepositoryIndex", pb.RepositoryIndexRequest,
          pb.RepositoryIndexResponse, "Every model with its version, state and reason (admin).",
          build=index_request, render=index_reply),
    Route("POST", "/v2/repository/models/{model}/load", OIP + "RepositoryModelLoad",
          pb.RepositoryModelLoadRequest, pb.RepositoryModelLoadResponse,
          "Loads (or reloads) a model's newest version beside the serving one (admin).",
          build=change_request(pb.RepositoryModelLoadRequest), render=done),
    Route("POST", "/v2/repository/models/{model}/unload", OIP + "RepositoryModelUnload",
          pb.RepositoryModelUnloadRequest, pb.RepositoryModelUnloadResponse,
          "Unloads a model; it answers 503 until loaded again (admin).",
          build=change_request(pb.RepositoryModelUnloadRequest), render=done),
)
