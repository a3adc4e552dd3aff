"""Settings from a TOML file, then ``MUSEFORGE_*`` environment variables, then flags."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .ascii_numbers import ascii_number
from .config_checks import browser_origin
from .config_problems import problem
from .runtime.versions import VersionPolicy

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ENV_PREFIX = "MUSEFORGE_"
DEFAULT_ADDRESS = "127.0.0.1:50051"
MAX_WORKERS = 256
FEEDBACK_SERVICE = "museforge.v1.Feedback"  # named here, not imported: config loads no generated code


class ModelSettings(BaseModel):
    """Per-model overrides, as ``[models."image.digits"]`` tables in museforge.toml."""

    model_config = ConfigDict(extra="forbid")

    batching: bool | None = None
    max_batch_size: int | None = Field(None, ge=1, le=65536)
    max_queue_delay_us: int | None = Field(None, ge=0, le=10_000_000)
    instances: int | None = Field(None, ge=1, le=64)
    intra_op_threads: int | None = Field(
        None, ge=1, le=256, description="ONNX Runtime intra-op threads for this model (default: the "
        "generator's choice, else the server's)")
    version_policy: str | None = Field(
        None, description='versions served at once: "latest", "latest:N", "all" or "specific:1,3" '
        "(default: the latest, or the version the generator pins)")

    @field_validator("version_policy")
    @classmethod
    def _policy_parses(cls, value: str | None) -> str | None:
        if value is not None:
            VersionPolicy.parse(value)  # ValueError names what is wrong
        return value


class Settings(BaseModel):
    """Every knob of the server. Keys in museforge.toml use these names."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(DEFAULT_ADDRESS, description="host:port the server listens on")
    plugins: list[str] | None = Field(
        None, description="allow-list of plugin (entry-point) names; unset loads all"
    )
    load_installed_plugins: bool = Field(
        True, description="discover plugins from entry points (tests turn this off)"
    )
    trace_plugins: bool = Field(False, description="log every hook call")
    providers: list[str] = Field(
        ["CUDAExecutionProvider", "CPUExecutionProvider"],
        description="ONNX Runtime execution providers in order of preference",
    )
    intra_op_threads: int = Field(0, ge=0, le=256, description="ONNX Runtime intra-op threads; 0: auto")
    inter_op_threads: int = Field(0, ge=0, le=256, description="ONNX Runtime inter-op threads; 0: auto")
    blas_threads: int = Field(
        1, ge=0, le=256,
        description="threads numpy's BLAS may use in `museforge serve` (its idle workers spin, taking "
        "CPU from ONNX Runtime and other requests); 0: the library's default or OPENBLAS_NUM_THREADS",
    )
    graph_optimization: str = Field("all", pattern="^(disable|basic|extended|all)$")
    spinning: bool = Field(
        False,
        description="let ONNX Runtime threads busy-wait between runs (lower latency, "
        "but they burn CPU the gRPC threads need)",
    )
    batching: bool = Field(True, description="merge concurrent requests per model (dynamic batching)")
    max_queue_delay_us: int = Field(
        0, ge=0, le=10_000_000, description="how long a request may wait for batch partners"
    )
    default_max_batch_size: int = Field(
        64, ge=1, le=65536, description="max batch for models whose manifest gives none"
    )
    model_instances: int = Field(1, ge=1, le=64, description="concurrent session runs per model")
    models: dict[str, ModelSettings] = Field(default_factory=dict, description="per-model overrides")
    max_count: int = Field(64, ge=1, le=100_000, description="largest count per request")
    worker_threads: int = Field(8, ge=1, le=1024, description="threads running generators")
    workers: int = Field(
        1, ge=1, le=MAX_WORKERS, description="server processes sharing the port(s), each with its own "
        "models (`serve --workers`); more than one lifts the one-process limit on small calls where "
        "cores are many")
    max_message_bytes: int = Field(
        512 * 1024 * 1024,
        ge=1024,
        le=2**31 - 1,
        description="largest gRPC message either way (film frames in, EXR/PNG out)",
    )
    max_input_pixels: int = Field(
        7680 * 4320, ge=1, description="largest effect input, width x height (default: 8K UHD)"
    )
    grace_seconds: float = Field(10.0, ge=0, description="drain time on SIGTERM/Ctrl-C")
    data_dir: str = Field(
        "",
        description="where the job database lives; empty: $XDG_DATA_HOME/museforge "
        "(~/.local/share/museforge)",
    )
    model_repository: str = Field(
        "",
        description="models served over the Open Inference Protocol without a plugin, as "
        "<name>/<version>/model.onnx beside a manifest (`museforge models add` writes them); "
        "empty: <data_dir>/models",
    )
    job_input_roots: list[str] = Field(
        [],
        description="directories batch jobs may read frames from (relative paths in a job are under "
        "the first); none by default: jobs are refused until the roots are set",
    )
    job_output_roots: list[str] = Field(
        [], description="directories batch jobs may write results to; none by default"
    )
    job_workers: int = Field(2, ge=1, le=256, description="frames of one job processed at once")
    job_executor: str = Field(
        "local",
        pattern="^(local|ray)$",
        description="who runs job frames: this process, or a Ray actor pool (the [ray] extra)",
    )
    ray_address: str = Field(
        "", description="Ray cluster to join ('auto', 'ray://host:10001', ...); empty starts a local Ray"
    )
    ray_workers: int = Field(2, ge=1, le=4096, description="Ray actors, each holding its own sessions")
    ray_cpus_per_worker: float = Field(1.0, ge=0, description="CPUs Ray reserves per actor")
    ray_gpus_per_worker: float = Field(
        -1.0, ge=-1, description="GPUs per actor; -1: one each when the cluster has enough, else none"
    )
    ray_num_cpus: int = Field(0, ge=0, description="CPUs of a local Ray; 0: all of this machine's")
    max_job_items: int = Field(100_000, ge=1, le=10_000_000, description="largest number of frames per job")
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: str = Field("text", pattern="^(text|json)$", description="json: one JSON object per log line")
    http_address: str = Field(
        "", description="host:port for the HTTP/JSON gateway (museforge.v1 and jobs over HTTP/1.1), "
        "e.g. 127.0.0.1:8080; empty: off")
    http_threads: int = Field(
        32, ge=1, le=4096, description="threads converting large HTTP bodies and replies to and from JSON "
        "(connections are served by the event loop)")
    http_max_connections: int = Field(
        1024, ge=1, le=1_000_000, description="HTTP connections open at once; past it a request is answered "
        "503 with Retry-After (past twice as many, connections are closed at once)")
    http_max_body_bytes: int = Field(
        128 << 20, ge=1024, le=4 << 30, description="largest HTTP request body (JSON, media in base64); "
        "bodies held at once count against max_request_bytes_in_flight")
    http_studio: bool = Field(
        True, description="serve the studio (a web page for artists, built on these routes) at / on the "
        "HTTP address")
    http_cors_origins: list[Annotated[str, AfterValidator(browser_origin)]] = Field(
        default_factory=list, description="browser origins the gateway allows (CORS), e.g. "
        "['https://tools.example.com'], kept as browsers write them (scheme and host in lower case, "
        "no trailing '/' or default port); '*' allows any; empty: none")
    http_allowed_hosts: list[str] = Field(
        default_factory=list, description="the names the gateway is reached by (its Host header, port "
        "aside), e.g. ['localhost', '127.0.0.1']; any other is refused (DNS rebinding). Empty: loopback "
        "names on a loopback address, any name elsewhere")
    metrics_address: str = Field(
        "", description="host:port for the Prometheus endpoint (/metrics), e.g. 127.0.0.1:8002; empty: off")
    tracing: str = Field(
        "off",
        pattern="^(off|otlp|console)$",
        description="OpenTelemetry spans of every call: otlp (to a collector) or console; "
        "needs the otel extra",
    )
    otlp_endpoint: str = Field(
        "",
        description="OTLP/gRPC collector for tracing = otlp, e.g. http://127.0.0.1:4317; empty: "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4317",
    )
    # -- security ---------------------------------------------------------------------------
    auth: bool = Field(
        False,
        description="require an API key (authorization: Bearer) on every call "
        "outside open_services; keys are made with `museforge keys create`",
    )
    api_keys_file: str = Field(
        "", description="the keys file (digests only); empty: <data_dir>/api_keys.json"
    )
    open_services: list[str] = Field(
        ["grpc.health.v1.Health"],
        description="services that answer without a key (add "
        "grpc.reflection.v1alpha.ServerReflection to let grpcurl list services)",
    )

    @field_validator("address", "http_address", "metrics_address")
    @classmethod
    def _port_in_range(cls, value: str | None) -> str | None:
        problem = port_problem(value or "", lowest=0)  # port 0: the system picks one to listen on
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("open_services")
    @classmethod
    def _feedback_needs_a_key(cls, value: list[str]) -> list[str]:
        # Feedback is kept per API key: without one every caller would be the same owner,
        # free to export or forget everyone's users.
        if FEEDBACK_SERVICE in value:
            raise ValueError(f"{FEEDBACK_SERVICE} cannot be open: its events are kept per API key, and "
                             "callers without a key would all share (and could export or forget) one "
                             "set of users; remove it from open_services")
        return value

    max_concurrent_per_key: int = Field(256, ge=0, description="calls in flight per key (0: no limit)")
    requests_per_second_per_key: float = Field(0.0, ge=0, description="call rate per key (0: no limit)")
    feedback_max_concurrent_per_key: int = Field(
        64, ge=0,
        description="feedback calls in flight per key, counted apart from its other calls (0: no limit)",
    )
    feedback_requests_per_second_per_key: float = Field(
        0.0, ge=0, description="feedback call rate per key, counted apart from its other calls (0: no limit)"
    )
    feedback_max_bytes: int = Field(
        4 << 30, ge=1 << 20,
        description="largest the feedback database may grow; past it new events answer RESOURCE_EXHAUSTED "
        "(forgetting users frees room)",
    )
    recommend_refit_seconds: float = Field(
        60.0, ge=1.0,
        description="a key's recommender is refitted in the background at most this often once new "
        "feedback came in (Recommend with refresh refits at once)",
    )
    recommend_looks_seconds: float = Field(4.0, ge=0.0, le=600.0, description="each background fit of a "
        "key's recommender renders its latent artifacts this long to learn their looks (rest later; 0: off)")
    feedback_max_events_per_key: int = Field(
        1_000_000, ge=0,
        description="events one API key may keep over all its users (0: no limit); past it its new "
        "events answer RESOURCE_EXHAUSTED until it forgets users",
    )
    tls_cert: str = Field("", description="PEM certificate chain of the server; with tls_key, serve TLS")
    tls_key: str = Field("", description="PEM private key of the server")
    tls_client_ca: str = Field("", description="PEM CA bundle: require client certificates it signed (mTLS)")
    allow_insecure: bool = Field(
        False, description="serve on a non-loopback address without TLS and auth (`serve --insecure`)"
    )
    generator_timeout_seconds: float = Field(
        600.0,
        gt=0,
        description="longest a generator or effect may run for one call (a plugin's own "
        "declaration may be shorter); past it the call ends DEADLINE_EXCEEDED",
    )
    max_request_bytes_in_flight: int = Field(
        1 << 30,
        ge=1024,
        description="bytes of requests held in memory at once over all calls (gRPC messages and "
        "HTTP bodies; an HTTP request counts its body once, as it arrives, and may hold a quarter of it); "
        "beyond it "
        "RESOURCE_EXHAUSTED with a retry delay",
    )
    max_output_bytes: int = Field(
        1 << 30,
        ge=1024,
        description="largest estimated output of one request (raw media before encoding: float32 "
        "pixels, samples or mesh grids, over all of count), a generator's or an effect's (over all "
        "its inputs; counted as the media come); beyond it INVALID_ARGUMENT naming the fields",
    )
    max_artifacts: int = Field(
        100_000,
        ge=1,
        le=100_000_000,
        description="most artifacts one request may make, a stem or other part counting as one (a walk "
        "makes one per frame: count x frames); beyond it INVALID_ARGUMENT, before the run when the "
        "parameters say it, else as soon as the run passes it",
    )
    max_open_streams: int = Field(
        64,
        ge=1,
        description="streaming calls held open at once to open_services (health Watch), which need "
        "no key and so have no per-key limit; beyond it RESOURCE_EXHAUSTED",
    )
    max_model_queue: int = Field(
        1024,
        ge=1,
        description="requests waiting per model (Triton's max_queue_size); beyond it "
        "RESOURCE_EXHAUSTED with a retry delay",
    )


