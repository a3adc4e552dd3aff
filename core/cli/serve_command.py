"""``museforge serve``: the gRPC server (and, when asked, the HTTP/JSON gateway and metrics)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from ..config import DEFAULT_ADDRESS, ENV_PREFIX, MAX_WORKERS, Settings, source_of
from .options import Subcommands, add_settings_flags, settings_from
from .output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, fail


def failed(fmt: str, message: str, code: int) -> int:
    """Why the server cannot start, on stderr, and the exit code: with log_format json a log record
    like the server's others (a pipeline parsing the log sees it), else the line every command prints."""
    if fmt != "json":
        return fail(message, code)
    from ..server.logs import announce

    announce(fmt, message, logging.ERROR)
    return code


EPILOG = f"""settings:
  Every setting can be given in the TOML file (--config or {ENV_PREFIX}CONFIG)
  or as an environment variable {ENV_PREFIX}<KEY>, lists comma-separated (e.g.
  {ENV_PREFIX}METRICS_ADDRESS=127.0.0.1:8002). Flags win over the environment,
  the environment over the file. A {ENV_PREFIX}* variable that is no setting
  is warned about at start. Every key is listed in README.md, Configuration.

data directory:
  data_dir ({ENV_PREFIX}DATA_DIR; default $XDG_DATA_HOME/museforge, else
  ~/.local/share/museforge) holds the job and feedback databases, the API
  keys (api_keys.json) and added models (models/). Keys are checked only
  with auth = true ({ENV_PREFIX}AUTH=true): see docs/security.md.
"""
ADDRESSES = (("address", "--address"), ("http_address", "--http-address"),
             ("metrics_address", "--metrics-address"))


def address_problem(args: argparse.Namespace, settings: Settings) -> str:
    """Why an address setting cannot be listened on, naming the flag, or the key and where it was
    set; "" when all can. Before any model loads: a typo should not cost a minute's wait."""
    from ..server.workers import split_address

    for key, flag in ADDRESSES:
        address = getattr(settings, key)
        if not address and key != "address":  # empty: that listener is off; the gRPC one never is
            continue
        try:
            split_address(address)
        except ValueError as exc:
            if getattr(args, key) is not None:
                return f"{flag}: {exc}"
            return f"invalid settings: {key}: {exc} ({source_of(key, args.config, os.environ)})"
    return ""


def warn_about_settings(settings: Settings) -> None:
    """What the start-up log says about settings that will not do what they look like they do."""
    from ..config import keys_path
    from ..config_checks import stray_variables
    from ..server.auth import KeyError_, KeyFile

    log = logging.getLogger("museforge.config")
    for warning in stray_variables(os.environ, ENV_PREFIX, Settings.model_fields):
        log.warning(warning)
    if settings.auth:
        return
    try:
        keys = KeyFile(keys_path(settings)).load()
    except KeyError_:  # unused with auth off; a server with auth on says what is wrong with it
        return
    if keys:
        log.warning("%d API keys in %s are not checked: auth is off, so every call is served without a "
                    "key; set auth = true (%sAUTH=true) to require them", len(keys), keys_path(settings),
                    ENV_PREFIX)


def stopped(fmt: str, signal_name: object) -> int:
    """A stop signal before the server served: said, and a clean exit (there was nothing to drain)."""
    from ..server.logs import announce

    announce(fmt, f"stopping during start-up ({signal_name}); nothing was served")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from ..server.stop_signals import StartupStopped, stoppable_start

    try:
        with stoppable_start():  # from here on, SIGTERM while the server starts is a clean stop
            return serve(args)
    except StartupStopped as exc:  # before the settings said the log's format
        return stopped(args.log_format or "text", exc)


def serve(args: argparse.Namespace) -> int:
    from ..server.app import serve_forever
    from ..server.logs import configure as configure_logging
    from ..server.stop_signals import StartupStopped
    from ..server.unsafe_setup import UnsafeSetup
    from ..server.workers import ListenerError

    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        return fail(f"--workers must be between 1 and {MAX_WORKERS}", EXIT_USAGE)
    settings = settings_from(args, workers=args.workers, address=args.address, log_level=args.log_level,
                             job_executor=args.executor, ray_address=args.ray_address,
                             allow_insecure=args.insecure, metrics_address=args.metrics_address,
                             log_format=args.log_format, http_address=args.http_address, tracing=args.tracing)
    configure_logging(settings.log_level, settings.log_format)
    fmt = settings.log_format  # from here on a failure is said in the log's format
    problem = address_problem(args, settings)
    if problem:
        return failed(fmt, problem, EXIT_USAGE)
    warn_about_settings(settings)
    try:
        if settings.workers > 1:
            from ..server.workers import serve_workers

            return serve_workers(settings, settings.workers)
        asyncio.run(serve_forever(settings))
    except StartupStopped as exc:
        return stopped(fmt, exc)
    except UnsafeSetup as exc:
        return failed(fmt, str(exc), EXIT_USAGE)
    except ImportError as exc:
        return failed(fmt, f"cannot start the {settings.job_executor} job executor ({exc}); "
                      "pip install 'museforge[ray]'", EXIT_USAGE)
    except ListenerError as exc:  # the gateway's or the metrics' address, named in the message
        return failed(fmt, str(exc), EXIT_FAILED)
    except OSError as exc:
        return failed(fmt, f"cannot serve on {settings.address}: {exc}", EXIT_FAILED)
    except RuntimeError as exc:
        if "bind" not in str(exc).lower():  # gRPC's "Failed to bind to address": the port is taken
            raise
        return failed(fmt, f"cannot serve on {settings.address}: {exc} (is another server on that port?)",
                      EXIT_FAILED)
    return EXIT_OK


def add_serve_parser(sub: Subcommands) -> None:
    serve = sub.add_parser("serve", help="start the gRPC server",
                           description="Serve museforge.v1, the Open Inference Protocol, "
                           "health and reflection. Ctrl-C, SIGTERM or SIGHUP drains and exits 0 "
                           "(during start-up: stops at once, exit 0).",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--address", help=f"HOST:PORT to listen on (default {DEFAULT_ADDRESS})")
    serve.add_argument("--log-level", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                       help="how much the server logs (default: INFO, or log_level in the settings)")
    serve.add_argument("--executor", choices=["local", "ray"],
                       help="who runs batch-job frames (default local; ray needs museforge[ray])")
    serve.add_argument("--ray-address", help="Ray cluster to join (default: start a local Ray)")
    serve.add_argument("--metrics-address", metavar="HOST:PORT",
                       help="serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:8002)")
    serve.add_argument("--log-format", choices=["text", "json"], help="json: one JSON object per log line")
    serve.add_argument("--http-address", metavar="HOST:PORT",
                       help="also serve the HTTP/JSON gateway at HOST:PORT (e.g. 127.0.0.1:8080): the same "
                       "calls for clients without gRPC, OpenAPI at /openapi.json")
    serve.add_argument("--tracing", choices=["off", "otlp", "console"],
                       help="OpenTelemetry spans of every call, to an OTLP collector (OTEL_EXPORTER_OTLP_"
                       "ENDPOINT or otlp_endpoint) or the console; needs museforge[otel]")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="server processes sharing the port(s), each with its own models (default 1, or "
                       "the workers setting); "
                       "more than one lifts the one-process limit on small calls where cores are many")
    serve.add_argument("--insecure", action="store_true", default=None,
                       help="allow a non-loopback --address without TLS and API keys (only behind a "
                       "network you trust)")
    add_settings_flags(serve)
    serve.set_defaults(handler=cmd_serve)
