"""``museforge serve``: the gRPC server (and, when asked, the HTTP/JSON gateway and metrics)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from ..config import DEFAULT_ADDRESS, MAX_WORKERS
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


def cmd_serve(args: argparse.Namespace) -> int:
    from ..server.app import serve_forever
    from ..server.logs import configure as configure_logging
    from ..server.unsafe_setup import UnsafeSetup
    from ..server.workers import ListenerError

    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        return fail(f"--workers must be between 1 and {MAX_WORKERS}", EXIT_USAGE)
    settings = settings_from(args, workers=args.workers, address=args.address, log_level=args.log_level,
                             job_executor=args.executor, ray_address=args.ray_address,
                             allow_insecure=args.insecure, metrics_address=args.metrics_address,
                             log_format=args.log_format, http_address=args.http_address, tracing=args.tracing)
    configure_logging(settings.log_level, settings.log_format)
    from ..server.workers import split_address

    fmt = settings.log_format  # from here on a failure is said in the log's format
    for flag, address in (("--address", settings.address), ("--http-address", settings.http_address),
                          ("--metrics-address", settings.metrics_address)):
        try:
            if address:  # before any model loads: a typo should not cost a minute's wait
                split_address(address)
        except ValueError as exc:
            return failed(fmt, f"{flag}: {exc}", EXIT_USAGE)
    try:
        if settings.workers > 1:
            from ..server.workers import serve_workers

            return serve_workers(settings, settings.workers)
        asyncio.run(serve_forever(settings))
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
                           "health and reflection. Ctrl-C, SIGTERM or SIGHUP drains and exits.")
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
