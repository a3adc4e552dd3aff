"""Commands that stand alone: ``health`` (a probe), ``openapi`` (the gateway's document) and
``plugin new`` (a plugin package to start from)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .options import Subcommands, add_server_flags, connect
from .output import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, fail


def cmd_health(args: argparse.Namespace) -> int:
    import grpc

    with connect(args, timeout=args.timeout) as client:
        try:
            status = client.health(args.service)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:  # a port that takes the connection, then
                # says nothing (a hung process, another program): for a probe, as good as no server
                return fail(f"no answer from {client.address} within {args.timeout:g} s", EXIT_UNREACHABLE)
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            # The health service names nothing in its NOT_FOUND: say what was not found.
            return fail(f"the server has no health service {args.service!r} (try museforge.plugin/NAME, "
                        "a plugin, or '' for the server)", EXIT_FAILED)
        why = plugin_trouble(client, args.service) if status == "NOT_SERVING" else ""
    print(json.dumps({"service": args.service, "status": status, **({"reason": why} if why else {})})
          if args.json else status)
    if why and not args.json:
        print(why, file=sys.stderr)
    return EXIT_OK if status == "SERVING" else EXIT_FAILED


def plugin_trouble(client: Any, service: str) -> str:
    """Why a plugin's health entry is NOT_SERVING (its load error, or models that cannot serve),
    as far as the server's listings say; "" for another service or when they cannot be read."""
    import grpc

    from .listing_commands import models_down

    plugin = service.removeprefix("museforge.plugin/")
    if plugin == service:
        return ""
    try:
        record = next((p for p in client.plugins() if p.name == plugin), None)
        down = models_down([*client.generators(), *client.effects()]).get(plugin, {})
    except grpc.RpcError:  # a server with API keys lists nothing to a probe without one
        return ""
    if record is not None and record.error:
        return record.error
    return "; ".join(f"model {name} cannot serve: {why}" for name, why in down.items())


def cmd_openapi(args: argparse.Namespace) -> int:
    from ..gateway.openapi import openapi_document

    text = json.dumps(openapi_document(), indent=2) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_plugin(args: argparse.Namespace) -> int:
    from .scaffold import ScaffoldError, new_plugin

    try:
        root = new_plugin(args.name, args.dir)
    except ScaffoldError as exc:
        return fail(str(exc), EXIT_USAGE)
    print(root)
    # "pip install name" asks the package index for a package called so: say it as a path.
    local = str(root) if root.is_absolute() or str(root).startswith(".") else f"./{root}"
    print(f"wrote the plugin package {root}: pip install {local} and restart museforge serve; "
          f"its tests: pip install '{local}[test]' && python -m pytest {root / 'tests'}", file=sys.stderr)
    return EXIT_OK


def add_health_parser(sub: Subcommands) -> None:
    health = sub.add_parser("health", help="ask a server's health service (exit 0 when SERVING)",
                            description="Checks grpc.health.v1 (open without an API key): exit 0 when the "
                            "service is SERVING, 1 when not, 3 when no server answered. Suits container "
                            "probes on a TLS port, which the built-in gRPC probes cannot reach.")
    health.add_argument("--service", default="", help="a service name (default: the whole server)")
    health.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="seconds to wait for the answer; none in time counts as no server (exit 3) "
                        "(default: 5)")
    add_server_flags(health)
    health.set_defaults(handler=cmd_health)


def add_openapi_parser(sub: Subcommands) -> None:
    openapi = sub.add_parser("openapi", help="print the HTTP/JSON gateway's OpenAPI document",
                             description="Writes the OpenAPI 3.1 document of the HTTP/JSON gateway (serve "
                             "--http-address) to stdout or FILE; a running gateway also serves it at "
                             "/openapi.json. Feed it to an OpenAPI client generator.")
    openapi.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    openapi.set_defaults(handler=cmd_openapi)


def add_plugin_parser(sub: Subcommands) -> None:
    plugin = sub.add_parser("plugin", help="start a plugin package of your own",
                            description="Tools for plugin authors (see docs/plugins.md).")
    plugin_actions = plugin.add_subparsers(dest="plugin_command", required=True, metavar="ACTION")
    new = plugin_actions.add_parser(
        "new", help="write a pip-installable plugin package to start from",
        description="Writes DIR/NAME-with-dashes/: pyproject.toml with the museforge entry point, a "
        "generator NAME.stripes serving a tiny ONNX model, the recipe that trained it "
        "(museforge export NAME.contrast), a README and tests. pip install it and restart the server.")
    new.add_argument("name", help="a lowercase Python identifier, e.g. studio_stripes")
    new.add_argument("--dir", type=Path, default=Path("."), help="where to write it (default: here)")
    plugin.set_defaults(handler=cmd_plugin)
