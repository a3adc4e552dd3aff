"""The version policy a model serves under, as Triton's ModelConfig says it: a Triton client
reading the config (``tritonclient``'s ``get_model_config``) learns which versions it may ask for."""

from __future__ import annotations

from ..inference import grpc_service_pb2 as pb
from ..runtime.versions import VersionPolicy


def version_policy_message(policy: VersionPolicy) -> pb.ModelVersionPolicy:
    if policy.kind == "all":
        return pb.ModelVersionPolicy(all=pb.ModelVersionPolicy.All())
    if policy.kind == "specific":
        return pb.ModelVersionPolicy(specific=pb.ModelVersionPolicy.Specific(versions=policy.versions))
    return pb.ModelVersionPolicy(latest=pb.ModelVersionPolicy.Latest(num_versions=policy.count))
