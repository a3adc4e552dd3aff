"""The flags many commands share, and what they resolve to: settings and a client."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import DEFAULT_ADDRESS, ConfigError, Settings, load_settings

# What a command module adds its parser to (``add_subparsers``' return value).
Subcommands = argparse._SubParsersAction


class Param(tuple[str, Any]):
    """A -p (key, value), and the text the value came from."""


    raw: str


def parse_param(text: str) -> Param:
    """``key=value``; the value is read as JSON when it parses (7, true, [1,2]), else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    param = Param((key.strip(), value))
    param.raw = raw
    return param


def as_schema_says(params: Sequence[tuple[str, Any]], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """The -p values, with those a JSON read made numbers, booleans or null given back as the text
    they were where the schema wants text (`-p label=123` for a text field)."""
    fields = (schema or {}).get("properties", {})
    values: dict[str, Any] = {}
    for item in params:
        key, value = item
        raw = getattr(item, "raw", None)
        json_read = raw is not None and not isinstance(value, (str, list, dict))
        kinds = _kinds(fields.get(key), schema)
        # Text for a field that takes text and no number or boolean; null stays null where allowed.
        if json_read and "string" in kinds and not kinds & {"integer", "number", "boolean"} and not (
                value is None and "null" in kinds):
            value = raw
        values[key] = value
    return values


def _kinds(field: Any, schema: Mapping[str, Any] | None) -> set[Any]:
    """The JSON types a JSON Schema field takes (following $ref, anyOf, oneOf and allOf)."""
    kinds: set[Any] = set()
    if not isinstance(field, Mapping):
        return kinds
    pending = [field]
    while pending:
        node = pending.pop()
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            pending.append((schema or {}).get("$defs", {}).get(ref.rpartition("/")[2], {}))
        kinds.add(node.get("type"))
        if "enum" in node:  # an enum's values say its types when "type" does not
            kinds.update({str: "string", int: "integer", float: "number", bool: "boolean"}.get(type(v))
                         for v in node["enum"])
        pending.extend(n for key in ("anyOf", "oneOf", "allOf") for n in node.get(key, ())
                       if isinstance(n, Mapping))
    return kinds


def whole_number(low: int, high: int, what: str) -> Any:
    """An argparse type: an integer from ``low`` to ``high`` (a number out of range is a usage
    error naming the flag, not a traceback from the request it would go into)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be {low} to {high}, got {value}")
        return value
    parse.__name__ = what  # argparse names the type in its messages
    return parse


SEED = whole_number(0, 2**64 - 1, "a seed")
COUNT = whole_number(1, 2**31 - 1, "a count")


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file (or MUSEFORGE_CONFIG)")
    parser.add_argument("--plugins",
                        help="comma-separated allow-list of plugins to load (serve, or with --local)")


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-key", default=None,
                        help="API key for a server with auth on (default: MUSEFORGE_API_KEY)")
    parser.add_argument("--tls-ca", type=Path, help="PEM CA bundle to trust: talk TLS to the server")
    parser.add_argument("--tls-cert", type=Path, help="PEM client certificate (mutual TLS)")
    parser.add_argument("--tls-key", type=Path, help="PEM client private key (mutual TLS)")
    parser.add_argument("--tls-server-name", help="the name in the server's certificate, when it is not "
                        "the address dialled (e.g. a probe dialling 127.0.0.1)")


def dialled_address(text: str) -> str:
    """A --server value: its port checked as the client checks it (``check_port``)."""
    from ..client import check_port

    try:
        check_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_server_flags(parser: argparse.ArgumentParser, *, local: bool = False) -> None:
    """--server, the settings and connection flags and --json, for commands that talk to a server;
    with ``local``, --local too, as the alternative to --server."""
    target: Any = parser.add_mutually_exclusive_group() if local else parser
    target.add_argument("--server", default=None, metavar="HOST:PORT", type=dialled_address,
                        help=f"server to ask (default: MUSEFORGE_ADDRESS or {DEFAULT_ADDRESS})")
    if local:
        target.add_argument("--local", action="store_true",
                            help="run in this process instead of asking a server")
    add_settings_flags(parser)
    add_connection_flags(parser)
    parser.add_argument("--json", action="store_true",
                        help=f"print JSON instead of {'a table' if local else 'text'}")


def add_target_flags(parser: argparse.ArgumentParser) -> None:
    """The server flags, and --local for commands that can also run in this process."""
    add_server_flags(parser, local=True)


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    plugins = getattr(args, "plugins", None)
    if plugins is not None:
        overrides["plugins"] = [p.strip() for p in plugins.split(",") if p.strip()]
    return load_settings(getattr(args, "config", None), overrides)


def server_address(args: argparse.Namespace) -> str:
    if args.server and getattr(args, "config", None) is not None:
        settings_from(args)  # a --config that is missing or broken is said, not ignored for --server
    return args.server or settings_from(args).address


def connect(args: argparse.Namespace, timeout: float | None = None) -> Any:
    """A Client for the server the flags (and MUSEFORGE_ADDRESS / MUSEFORGE_API_KEY) name."""
    from ..client import Client

    if getattr(args, "plugins", None) is not None:
        # A server loaded its plugins when it started; silently ignoring the flag would let a
        # user believe they narrowed what answers.
        raise ConfigError("--plugins chooses the plugins this process loads: it goes with --local, or with "
                          "`museforge serve --plugins ...` for a server")

    def read(path: Path | None, flag: str) -> bytes | None:
        try:
            return path.read_bytes() if path else None
        except OSError as exc:  # a file named on the command line: a usage error, as for every command
            raise ConfigError(f"{flag} {path}: cannot read it ({exc.strerror or exc})") from None

    return Client(server_address(args), timeout=timeout,
                  api_key=args.api_key or os.environ.get("MUSEFORGE_API_KEY") or None,
                  tls_ca=read(args.tls_ca, "--tls-ca"), tls_cert=read(args.tls_cert, "--tls-cert"),
                  tls_key=read(args.tls_key, "--tls-key"), tls_server_name=args.tls_server_name)
