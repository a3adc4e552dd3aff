"""The HTTP/JSON gateway's routes: which HTTP request calls which gRPC method.

Written in the style of ``google.api.http`` rules (``POST /v1/generators/{generator}:generate``,
``{name=jobs/*}``), kept here rather than as annotations in the protos so clients that
compile the protos need no googleapis imports. The OpenAPI document is generated from
this table (museforge.gateway.openapi), so it always lists exactly the /v1 routes served; the
/v2 routes (gateway_oip) speak the Open Inference Protocol's own REST form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2

from ..v1 import feedback_pb2 as fb
from ..v1 import jobs_pb2
from ..v1 import museforge_pb2 as pb
from .json_codec import to_json

VARIABLE = re.compile(r"\{(\w+)(?:=([^}]*))?\}")


@dataclass(frozen=True)
class Route:
    verb: str  # GET, POST or DELETE
    template: str  # "/v1/generators/{generator}:generate"; {name=jobs/*} binds "jobs/<id>"
    method: str  # the gRPC method called: "/museforge.v1.Museforge/Generate"
    request: type[Message]
    response: type[Message]
    summary: str
    streaming: bool = False  # server streaming: the reply is newline-delimited JSON
    # Where the proto3 mapping is not the whole answer: build(path variables, parsed body) makes
    # the request in a JSON dialect of the route's own (the OIP's REST form); render(reply)
    # gives the HTTP status and JSON (that dialect, or health's 503 when not serving).
    build: Callable[[Mapping[str, str], Any], Message] | None = None
    render: Callable[[Message], tuple[int, dict[str, Any]]] | None = None
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", re.compile(compile_template(self.template)))

    @property
    def path_fields(self) -> tuple[str, ...]:
        return tuple(m.group(1) for m in VARIABLE.finditer(self.template))

    @property
    def takes_body(self) -> bool:
        return self.verb == "POST"

    @property
    def service(self) -> str:
        return self.method.split("/")[1]

    @property
    def rpc(self) -> str:
        return self.method.split("/")[2]

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        return None if found is None else {k: unquote(v) for k, v in found.groupdict().items()}


def compile_template(template: str) -> str:
    """A regular expression for a path template: {x} is one segment, {x=a/*} is 'a/' + one segment."""
    out, last = [], 0
    for found in VARIABLE.finditer(template):
        out.append(re.escape(template[last:found.start()]))
        name, shape = found.group(1), found.group(2) or "*"
        # A variable segment never holds ':' (it starts a custom verb) or '/'.
        parts = [re.escape(p) if p != "*" else "[^/:]+" for p in shape.split("/")]
        out.append(f"(?P<{name}>{'/'.join(parts)})")
        last = found.end()
    out.append(re.escape(template[last:]))
    return "".join(out)


def health_reply(reply: Message) -> tuple[int, dict[str, Any]]:
    """Load balancers read the HTTP status: 503 unless SERVING (the body says which status)."""
    assert isinstance(reply, health_pb2.HealthCheckResponse)
    return (200 if reply.status == reply.SERVING else 503), to_json(reply)


MUSEFORGE = "/museforge.v1.Museforge/"
JOBS = "/museforge.v1.Jobs/"
OPERATIONS = "/google.longrunning.Operations/"
FEEDBACK = "/museforge.v1.Feedback/"
HEALTH = "/grpc.health.v1.Health/"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/plugins", MUSEFORGE + "ListPlugins", pb.ListPluginsRequest, pb.ListPluginsResponse,
          "Lists the loaded plugins, their hooks, generators, effects and load errors."),
    Route("GET", "/v1/generators", MUSEFORGE + "ListGenerators", pb.ListGeneratorsRequest,
          pb.ListGeneratorsResponse, "Lists the generators with their parameter schemas and models."),
    Route("POST", "/v1/generators/{generator}:generate", MUSEFORGE + "Generate", pb.GenerateRequest,
          pb.GenerateResponse, "Generates `count` artifacts; their bytes come base64-encoded."),
    Route("POST", "/v1/generators/{generator}:stream", MUSEFORGE + "StreamGenerate", pb.GenerateRequest,
          pb.GenerateEvent, "Generates with progress events and artifact chunks as they are made.",
          streaming=True),
    Route("GET", "/v1/effects", MUSEFORGE + "ListEffects", pb.ListEffectsRequest, pb.ListEffectsResponse,
          "Lists the effects with their parameter schemas and input formats."),
    Route("POST", "/v1/effects/{effect}:apply", MUSEFORGE + "ApplyEffect", pb.ApplyEffectRequest,
          pb.ApplyEffectResponse, "Applies an effect to base64-encoded input media."),
    Route("POST", "/v1/effects/{effect}:stream", MUSEFORGE + "StreamApplyEffect", pb.ApplyEffectRequest,
          pb.ApplyEffectEvent, "Applies an effect with progress events (tiles) and result chunks.",
          streaming=True),
    Route("GET", "/v1/statistics", MUSEFORGE + "GetModelStatistics", pb.GetModelStatisticsRequest,
          pb.GetModelStatisticsResponse, "Per-model request, batch and stage-time statistics."),
    Route("POST", "/v1/jobs", JOBS + "SubmitJob", jobs_pb2.SubmitJobRequest, operations_pb2.Operation,
          "Queues a batch job (an effect chain over frames) and returns its operation at once."),
    Route("GET", "/v1/{name=jobs/*}:watch", JOBS + "WatchJob", jobs_pb2.WatchJobRequest, jobs_pb2.JobEvent,
          "Streams a job's progress: a snapshot, each finished item, and a last event.", streaming=True),
    Route("GET", "/v1/{name=jobs/*}/items", JOBS + "ListJobItems", jobs_pb2.ListJobItemsRequest,
          jobs_pb2.ListJobItemsResponse, "A job's items (frames), page by page, in index order."),
    Route("GET", "/v1/jobs", OPERATIONS + "ListOperations", operations_pb2.ListOperationsRequest,
          operations_pb2.ListOperationsResponse,
          "Lists jobs as operations (filter `state=RUNNING`, `done=true`; paged)."),
    Route("GET", "/v1/{name=jobs/*}", OPERATIONS + "GetOperation", operations_pb2.GetOperationRequest,
          operations_pb2.Operation, "A job's operation: metadata while it runs, its result when done."),
    Route("DELETE", "/v1/{name=jobs/*}", OPERATIONS + "DeleteOperation",
          operations_pb2.DeleteOperationRequest, empty_pb2.Empty,
          "Forgets a finished job (its output files stay)."),
    Route("POST", "/v1/{name=jobs/*}:cancel", OPERATIONS + "CancelOperation",
          operations_pb2.CancelOperationRequest, empty_pb2.Empty,
          "Asks a job to stop; frames in flight stop at their next tile."),
    Route("POST", "/v1/{name=jobs/*}:retry", JOBS + "RetryJob", jobs_pb2.RetryJobRequest,
          operations_pb2.Operation,
          "Runs a finished job's failed and skipped items (or `states` of them) again; done ones stay."),
    Route("POST", "/v1/{name=jobs/*}:wait", OPERATIONS + "WaitOperation", operations_pb2.WaitOperationRequest,
          operations_pb2.Operation, "Waits until the job is done or `timeout` (e.g. \"30s\") passes."),
    Route("POST", "/v1/feedback", FEEDBACK + "RecordFeedback", fb.RecordFeedbackRequest, fb.FeedbackEvent,
          "Records a rating (thumbs, stars), a pick among artifacts or a keep, for the key or its `user`."),
    Route("GET", "/v1/feedback", FEEDBACK + "ListFeedback", fb.ListFeedbackRequest, fb.ListFeedbackResponse,
          "A user's feedback events, oldest first, page by page."),
    Route("GET", "/v1/feedback:export", FEEDBACK + "ExportFeedback", fb.ExportFeedbackRequest,
          fb.FeedbackEvent, "Streams a user's events (or, with `allUsers`, all the key's users'): "
          "JSON lines.", streaming=True),
    Route("POST", "/v1/feedback:forget", FEEDBACK + "ForgetUser", fb.ForgetUserRequest,
          fb.ForgetUserResponse, "Deletes every feedback event of a user; says how many there were."),
    Route("GET", "/v1/feedback:recommend", FEEDBACK + "Recommend", fb.RecommendRequest, fb.RecommendResponse,
          "Generators, presets or artifacts a user likely wants next, best first, each with a reason."),
    Route("GET", "/v1/health", HEALTH + "Check", health_pb2.HealthCheckRequest,
          health_pb2.HealthCheckResponse,
          "Serving status of the server or of one service (`service`); HTTP 503 when not serving.",
          render=health_reply),
)
OPEN_PATHS = {"/v1/health"}  # answer without an API key when health is an open service


def find_route(verb: str, path: str, routes: tuple[Route, ...] = ROUTES
               ) -> tuple[Route, dict[str, str]] | list[str]:
    """The route and its path variables, or the verbs the path does allow (empty: no such path)."""
    allowed: list[str] = []
    for route in routes:
        variables = route.match(path)
        if variables is None:
            continue
        if route.verb == verb:
            return route, variables
        allowed.append(route.verb)
    return allowed

