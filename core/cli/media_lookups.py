"""What ``generate`` and ``apply`` look up before a call: the parameters as the schema reads them,
the formats a generator writes, and the format the flags ask for."""

from __future__ import annotations

import argparse
from typing import Any

from .media_files import SUFFIX_FORMATS, format_name, names_a_file
from .options import as_schema_says, connect, settings_from


def parameters_of(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """The -p values, as the generator's or effect's schema reads them: `-p label=123` is the text
    "123" for a text field, the number 123 for a number field."""
    if all(isinstance(value, str) for _, value in args.param):
        return dict(args.param)
    return as_schema_says(args.param, schema_of(args, name))


def schema_of(args: argparse.Namespace, name: str) -> dict[str, Any] | None:
    """The parameters' JSON Schema from the catalogue (--local) or the server; None if unknown."""
    if args.local:
        from ..engine.catalogue import Engine

        catalogue = Engine(settings_from(args)).host.load()  # the catalogue alone: no model loaded
        found = catalogue.generators.get(name) or catalogue.effects.get(name)
        return None if found is None else Engine.parameters_schema(found)
    from ..client import NotFound

    with connect(args) as client:
        try:
            return client.schema(name)
        except NotFound:
            return None  # the call itself will say the name is unknown


def formats_of(args: argparse.Namespace, name: str) -> tuple[str, ...] | None:
    """The formats a generator writes, from the catalogue (--local) or the server; None if unknown
    (the call itself will say so)."""
    if args.local:
        from ..engine.catalogue import Engine

        found = Engine(settings_from(args)).host.load().generators.get(name)  # no model loaded
        return None if found is None else tuple(found.formats)
    with connect(args) as client:
        listed = next((g for g in client.generators() if g.name == name), None)
    return None if listed is None else tuple(listed.formats)


def whole_video_format(args: argparse.Namespace) -> str:
    """--format, else the output file's extension (take.edl: "edl"), else '' (the effect's first)."""
    return format_name(args.format or args.output.suffix.lstrip("."))


def output_format(args: argparse.Namespace, first_input: bytes) -> str:
    """--format, else the output file's extension (a .png of a 16-bit PNG stays 16-bit; .json is
    "json", which the server judges against the effect and its inputs), else ''."""
    if args.format or not names_a_file(args.output, any_extension=True):
        return format_name(args.format)
    fmt = SUFFIX_FORMATS.get(args.output.suffix.lower(), args.output.suffix.lstrip(".").lower())
    if fmt == "png" and first_input[24:25] == b"\x10":  # PNG IHDR bit depth 16
        return "png16"
    return fmt
