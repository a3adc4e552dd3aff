"""The ``museforge`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc

from .. import __version__
from ..client import field_violations
from ..config import DEFAULT_ADDRESS, ConfigError, Settings, load_settings
from ..engine.errors import RequestError
from ..engine.generator import Progress
from .jobs import add_job_parser, cmd_job
from .keys import add_keys_parser, cmd_keys

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
MAX_WORKERS = 256

EPILOG = """examples:
  museforge serve                                   # 127.0.0.1:50051, built-in plugins
  museforge generators                              # what the server can make
  museforge generate image.digits --param digit=7 --count 8 -o out/
  museforge effects                                 # what the server can do to media
  museforge apply effect.upscale --param scale=2 in.png -o out.png
  museforge export image.digits --quick --output /tmp/models
  museforge job submit --step effect.denoise -p sigma=25 --input 'plates/sh010.####.png' \\
      --frames 1001-1240 --output 'clean/sh010.####.png' --watch
"""


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value``; the value is read as JSON when it parses (7, true, [1,2]), else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip(), raw


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file (or MUSEFORGE_CONFIG)")
    parser.add_argument("--plugins", help="comma-separated allow-list of plugins to load")


def add_target_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--server", default=None, metavar="HOST:PORT",
                       help=f"server to ask (default: MUSEFORGE_ADDRESS or {DEFAULT_ADDRESS})")
    group.add_argument("--local", action="store_true",
                       help="run in this process instead of asking a server")
    add_settings_flags(parser)
    add_connection_flags(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    """--server, the settings flags and --json, for commands that only talk to a server."""
    parser.add_argument("--server", default=None, metavar="HOST:PORT",
                        help=f"server to ask (default: MUSEFORGE_ADDRESS or {DEFAULT_ADDRESS})")
    add_settings_flags(parser)
    add_connection_flags(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="museforge",
        description="museforge: a gRPC server for digital-art generation (image, music, 3D).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"museforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="start the gRPC server",
                           description="Serve museforge.v1, the Open Inference Protocol, "
                           "health and reflection. Ctrl-C or SIGTERM drains and exits.")
    serve.add_argument("--address", help=f"HOST:PORT to listen on (default {DEFAULT_ADDRESS})")
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
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
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="server processes sharing the port(s), each with its own models (default 1); "
                       "more than one lifts the one-process limit on small calls where cores are many")
    serve.add_argument("--insecure", action="store_true", default=None,
                       help="allow a non-loopback --address without TLS and API keys (only behind a "
                       "network you trust)")
    add_settings_flags(serve)

    plugins = sub.add_parser("plugins", help="list plugins and their load errors")
    add_target_flags(plugins)
    generators = sub.add_parser("generators", help="list generators, formats and models")
    add_target_flags(generators)
    generators.add_argument("--schema", action="store_true", help="show parameter schemas")

    generate = sub.add_parser(
        "generate", help="generate media and write the files",
        description="Generate with a server (default) or in-process (--local).",
    )
    generate.add_argument("generator", help="dotted generator name, e.g. image.digits")
    generate.add_argument("--param", "-p", action="append", type=parse_param, default=[],
                          metavar="KEY=VALUE", help="a generator parameter (repeatable)")
    generate.add_argument("--seed", type=int, help="seed for reproducible output")
    generate.add_argument("--count", "-n", type=int, default=1, help="how many (default 1)")
    generate.add_argument("--format", "-f", default="", help="output format (default: first)")
    generate.add_argument("--output", "-o", type=Path, default=Path("."),
                          help="directory for the files (created if missing)")
    add_target_flags(generate)

    effects = sub.add_parser("effects", help="list effects, their formats and models")
    add_target_flags(effects)
    effects.add_argument("--schema", action="store_true", help="show parameter schemas")

    apply = sub.add_parser(
        "apply", help="apply an effect to image files and write the results",
        description="Apply an effect (upscale, denoise, ...) with a server (default) or "
        "in-process (--local). The output keeps the input's format unless --format or the "
        "output file's extension says otherwise.",
    )
    apply.add_argument("effect", help="dotted effect name, e.g. effect.upscale")
    apply.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                       help="input file(s): PNG (8/16-bit), JPEG, WebP or OpenEXR")
    apply.add_argument("--param", "-p", action="append", type=parse_param, default=[],
                       metavar="KEY=VALUE", help="an effect parameter (repeatable)")
    apply.add_argument("--format", "-f", default="", help="output format (default: the input's)")
    apply.add_argument("--seed", type=int, help="seed, for effects with randomness")
    apply.add_argument("--output", "-o", type=Path, default=Path("."),
                       help="output file (e.g. out.png) or directory (default: current directory); "
                       "several results from one file name are numbered out-0000.png, ...")
    add_target_flags(apply)

    add_job_parser(sub, parse_param, add_server_flags)
    add_keys_parser(sub, add_settings_flags)
    health = sub.add_parser("health", help="ask a server's health service (exit 0 when SERVING)",
                            description="Checks grpc.health.v1 (open without an API key): exit 0 when the "
                            "service is SERVING, 1 when not, 3 when no server answered. Suits container "
                            "probes on a TLS port, which the built-in gRPC probes cannot reach.")
    health.add_argument("--service", default="", help="a service name (default: the whole server)")
    add_server_flags(health)
    openapi = sub.add_parser("openapi", help="print the HTTP/JSON gateway's OpenAPI document",
                             description="Writes the OpenAPI 3.1 document of the HTTP/JSON gateway (serve "
                             "--http-address) to stdout or FILE; a running gateway also serves it at "
                             "/openapi.json. Feed it to an OpenAPI client generator.")
    openapi.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
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

    export = sub.add_parser(
        "export", help="train a model and export it to ONNX (needs museforge[train])",
        description="Reproduce a shipped model from packaged data: train (seeded), export to "
        "ONNX, validate against PyTorch, evaluate on held-out data, write model.onnx + "
        "manifest.json into <output>/<version>/.",
    )
    export.add_argument("recipe", nargs="?", help="recipe name, e.g. image.digits")
    export.add_argument("--list", action="store_true", help="list the recipes and exit")
    export.add_argument("--json", action="store_true", help="with --list: print JSON instead of a table")
    export.add_argument("--quick", action="store_true",
                        help="a few seconds of training to prove the pipeline (not for shipping)")
    export.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    export.add_argument("--output", type=Path,
                        help="models directory (default: the plugin's own models/<name>/; "
                        "with --quick: ./museforge-export/<name>)")
    export.add_argument("--version-number", type=int, default=1, dest="model_version",
                        help="version directory to write (default 1)")
    export.add_argument("--checkpoints", type=Path, help="directory for training checkpoints")
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_settings_flags(export)
    return parser


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    plugins = getattr(args, "plugins", None)
    if plugins is not None:
        overrides["plugins"] = [p.strip() for p in plugins.split(",") if p.strip()]
    return load_settings(getattr(args, "config", None), overrides)


def print_table(rows: Iterable[Sequence[str]], header: Sequence[str]) -> None:
    rows = [list(map(str, r)) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    for line in [list(header), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def cmd_serve(args: argparse.Namespace) -> int:
    from ..server.app import serve_forever
    from ..server.logs import configure as configure_logging
    from ..server.tls import UnsafeSetup

    settings = settings_from(args, address=args.address, log_level=args.log_level, job_executor=args.executor,
                             ray_address=args.ray_address, allow_insecure=args.insecure,
                             metrics_address=args.metrics_address, log_format=args.log_format,
                             http_address=args.http_address,
                             tracing=args.tracing)
    configure_logging(settings.log_level, settings.log_format)
    if not 1 <= args.workers <= MAX_WORKERS:
        print(f"museforge: --workers must be between 1 and {MAX_WORKERS}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.workers > 1:
            from ..server.workers import serve_workers

            return serve_workers(settings, args.workers)
        asyncio.run(serve_forever(settings))
    except UnsafeSetup as exc:
        print(f"museforge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as exc:
        print(f"museforge: cannot start the {settings.job_executor} job executor ({exc}); "
              "pip install 'museforge[ray]'", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"museforge: cannot serve on {settings.address}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def local_service(args: argparse.Namespace) -> Any:
    """An in-process stand-in with the client's listing methods (for --local)."""
    from ..engine.catalogue import Engine
    from ..server.museforge_service import MuseforgeService

    engine = Engine(settings_from(args)).start()
    return engine, MuseforgeService(engine, executor=None)  # type: ignore[arg-type]


