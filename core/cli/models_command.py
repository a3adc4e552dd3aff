"""``museforge models list|load|unload|add``: a server's model repository (Triton's extension of
the OIP), through the same RPCs as tritonclient's ``get_model_repository_index``, ``load_model``
and ``unload_model``; the API key needs the admin scope when auth is on. ``add`` writes an ONNX
file of your own into the configured model repository, to be served without a plugin."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..client_errors import FailedPrecondition, NotFound, PermissionDenied, Unauthenticated
from ..config import model_repository
from .options import Subcommands, add_server_flags, connect, settings_from
from .output import EXIT_OK, EXIT_USAGE, fail, print_table

HEADER = ("MODEL", "VERSION", "STATE", "REASON")
LOAD_SECONDS = 600.0  # a load builds and warms a session: seconds for a big model
EPILOG = """examples:
  museforge models list                             # every model: version, state, reason
  museforge models list --ready --json
  museforge models unload image.digits              # calls to it answer UNAVAILABLE until loaded
  museforge models load image.digits                # newest version, swapped in while serving
  museforge models add upscaler.onnx --name studio.upscaler --load   # your own ONNX, served at once
"""


def _batching(dynamic: bool, independent: bool | None) -> str:
    if not dynamic:
        return "no"
    if independent is False:
        return ("yes, but each row's outputs depend on the other rows (tried at add): requests are "
                "never merged into one run")
    return "yes" if independent else "yes (whether rows are independent could not be tried)"


def cmd_models(args: argparse.Namespace) -> int:
    try:
        if args.models_command == "list":
            return list_models(args)
        if args.models_command == "add":
            return add(args)
        return change(args)
    except NotFound as exc:
        return fail(str(exc.details()))
    except FailedPrecondition as exc:  # the version on disk cannot serve: the message says why
        return fail(f"cannot {args.models_command} {args.model}: {exc.details()}")
    except (Unauthenticated, PermissionDenied) as exc:
        return fail(f"{exc.details()} (the model repository needs an API key with the admin scope: "
                    "--api-key or MUSEFORGE_API_KEY)")


def row(model: Any) -> tuple[str, str, str, str]:
    return model.name, model.version or "-", model.state, model.reason or "-"


def as_json(model: Any) -> dict[str, str]:
    return {"name": model.name, "version": model.version, "state": model.state, "reason": model.reason}


def list_models(args: argparse.Namespace) -> int:
    with connect(args, timeout=30) as client:
        models = client.models(ready=args.ready)
    if args.json:
        print(json.dumps([as_json(m) for m in models], indent=2))
    else:
        print_table((row(m) for m in models), HEADER)
    return EXIT_OK


def add(args: argparse.Namespace) -> int:
    """Write the file as the model's next version, then (with --load) ask the server to serve it."""
    from ..runtime.onnx_import import ImportRefused, add_model

    if not Path(args.file).exists():  # a usage error, as any file named on the command line
        return fail(f"cannot add {args.file}: no such file", EXIT_USAGE)
    settings = settings_from(args)
    root = Path(args.repository).expanduser() if args.repository else model_repository(settings)
    owner = plugin_owning(settings, args.name)
    if owner:
        return fail(f"cannot add {args.file} as {args.name}: that is a model of plugin {owner}, whose own "
                    "files a server serves under that name; give another --name")
    try:
        added = add_model(Path(args.file), args.name, root, args.version)
    except ImportRefused as exc:
        return fail(f"cannot add {args.file}: {exc}")
    manifest = added.manifest
    if args.json and not args.load:
        print(json.dumps({"name": added.name, "version": added.version, "directory": str(added.directory),
                          "manifest": manifest.model_dump(mode="json")}, indent=2))
        return EXIT_OK
    tensors = "; ".join(f"{kind} {t.name} {t.dtype}{t.shape}" for kind, group in
                        (("in", manifest.inputs), ("out", manifest.outputs)) for t in group)
    print(f"added {added.name} version {added.version} at {added.directory}\n  {tensors}\n"
          f"  dynamic batch: {_batching(added.dynamic_batch, added.rows_independent)}; "
          f"sha256 {manifest.sha256}")
    if not args.load:
        print(f"a server using this model repository serves it from its next start, or at once after "
              f"`museforge models load {added.name}`")
        return EXIT_OK
    args.model = added.name
    return change(args, load=True)


