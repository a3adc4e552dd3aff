"""Triton's model repository extension of ``inference.GRPCInferenceService``: index, load, unload.

Loading builds and warms an ONNX Runtime session (seconds for a big model), so load and
unload run in the worker executor; the event loop keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from typing import Any

import grpc

from ..engine.catalogue import Engine
from ..engine.errors import (
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    NotFound,
    RequestError,
)
from ..inference import grpc_service_pb2 as pb
from ..runtime.repository import LoadRefused, UnknownModel
from .museforge_service import abort_with, correlated

log = logging.getLogger("museforge.oip")

Context = grpc.aio.ServicerContext[Any, Any]
# Triton's unload takes "unload_dependents" (ensembles); museforge models have no dependents.
UNLOAD_PARAMETERS = frozenset({"unload_dependents"})


def check_parameters(parameters: Mapping[str, pb.ModelRepositoryParameter], allowed: frozenset[str]) -> None:
    """Triton's load parameters (a "config" override, "file:" contents) are not served here."""
    unknown = sorted(set(parameters) - allowed)
    if unknown:
        served = ", ".join(sorted(allowed)) or "none"
        raise InvalidArgument(f"unsupported parameters {unknown}; supported: {served}",
                              [FieldViolation(f"parameters[{k!r}]", f"not supported; supported: {served}")
                               for k in unknown])


class RepositoryMethods:
    """The three RPCs; mixed into InferenceService, whose engine, executor and plans they use."""

    engine: Engine
    executor: Executor
    _plans: dict[tuple[str, int], Any]  # per model version (oip_service.ModelPlan)
    # Told each model's readiness after a load or unload (the server's health entries follow).
    on_change: Callable[[str, bool], Awaitable[None]] | None = None
    workers = 1  # server processes sharing the port (serve --workers)

    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: Context
    ) -> pb.RepositoryIndexResponse:
        entries = self.engine.runtime.repository.index(ready_only=request.ready)
        return pb.RepositoryIndexResponse(models=[
            pb.RepositoryIndexResponse.ModelIndex(name=e.name, version=e.version, state=e.state.value,
                                                  reason=e.reason)
            for e in entries
        ])

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: Context
    ) -> pb.RepositoryModelLoadResponse:
        await self._change(context, self.engine.runtime.repository.load, request.model_name,
                           request.parameters, frozenset())
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: Context
    ) -> pb.RepositoryModelUnloadResponse:
        await self._change(context, self.engine.runtime.repository.unload, request.model_name,
                           request.parameters, UNLOAD_PARAMETERS)
        return pb.RepositoryModelUnloadResponse()

    async def _change(self, context: Context, work: Callable[[str], object], name: str,
                      parameters: Mapping[str, pb.ModelRepositoryParameter], allowed: frozenset[str]
                      ) -> None:
        """Run a load or unload in a worker thread; its failure becomes the call's status."""
        try:
            check_parameters(parameters, allowed)
            if self.workers > 1:  # one worker changed and the others not: calls would answer at random
                raise FailedPrecondition(
                    f"model {name!r}: this server runs {self.workers} worker processes, each with the models "
                    "it loaded at start, and a load or unload would reach only the one taking this call: "
                    "restart the server to change its models (or serve with one worker)")
            await asyncio.get_running_loop().run_in_executor(self.executor, work, name)
        except UnknownModel as exc:
            error: RequestError = NotFound(str(exc))
        except LoadRefused as exc:  # the version on disk cannot serve: fix it, then load again
            log.warning("%s", exc)
            error = FailedPrecondition(str(exc))
        except RequestError as exc:
            error = exc
        except Exception as exc:  # a fault of ours: logged under an id
            log.error("%s of %s failed", getattr(work, "__name__", "change"), name, exc_info=exc)
            error = correlated(Internal(f"model {name!r}: {type(exc).__name__}"), f"repository {name}")
        else:
            # The old session's plan: _plan would replace it on the next call anyway, but
            # dropping it now lets the old session go at once.
            for key in [k for k in self._plans if k[0] == name]:  # no plan keeps a retired session
                del self._plans[key]
            if self.on_change is not None:
                await self.on_change(name, self.engine.runtime.models[name].ready)
            return
        await abort_with(context, error)