def keys_path(settings: Settings) -> Path:
    return (
        Path(settings.api_keys_file).expanduser()
        if settings.api_keys_file
        else (data_directory(settings) / "api_keys.json")
    )


def model_repository(settings: Settings) -> Path:
    return (Path(settings.model_repository).expanduser() if settings.model_repository
            else data_directory(settings) / "models")


def data_directory(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """The data directory: the setting, else $XDG_DATA_HOME/museforge, else ~/.local/share/museforge."""
    environ = os.environ if environ is None else environ
    if settings.data_dir:
        return Path(settings.data_dir).expanduser()
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "museforge"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key and its source."""


def _env_value(field: str, raw: str) -> Any:
    annotation = str(Settings.model_fields[field].annotation)
    if "list" in annotation:
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in Settings.model_fields:
        key = ENV_PREFIX + field.upper()
        if key in environ:
            values[field] = _env_value(field, environ[key])
    return values


def port_problem(address: str, lowest: int) -> str | None:
    """Why HOST:PORT's port is not one gRPC uses as written (it takes 99999 as 34463, modulo 65536:
    another server, without a word); None when it is, or when the port is no number at all (a
    target form gRPC reads itself)."""
    port = address.rpartition(":")[2]
    if not (port.isascii() and port.isdigit()):
        return None
    number = ascii_number(port, 5)
    if number is None or not lowest <= number <= 65535:
        return f"port must be {lowest}-65535, got {port[:12]} in {address[:80]!r}"
    return None


def config_path(config_file: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The settings file: ``--config``, else MUSEFORGE_CONFIG (empty is unset: Path("") would be the
    current directory)."""
    return config_file or (Path(environ["MUSEFORGE_CONFIG"]) if environ.get("MUSEFORGE_CONFIG") else None)


