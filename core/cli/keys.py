"""``museforge keys``: create, list and revoke the API keys a server with ``auth = true`` accepts."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..config import data_directory, keys_path
from ..server.auth import SCOPES, KeyError_, KeyFile, shown_name
from .options import Subcommands, add_settings_flags, settings_from
from .output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, fail, print_table


def add_keys_parser(sub: Subcommands) -> None:
    keys = sub.add_parser(
        "keys",
        help="manage API keys (for servers with auth = true)",
        description="API keys live in the keys file (api_keys_file, default <data_dir>/api_keys.json) "
        "as sha256 digests: a key is shown once, when it is created. A running server reads the file "
        "when it starts; restart it after creating or revoking keys.",
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a key and print it (once)")
    create.add_argument(
        "--scopes",
        required=True,
        help=f"comma-separated, from {', '.join(SCOPES)} (admin: everything; every key may read)",
    )
    create.add_argument("--name", default="", help="who or what the key is for, e.g. build-farm (no "
                        "control characters)")
    listing = actions.add_parser("list", help="list keys (ids, names, scopes; never the keys)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    revoke = actions.add_parser("revoke", help="remove a key by its id")
    revoke.add_argument("id", help="the key's id (the part after mf_ in the key)")
    revoke.add_argument("--forget-feedback", action="store_true",
                        help="also delete every feedback event kept under the key, for all its users")
    forget = actions.add_parser(
        "forget-feedback",
        help="delete every feedback event kept under a key id (or one user's), revoked or not",
        description="A revoked key's events can no longer be reached through the API; this deletes "
        "them from the data directory's feedback database (safe while a server runs). With --user, "
        "only that user's: forgetting a user without holding the key that recorded them.",
    )
    forget.add_argument("id", help="the key's id")
    forget.add_argument("--user", help="only this user's events (the id the key's caller sent as user); "
                        "the key's other users keep theirs")
    forget.add_argument("--yes", action="store_true", help="do it (without it, only say how many would go)")
    for action in actions.choices.values():
        add_settings_flags(action)
    keys.set_defaults(handler=cmd_keys)


def cmd_keys(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = KeyFile(keys_path(settings))
    try:
        if args.keys_command == "create":
            key, record = store.create(args.name, [s.strip() for s in args.scopes.split(",") if s.strip()])
            print(key)
            print(
                f"created key {record.id} ({', '.join(record.scopes)}) in {store.path}; it is shown only "
                "now. Restart the server to use it.",
                file=sys.stderr,
            )
            if not settings.auth:  # else the key looks like protection it does not give
                print("note: auth is off in these settings, so a server started with them serves every "
                      "call without a key; turn it on with auth = true in the settings file or "
                      "MUSEFORGE_AUTH=true, then restart it", file=sys.stderr)
            return EXIT_OK
        if args.keys_command == "list":
            keys = store.load()
            if args.json:
                print(
                    json.dumps(
                        [
                            {"id": k.id, "name": k.name, "scopes": list(k.scopes), "created": k.created}
                            for k in keys
                        ],
                        indent=2,
                    )
                )
                return EXIT_OK
            if not keys:
                print("no API keys yet: make one with `museforge keys create --scopes generate`",
                      file=sys.stderr)
            else:  # a table like the other listings, headed
                rows = [(k.id, ",".join(k.scopes), time.strftime("%Y-%m-%d %H:%M", time.localtime(k.created)),
                         shown_name(k.name)) for k in keys]  # a name from an older file may hold any
                print_table(rows, ("ID", "SCOPES", "CREATED", "NAME"))
            return EXIT_OK
        if args.keys_command == "forget-feedback":
            if args.user is not None:
                return forget_user_feedback(args, args.id, args.user, args.yes)
            return forget_feedback(args, args.id, args.yes)
        if store.revoke(args.id):
            print(f"revoked {args.id}; restart the server for it to take effect", file=sys.stderr)
            return forget_feedback(args, args.id, True) if args.forget_feedback else EXIT_OK
        return fail(f"no key with id {args.id!r} in {store.path}", EXIT_FAILED)
    except KeyError_ as exc:
        return fail(str(exc), EXIT_USAGE)


def forget_feedback(args: argparse.Namespace, key_id: str, really: bool) -> int:
    """Delete (or with ``really`` False, count) the feedback events kept under ``key_id``."""
    from ..feedback.store import DATABASE_NAME, FeedbackStore, NewerSchema, StoreError

    path = data_directory(settings_from(args)) / DATABASE_NAME
    if not path.exists():
        print(f"no feedback database at {path}: nothing to forget", file=sys.stderr)
        return EXIT_OK
    try:
        feedback = FeedbackStore(path)
        try:
            if not really:
                kept = feedback.kept(key_id)
                print(f"key {key_id} keeps {kept:,} feedback events in {path}; add --yes to delete them",
                      file=sys.stderr)
                return EXIT_OK
            events, users = feedback.forget_owner(key_id)
        finally:
            feedback.close()
    except (NewerSchema, StoreError) as exc:
        return fail(f"cannot use the feedback database {path}: {exc}", EXIT_FAILED)
    print(f"deleted {events:,} feedback events of {users:,} users kept under key {key_id}", file=sys.stderr)
    return EXIT_OK


def forget_user_feedback(args: argparse.Namespace, key_id: str, given: str, really: bool) -> int:
    """Delete (or with ``really`` False, count) the events of one user kept under ``key_id``: a user's
    right to be forgotten, for an operator who does not hold the key that recorded them."""
    from ..engine.user_ids import normal_user, user_problem
    from ..feedback.store import DATABASE_NAME, FeedbackStore, NewerSchema, StoreError

    user = normal_user(given)  # the one spelling the server keeps (NFC)
    problem = user_problem(user) if user else "is empty; name the user (the key's own events: without --user)"
    if problem:
        return fail(f"--user {given!r} {problem}", EXIT_USAGE)
    path = data_directory(settings_from(args)) / DATABASE_NAME
    if not path.exists():
        return fail(f"no feedback database at {path}: nothing kept of user {user!r}", EXIT_FAILED)
    try:
        feedback = FeedbackStore(path)
        try:
            kept = feedback.user_kept(key_id, user)
            if kept and really:
                kept = feedback.forget(key_id, user)
        finally:
            feedback.close()
    except (NewerSchema, StoreError) as exc:
        return fail(f"cannot use the feedback database {path}: {exc}", EXIT_FAILED)
    if not kept:
        return fail(f"key {key_id} keeps no feedback of user {user!r} in {path}", EXIT_FAILED)
    done = "deleted" if really else "would delete (add --yes)"
    print(f"{done} {kept:,} feedback events of user {user!r} kept under key {key_id}", file=sys.stderr)
    return EXIT_OK