def fetch_listing(args: argparse.Namespace, what: str) -> list[Any]:
    from ..v1 import museforge_pb2 as pb

    if args.local:
        logging.basicConfig(level="WARNING")
        _, service = local_service(args)
        calls: dict[str, tuple[Any, Any]] = {
            "plugins": (pb.ListPluginsRequest(), service.ListPlugins),
            "generators": (pb.ListGeneratorsRequest(), service.ListGenerators),
            "effects": (pb.ListEffectsRequest(), service.ListEffects),
        }
        request, method = calls[what]
        reply = asyncio.run(method(request, None))
        return list(getattr(reply, what))

    with connect(args, timeout=30) as client:
        listings: dict[str, Callable[[], list[Any]]] = {
            "plugins": client.plugins, "generators": client.generators, "effects": client.effects}
        return listings[what]()


def server_address(args: argparse.Namespace) -> str:
    return args.server or settings_from(args).address


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-key", default=None,
                        help="API key for a server with auth on (default: MUSEFORGE_API_KEY)")
    parser.add_argument("--tls-ca", type=Path, help="PEM CA bundle to trust: talk TLS to the server")
    parser.add_argument("--tls-cert", type=Path, help="PEM client certificate (mutual TLS)")
    parser.add_argument("--tls-key", type=Path, help="PEM client private key (mutual TLS)")
    parser.add_argument("--tls-server-name", help="the name in the server's certificate, when it is not "
                        "the address dialled (e.g. a probe dialling 127.0.0.1)")