def from_variable(key: str) -> str:
    return f"from the environment variable {ENV_PREFIX}{key.upper()}"


def source_of(key: str, config_file: Path | None, environ: Mapping[str, str]) -> str:
    """Where a key no flag gave came from, as a settings error says it: its environment variable,
    else the settings file."""
    if ENV_PREFIX + key.upper() in environ:
        return from_variable(key)
    path = config_path(config_file, environ)
    return f"in {path}" if path is not None else "the default"


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge file < environment < overrides (flags); ``None`` overrides are ignored."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # each top-level key's last writer, for the message of a bad value
    path = config_path(config_file, environ)
    if path is not None:
        try:
            values.update(tomllib.loads(path.read_text("utf-8")))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except IsADirectoryError as exc:
            raise ConfigError(f"config file {path} is a directory, not a TOML file") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text (TOML is): {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from exc
        sources.update(dict.fromkeys(values, f"in {path}"))
    from_environment = from_env(environ)
    values.update(from_environment)
    sources.update({k: from_variable(k) for k in from_environment})
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    values.update(flags)
    sources.update(dict.fromkeys(flags, "from the command line"))
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        known = (list(Settings.model_fields), list(ModelSettings.model_fields))
        problems = "; ".join(problem(e, sources, *known) for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from exc