def change(args: argparse.Namespace, load: bool | None = None) -> int:
    """Load (``load``, or the ``load`` action) or unload, then print the model's index entry."""
    with connect(args, timeout=LOAD_SECONDS) as client:
        if load if load is not None else args.models_command == "load":
            client.load_model(args.model)
        else:
            client.unload_model(args.model)
        entries = [m for m in client.models() if m.name == args.model]  # every version it serves
    if args.json:
        print(json.dumps(as_json(entries[0]) if len(entries) == 1 else [as_json(e) for e in entries]))
    else:
        print_table((row(e) for e in entries), HEADER)
    return EXIT_OK


def plugin_owning(settings: Any, name: str) -> str:
    """The installed plugin declaring model ``name`` ('' when none does): read from its catalogue
    alone, no model loaded."""
    from ..engine.catalogue import Engine

    catalogue = Engine(settings).host.load()
    for kind, declared in (("generators", catalogue.generators), ("effects", catalogue.effects)):
        for maker in declared.values():
            if any(source.name == name for source in maker.models):
                return catalogue.owners.get(f"{kind}:{maker.name}", "?")
    return ""


def add_models_parser(sub: Subcommands) -> None:
    models = sub.add_parser(
        "models", help="list, load and unload a server's models (admin)",
        description="The server's model repository (Triton's model repository extension, also at "
        "POST /v2/repository/... on the HTTP gateway). A load builds and warms the model's newest "
        "version beside the serving one and swaps it in; calls in flight finish on the old one. "
        "With auth on, the API key needs the admin scope.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every model with its version, state and reason",
                                 description="Prints each model's name, version, state (READY, "
                                 "UNAVAILABLE, LOADING) and the reason it is not READY.")
    listing.add_argument("--ready", action="store_true", help="only the models ready to serve")
    add_server_flags(listing)
    for name, text in (
        ("load", "load (or reload) a model's newest version while serving"),
        ("unload", "unload a model: calls to it answer UNAVAILABLE until it is loaded again"),
    ):
        action = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        action.add_argument("model", metavar="NAME", help="the model's name, as `museforge models list` "
                            "shows it (e.g. image.digits)")
        add_server_flags(action)
    adding = actions.add_parser(
        "add", help="add an ONNX file of your own as a model served without a plugin",
        description="Reads the graph's inputs and outputs (names, dtypes, shapes, a dynamic batch axis), "
        "checks that it loads and runs, and writes NAME/VERSION/model.onnx with its manifest (sha256, "
        "tensors, where it came from) into the model repository: the model_repository setting, "
        "else <data_dir>/models. Servers using that repository serve it over the Open Inference "
        "Protocol (gRPC and /v2 on the HTTP gateway), batched, with statistics. A file that cannot "
        "be served is refused with the reason and nothing is written.")
    adding.add_argument("file", metavar="FILE.onnx", help="the ONNX model (weights inside the file)")
    adding.add_argument("--name", required=True, help="the name to serve it under, e.g. studio.upscaler")
    adding.add_argument("--version", type=int, default=None,
                        help="its version number (default: one above the highest already there)")
    adding.add_argument("--repository", metavar="DIR", default=None,
                        help="the model repository to write into (default: the model_repository setting)")
    adding.add_argument("--load", action="store_true",
                        help="then ask the server (--server) to load it, so it serves at once")
    add_server_flags(adding)
    models.set_defaults(handler=cmd_models)
