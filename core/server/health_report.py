"""What the health service says: the services, and one entry per plugin and model as detail."""

from __future__ import annotations

from google.longrunning import operations_pb2
from grpc_health.v1 import _async as health_aio  # the asyncio servicer (health.aio)
from grpc_health.v1 import health_pb2

from ..engine.catalogue import Engine
from ..engine.effect import Effect
from ..engine.generator import Generator
from ..inference import grpc_service_pb2 as oip_pb
from ..runtime.sessions import LoadedModel
from ..v1 import feedback_pb2, jobs_pb2
from ..v1 import museforge_pb2 as pb
from .call_pool import CallPool

MUSEFORGE_SERVICE = pb.DESCRIPTOR.services_by_name["Museforge"].full_name
OIP_SERVICE = oip_pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
JOBS_SERVICE = jobs_pb2.DESCRIPTOR.services_by_name["Jobs"].full_name
OPERATIONS_SERVICE = operations_pb2.DESCRIPTOR.services_by_name["Operations"].full_name
FEEDBACK_SERVICE = feedback_pb2.DESCRIPTOR.services_by_name["Feedback"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def model_health(servicer: health_aio.HealthServicer, name: str, ready: bool) -> None:
    await servicer.set(f"museforge.model/{name}", SERVING if ready else NOT_SERVING)


def models_down(engine: Engine, plugin: str) -> list[LoadedModel]:
    """The models a plugin's generators and effects declare that cannot serve now (each once)."""
    record = engine.host.records.get(plugin)
    if record is None:
        return []
    declared: list[Generator | Effect] = [
        *(engine.generators[g] for g in record.generators if g in engine.generators),
        *(engine.effects[e] for e in record.effects if e in engine.effects)]
    down = {m.name: m for item in declared for m in engine.models_of(item) if not m.ready}
    return list(down.values())


async def plugin_health(servicer: health_aio.HealthServicer, engine: Engine, name: str, held: bool) -> None:
    """NOT_SERVING for a plugin that failed to load, one a model of which cannot serve (its calls
    answer UNAVAILABLE), or while its calls are refused because runs of it outlived their calls
    (see call_pool)."""
    record = engine.host.records.get(name)
    failed = record is not None and bool(record.errors)
    down = bool(models_down(engine, name))
    await servicer.set(f"museforge.plugin/{name}", NOT_SERVING if failed or held or down else SERVING)


async def model_changed(servicer: health_aio.HealthServicer, engine: Engine, pool: CallPool, name: str,
                        ready: bool) -> None:
    """A model loaded or unloaded: its entry, and those of the plugins whose calls it serves."""
    await model_health(servicer, name, ready)
    for record in engine.plugins():
        declared = [*(engine.generators.get(g) for g in record.generators),
                    *(engine.effects.get(e) for e in record.effects)]
        if any(item is not None and any(s.name == name for s in item.models) for item in declared):
            with pool.lock:
                held = pool.held(record.name)
            await plugin_health(servicer, engine, record.name, held)


async def report_health(engine: Engine, servicer: health_aio.HealthServicer) -> None:
    """Overall and per-service status, plus one entry per plugin and model as detail."""
    for service in ("", MUSEFORGE_SERVICE, OIP_SERVICE, JOBS_SERVICE, OPERATIONS_SERVICE, FEEDBACK_SERVICE):
        await servicer.set(service, SERVING)
    for record in engine.plugins():
        await plugin_health(servicer, engine, record.name, False)
    for model in engine.runtime.models.values():
        await model_health(servicer, model.name, model.ready)
