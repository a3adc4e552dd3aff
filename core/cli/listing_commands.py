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


def plugin_row(p: Any, down: dict[str, str] | None = None) -> Sequence[str]:
    status = p.error or "; ".join(f"DEGRADED: model {name} cannot serve: {why}"
                                  for name, why in (down or {}).items()) or "ok"
    return (p.name, p.version or "-", p.source, ",".join(p.hooks) or "-",
            ",".join([*p.generators, *p.effects]) or "-", status)


def models_down(declared: Sequence[Any]) -> dict[str, dict[str, str]]:
    """Per plugin, the models its generators and effects declare that cannot serve, and why: a
    plugin that loaded is listed DEGRADED while calls to them answer UNAVAILABLE."""
    down: dict[str, dict[str, str]] = {}
    for item in declared:
        for model in item.models:
            if not model.ready:
                down.setdefault(item.plugin, {})[model.name] = model.error
    return down


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


def fetch_listings(args: argparse.Namespace, *what: str) -> list[list[Any]]:
    """Each listing named (plugins, generators, effects), from one server or one local engine."""
    from ..v1 import museforge_pb2 as pb

    if args.local:
        logging.basicConfig(level="WARNING")
        _, service = local_service(args)
        calls: dict[str, tuple[Any, Any]] = {
            "plugins": (pb.ListPluginsRequest(), service.ListPlugins),
            "generators": (pb.ListGeneratorsRequest(), service.ListGenerators),
            "effects": (pb.ListEffectsRequest(), service.ListEffects),
        }
        replies = [asyncio.run(calls[name][1](calls[name][0], None)) for name in what]
        return [list(getattr(reply, name)) for reply, name in zip(replies, what, strict=True)]

    with connect(args, timeout=30) as client:
        listings: dict[str, Callable[[], list[Any]]] = {
            "plugins": client.plugins, "generators": client.generators, "effects": client.effects}
        return [listings[name]() for name in what]


def fetch_listing(args: argparse.Namespace, what: str) -> list[Any]:
    return fetch_listings(args, what)[0]


def cmd_plugins(args: argparse.Namespace) -> int:
    """Plugins, with the models each cannot serve; a plugin that failed or lacks one fails it."""
    from google.protobuf.json_format import MessageToDict

    plugins, generators, effects = fetch_listings(args, "plugins", "generators", "effects")
    down = models_down([*generators, *effects])
    if args.json:
        print(json.dumps([{**MessageToDict(p), **({"modelsDown": [
            {"name": name, "error": why} for name, why in down[p.name].items()]} if p.name in down else {})}
            for p in plugins], indent=2))
        return EXIT_OK
    print_table((plugin_row(p, down.get(p.name)) for p in plugins), TABLES["plugins"][0])
    return EXIT_FAILED if any(p.error or p.name in down for p in plugins) else EXIT_OK


def cmd_listing(args: argparse.Namespace) -> int:
    from google.protobuf.json_format import MessageToDict

    if args.command == "plugins":
        return cmd_plugins(args)
    items = fetch_listing(args, args.command)
    if args.json:
        print(json.dumps([MessageToDict(i) for i in items], indent=2))
        return EXIT_OK
    header, row = TABLES[args.command]
    print_table((row(i) for i in items), header)
    if args.schema:
        for i in items:
            print(f"\n{i.name} parameters:\n{json.dumps(json.loads(i.parameters_schema), indent=2)}")
    return EXIT_OK


# Each listing command's help, and whether it can show parameter schemas.
HELP = {
    "plugins": ("list plugins, their load errors and the models they cannot serve", False),
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