def connect(args: argparse.Namespace, timeout: float | None = None) -> Any:
    """A Client for the server the flags (and MUSEFORGE_ADDRESS / MUSEFORGE_API_KEY) name."""
    import os

    from ..client import Client

    def read(path: Path | None) -> bytes | None:
        return path.read_bytes() if path else None

    return Client(server_address(args), timeout=timeout,
                  api_key=args.api_key or os.environ.get("MUSEFORGE_API_KEY") or None,
                  tls_ca=read(args.tls_ca), tls_cert=read(args.tls_cert), tls_key=read(args.tls_key),
                  tls_server_name=args.tls_server_name)


def cmd_plugins(args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict

    plugins = fetch_listing(args, "plugins")
    if args.json:
        print(json.dumps([MessageToDict(p) for p in plugins], indent=2))
        return EXIT_OK
    print_table(
        ((p.name, p.version or "-", p.source, ",".join(p.hooks) or "-",
          ",".join([*p.generators, *p.effects]) or "-", p.error or "ok") for p in plugins),
        ("PLUGIN", "VERSION", "SOURCE", "HOOKS", "GENERATORS/EFFECTS", "STATUS"),
    )
    return EXIT_FAILED if any(p.error for p in plugins) else EXIT_OK


def cmd_generators(args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict

    generators = fetch_listing(args, "generators")
    if args.json:
        print(json.dumps([MessageToDict(g) for g in generators], indent=2))
        return EXIT_OK
    print_table(
        ((g.name, g.modality, ",".join(g.formats), str(g.max_count),
          ",".join(f"{m.name}@{m.version}:{m.provider or m.error}" for m in g.models) or "-",
          "yes" if g.available else "NO") for g in generators),
        ("GENERATOR", "MODALITY", "FORMATS", "MAX COUNT", "MODELS (provider)", "AVAILABLE"),
    )
    if args.schema:
        for g in generators:
            print(f"\n{g.name} parameters:\n{json.dumps(json.loads(g.parameters_schema), indent=2)}")
    return EXIT_OK


def cmd_effects(args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict

    effects = fetch_listing(args, "effects")
    if args.json:
        print(json.dumps([MessageToDict(e) for e in effects], indent=2))
        return EXIT_OK
    print_table(
        ((e.name, ",".join(e.input_formats), ",".join(e.formats),
          str(e.min_inputs) if e.min_inputs == e.max_inputs else f"{e.min_inputs}-{e.max_inputs}",
          ",".join(f"{m.name}@{m.version}:{m.provider or m.error}" for m in e.models) or "-",
          "yes" if e.available else "NO") for e in effects),
        ("EFFECT", "INPUTS", "OUTPUTS", "N IN", "MODELS (provider)", "AVAILABLE"),
    )
    if args.schema:
        for e in effects:
            print(f"\n{e.name} parameters:\n{json.dumps(json.loads(e.parameters_schema), indent=2)}")
    return EXIT_OK


SUFFIX_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".exr": "exr"}


def output_format(args: argparse.Namespace, first_input: bytes) -> str:
    """--format, else the output file's extension (a .png of a 16-bit PNG stays 16-bit), else ''."""
    if args.format or not args.output.suffix:
        return str(args.format)
    fmt = SUFFIX_FORMATS.get(args.output.suffix.lower())
    if fmt is None:
        raise RequestError(f"cannot tell the format from {args.output.name!r}; pass --format")
    if fmt == "png" and first_input[24:25] == b"\x10":  # PNG IHDR bit depth 16
        return "png16"
    return fmt


def result_path(output: Path, name: str, index: int, several: bool) -> Path:
    if not output.suffix:
        return output / Path(name).name
    if several:
        return output.with_name(f"{output.stem}-{index:04d}{output.suffix}")
    return output


def cmd_apply(args: argparse.Namespace) -> int:
    params = dict(args.param)
    inputs: list[tuple[str, bytes]] = []
    for path in args.inputs:
        try:
            inputs.append((path.name, path.read_bytes()))
        except OSError as exc:
            print(f"museforge: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    fmt = output_format(args, inputs[0][1])
    bar = Bar()
    results: list[tuple[str, int, bytes]] = []
    if args.local:
        from ..engine.catalogue import Artifact, EffectInput, Engine

        logging.basicConfig(level="WARNING")
        engine = Engine(settings_from(args)).start()
        request = engine.prepare_effect(args.effect, params, [EffectInput(d, n) for n, d in inputs],
                                        args.seed, fmt)
        for event in engine.run_effect(request):
            if isinstance(event, Artifact):
                results.append((event.filename, event.index, event.data))
            elif isinstance(event, Progress):
                bar.update(event.completed, event.total, event.stage)
    else:

        with connect(args) as client:
            for message in client.stream_apply_effect(args.effect, inputs, params, seed=args.seed,
                                                      fmt=fmt):
                kind = message.WhichOneof("event")
                if kind == "progress":
                    bar.update(message.progress.completed, message.progress.total,
                               message.progress.stage)
                elif kind == "artifact":
                    a = message.artifact
                    results.append((a.filename, a.index, a.data))
    bar.close()
    if not args.output.suffix:
        args.output.mkdir(parents=True, exist_ok=True)
    elif args.output.parent != Path(""):
        args.output.parent.mkdir(parents=True, exist_ok=True)
    for name, index, data in results:
        path = result_path(args.output, name, index, len(results) > 1)
        print(write_file(path.parent, path.name, data))
    print(f"{len(results)} file(s) written", file=sys.stderr)
    return EXIT_OK


class Bar:
    """A dependency-free progress line on stderr (only when stderr is a terminal)."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()

    def update(self, done: int, total: int, stage: str) -> None:
        if not self.enabled or total <= 0:
            return
        filled = int(30 * done / total)
        sys.stderr.write(f"\r{stage:<10} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def cmd_generate(args: argparse.Namespace) -> int:
    params = dict(args.param)
    args.output.mkdir(parents=True, exist_ok=True)
    bar = Bar()
    written: list[Path] = []
    seed: int | None = args.seed
    if args.local:
        from ..engine.catalogue import Artifact, Engine

        logging.basicConfig(level="WARNING")
        engine = Engine(settings_from(args)).start()
        request = engine.prepare(args.generator, params, args.seed, args.count, args.format)
        seed = request.seed
        for event in engine.run(request):
            if isinstance(event, Artifact):
                written.append(write_file(args.output, event.filename, event.data))
            elif isinstance(event, Progress):
                bar.update(event.completed, event.total, event.stage)
    else:

        with connect(args) as client:
            for message in client.stream_generate(
                args.generator, params, seed=args.seed, count=args.count, fmt=args.format
            ):
                kind = message.WhichOneof("event")
                if kind == "seed":
                    seed = message.seed
                elif kind == "progress":
                    p = message.progress
                    bar.update(p.completed, p.total, p.stage)
                elif kind == "artifact":
                    a = message.artifact
                    written.append(write_file(args.output, a.filename, a.data))
    bar.close()
    for path in written:
        print(path)
    print(f"{len(written)} file(s) written to {args.output} (seed {seed})", file=sys.stderr)
    return EXIT_OK


def write_file(directory: Path, name: str, data: bytes) -> Path:
    path = directory / Path(name).name  # never let a name escape the output directory
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def cmd_export(args: argparse.Namespace) -> int:
    from ..engine.plugin_host import PluginHost

    settings = settings_from(args)
    host = PluginHost(allow=settings.plugins, load_entrypoints=settings.load_installed_plugins)
    recipes = host.load().recipes
    if args.list or not args.recipe:
        if args.json:
            print(json.dumps([{"name": r.name, "description": r.description,
                               "models_dir": str(r.models_dir)} for r in recipes.values()], indent=2))
        else:
            print_table(((r.name, r.description) for r in recipes.values()), ("RECIPE", "DESCRIPTION"))
        return EXIT_OK if args.list else EXIT_USAGE
    recipe = recipes.get(args.recipe)
    if recipe is None:
        print(f"museforge: unknown recipe {args.recipe!r}; known: {', '.join(recipes) or 'none'}",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        from museforge.export.pipeline import run_recipe
    except ImportError as exc:
        print(f"museforge export needs the training extra: pip install 'museforge[train]' ({exc})",
              file=sys.stderr)
        return EXIT_FAILED
    output = args.output
    if output is None and args.quick:
        output = Path("museforge-export") / recipe.name
    result = run_recipe(
        recipe, seed=args.seed, quick=args.quick, output=output, version=args.model_version,
        show_progress=not args.no_progress, checkpoint_dir=args.checkpoints,
    )
    manifest = result.manifest
    print(f"wrote {result.directory / 'model.onnx'} (sha256 {manifest.sha256[:12]}…, "
          f"trained in {manifest.training['seconds']} s)")
    print(json.dumps(manifest.metrics, indent=2))
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    return cmd_job(args, connect(args, timeout=60))


def cmd_api_keys(args: argparse.Namespace) -> int:
    return cmd_keys(args, settings_from(args))


def cmd_health(args: argparse.Namespace) -> int:
    with connect(args, timeout=5) as client:
        status = client.health(args.service)
    print(json.dumps({"service": args.service, "status": status}) if args.json else status)
    return EXIT_OK if status == "SERVING" else EXIT_FAILED


def cmd_plugin(args: argparse.Namespace) -> int:
    from .scaffold import ScaffoldError, new_plugin

    try:
        root = new_plugin(args.name, args.dir)
    except ScaffoldError as exc:
        print(f"museforge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(root)
    print(f"wrote the plugin package {root}: pip install {root} and restart museforge serve; "
          f"its tests: pip install '{root}[test]' && python -m pytest {root / 'tests'}", file=sys.stderr)
    return EXIT_OK


def cmd_openapi(args: argparse.Namespace) -> int:
    from ..gateway.openapi import openapi_document

    text = json.dumps(openapi_document(), indent=2) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


COMMANDS = {
    "serve": cmd_serve,
    "plugins": cmd_plugins,
    "generators": cmd_generators,
    "generate": cmd_generate,
    "effects": cmd_effects,
    "apply": cmd_apply,
    "export": cmd_export,
    "job": cmd_jobs,
    "keys": cmd_api_keys,
    "plugin": cmd_plugin,
    "health": cmd_health,
    "openapi": cmd_openapi,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"museforge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RequestError as exc:
        print(f"museforge: {exc.message}", file=sys.stderr)
        for violation in exc.violations:
            print(f"  {violation.field}: {violation.description}", file=sys.stderr)
        return EXIT_FAILED
    except grpc.RpcError as exc:
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            print(f"museforge: no server answered ({exc.details()}); start one with "
                  "`museforge serve` or pass --server / --local", file=sys.stderr)
            return EXIT_UNREACHABLE
        print(f"museforge: {code.name}: {exc.details()}", file=sys.stderr)
        for field, description in field_violations(exc):
            print(f"  {field}: {description}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`museforge generators --json | head`): stop quietly, as
        # shell tools do, and keep Python from complaining while it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
