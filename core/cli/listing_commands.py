"""``museforge plugins``, ``generators`` and ``effects``: one listing, asked of a server or of an
engine in this process (--local), printed as JSON or a table."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from .options import Subcommands, add_target_flags, connect, settings_from
from .output import EXIT_FAILED, EXIT_OK, print_table


def models_cell(info: Any) -> str:
    return ",".join(f"{m.name}@{m.version}:{m.provider or m.error}" for m in info.models) or "-"


def plugin_row(p: Any) -> Sequence[str]:
    return (p.name, p.version or "-", p.source, ",".join(p.hooks) or "-",
            ",".join([*p.generators, *p.effects]) or "-", p.error or "ok")


def generator_row(g: Any) -> Sequence[str]:
    return (g.name, g.modality, ",".join(g.formats), str(g.max_count), models_cell(g),
            "yes" if g.available else "NO")


def effect_row(e: Any) -> Sequence[str]:
    return (e.name, ",".join(e.input_formats), ",".join(e.formats),
            str(e.min_inputs) if e.min_inputs == e.max_inputs else f"{e.min_inputs}-{e.max_inputs}",
            models_cell(e), "yes" if e.available else "NO")


# What each listing command shows: its table's header and a row per item.
TABLES: dict[str, tuple[Sequence[str], Callable[[Any], Sequence[str]]]] = {
    "plugins": (("PLUGIN", "VERSION", "SOURCE", "HOOKS", "GENERATORS/EFFECTS", "STATUS"), plugin_row),
    "generators": (("GENERATOR", "MODALITY", "FORMATS", "MAX COUNT", "MODELS (provider)", "AVAILABLE"),
                   generator_row),
    "effects": (("EFFECT", "INPUTS", "OUTPUTS", "N IN", "MODELS (provider)", "AVAILABLE"), effect_row),
}


def local_service(args: argparse.Namespace) -> Any:
    """An in-process stand-in with the client's listing methods (for --local)."""
    from ..engine.catalogue import Engine
    from ..server.museforge_service import MuseforgeService

    engine = Engine(settings_from(args)).start()
    return engine, MuseforgeService(engine, pool=None)  # type: ignore[arg-type]  # listing runs nothing


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


def cmd_listing(args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict

    items = fetch_listing(args, args.command)
    if args.json:
        print(json.dumps([MessageToDict(i) for i in items], indent=2))
        return EXIT_OK
    header, row = TABLES[args.command]
    print_table((row(i) for i in items), header)
    if args.command == "plugins":  # a plugin that failed to load fails the listing
        return EXIT_FAILED if any(p.error for p in items) else EXIT_OK
    if args.schema:
        for i in items:
            print(f"\n{i.name} parameters:\n{json.dumps(json.loads(i.parameters_schema), indent=2)}")
    return EXIT_OK


# Each listing command's help, and whether it can show parameter schemas.
HELP = {
    "plugins": ("list plugins and their load errors", False),
    "generators": ("list generators, formats and models", True),
    "effects": ("list effects, their formats and models", True),
}


def add_listing_parser(sub: Subcommands, name: str) -> None:
    text, schemas = HELP[name]
    listing = sub.add_parser(name, help=text)
    add_target_flags(listing)
    if schemas:
        listing.add_argument("--schema", action="store_true", help="show parameter schemas")
    listing.set_defaults(handler=cmd_listing)
