"""``museforge export``: train a model from a plugin's recipe and export it to ONNX."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from .options import Subcommands, add_settings_flags, settings_from, whole_number
from .output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, fail, print_table

DEFAULT_MIN_WIN = 0.6  # tune_from_feedback's own default


def cmd_export(args: argparse.Namespace) -> int:
    from ..engine.plugin_host import PluginHost

    if args.from_feedback is not None and args.recipe and not args.list:
        if args.quick:  # the A/B is what decides; a quick one would decide nothing
            return fail("--quick does not go with --from-feedback: a tuned version is written only if it "
                        "wins the full held-out A/B comparison, which has no quick form", EXIT_USAGE)
        if args.replace:
            return fail("--replace does not go with --from-feedback: a tuned version never replaces one",
                        EXIT_USAGE)
        return tune_on_feedback(args, args.recipe)  # a served model's name; no recipe, no torch
    tuning_only = [flag for flag, value in (("--owner", args.owner), ("--min-win", args.min_win))
                   if value is not None]
    if tuning_only and args.from_feedback is None:
        verb = "go" if len(tuning_only) > 1 else "goes"
        return fail(f"{' and '.join(tuning_only)} {verb} with --from-feedback (tuning a served model on "
                    "feedback)", EXIT_USAGE)
    settings = settings_from(args)
    host = PluginHost(allow=settings.plugins, load_entrypoints=settings.load_installed_plugins)
    recipes = host.load().recipes
    if args.list or not args.recipe:
        if args.json:
            print(json.dumps([{"name": r.name, "description": r.description,
                               "models_dir": str(r.models_dir)} for r in recipes.values()], indent=2))
        else:
            print_table(((r.name, r.description) for r in recipes.values()), ("RECIPE", "DESCRIPTION"))
        if not args.list:
            print("museforge export: name a recipe from the list above (or --list to see it only)",
                  file=sys.stderr)
        return EXIT_OK if args.list else EXIT_USAGE
    recipe = recipes.get(args.recipe)
    if recipe is None:
        return fail(f"unknown recipe {args.recipe!r}; known: {', '.join(recipes) or 'none'}", EXIT_USAGE)
    try:
        from museforge.export.pipeline import run_recipe
    except ImportError as exc:
        print(f"museforge export needs the training extra: pip install 'museforge[train]' ({exc})",
              file=sys.stderr)
        return EXIT_FAILED
    output = args.output
    if output is None and args.quick:
        output = Path("museforge-export") / recipe.name
    from museforge.export.pipeline import NonCommercialData
    from museforge.export.targets import VersionTaken, default_version, refusal
    from museforge.export.validate import ExportValidationError

    if output is not None and output.exists() and not output.is_dir():  # said now, not after training
        return fail(f"--output {output} is a file; give a folder (the model goes into <folder>/<version>/)",
                    EXIT_USAGE)
    root = output or recipe.models_dir
    # A plain `museforge export NAME` rebuilds the shipped model: its newest version, in place, as
    # documented. Anything else adds a version, and rewrites one only when --replace says so.
    rebuild = output is None and args.model_version is None
    replace = args.replace or rebuild
    version = args.model_version or default_version(root, rewrite_newest=replace)
    said = refusal(root, recipe.name, version, replace) or unwritable_folder(root, str(version))
    if said:  # said now, not after half an hour of training
        return fail(said, EXIT_USAGE)
    try:
        result = run_recipe(
            recipe, seed=args.seed, quick=args.quick, output=output, version=version,
            show_progress=not args.no_progress, checkpoint_dir=args.checkpoints,
            allow_noncommercial=args.allow_noncommercial, replace=replace,
        )
    except NonCommercialData as exc:
        return fail(f"{recipe.name} trains on data that may not be used commercially: {exc}")
    except VersionTaken as exc:  # a companion's folder, known only once the recipe ran
        return fail(f"{recipe.name}: nothing written: {exc}")
    except ExportValidationError as exc:
        return fail(f"{recipe.name}: export refused, nothing written: {exc}")
    except (ImportError, AttributeError, TypeError) as exc:  # a recipe whose build cannot be reached or run
        traceback.print_exc()
        return fail(f"the recipe {recipe.name} (plugin {recipe_plugin(host, recipe.name)}) failed: "
                    f"{type(exc).__name__}: {exc}")
    manifest = result.manifest
    resumed = manifest.training.get("resumed")  # the seconds are this run's, after the checkpoint
    after = f", resumed after step {resumed['after_step']} of {resumed['of']}" if resumed else ""
    print(f"wrote {result.directory / 'model.onnx'} (sha256 {manifest.sha256[:12]}…, "
          f"trained in {manifest.training['seconds']} s{after})")
    print(json.dumps(manifest.metrics, indent=2))
    return EXIT_OK


def tune_on_feedback(args: argparse.Namespace, model: str) -> int:
    """``--from-feedback``: a new version of ``model`` tuned on the feedback store, written only
    if it wins the held-out A/B (exit 0); refused, nothing written, the old version stays (exit 1)."""
    from ..config import data_directory
    from ..engine.catalogue import Engine
    from ..feedback.store import DATABASE_NAME, FeedbackStore, NewerSchema, StoreError

    settings = settings_from(args)
    min_win = DEFAULT_MIN_WIN if args.min_win is None else args.min_win
    path = Path(args.from_feedback) if args.from_feedback else data_directory(settings) / DATABASE_NAME
    if not path.is_file():
        return fail(f"no feedback database at {path}: give its path after --from-feedback", EXIT_USAGE)
    try:
        import onnx

        from museforge.export.feedback_tuning import TooLittleFeedback, refusal, tune_from_feedback
    except ImportError as exc:
        return fail(f"museforge export needs the training extra: pip install 'museforge[train]' ({exc})")
    engine = Engine(settings).start()
    try:
        store = FeedbackStore(path)
    except (NewerSchema, StoreError) as exc:
        engine.close()
        return fail(f"cannot read the feedback database {path}: {exc}")
    try:
        loaded = engine.runtime.models.get(model)
        if loaded is None or not loaded.ready:
            return fail(f"{model} is not served here: {loaded.error if loaded else 'no such model'}")
        output = args.output or loaded.directory
        owner = args.owner or ""
        if not store.kept(owner):
            whose = f"owner {owner!r} (--owner: an API key's id)" if owner else \
                "owner '' (a server without auth; give --owner KEY_ID for a key's)"
            return fail(f"{path} keeps no feedback events of {whose}: nothing to tune on")
        if args.model_version is not None and (output / str(args.model_version)).exists():
            return fail(f"{output / str(args.model_version)} exists: a tuned version never replaces one; "
                        "name another --version-number", EXIT_USAGE)
        result = tune_from_feedback(engine, model, store, owner, output, min_win, args.seed,
                                    progress=lambda line: print(line, file=sys.stderr, flush=True),
                                    version=args.model_version)
    except (TooLittleFeedback, ValueError, OSError) as exc:  # not a latent generator's model; the
        return fail(f"{model}: {exc}")  # version exists or cannot be written
    except (AssertionError, onnx.checker.ValidationError) as exc:
        return fail(f"{model}: the tuned graph is not the shift it stands for; nothing written ({exc})")
    finally:
        store.close()
        engine.close()
    print(json.dumps({"model": model, "version": result.version, "promoted": result.promoted,
                      "ab_win": round(result.win, 4), "needed": min_win,
                      "pairs": {"tune": result.pairs[0], "judge": result.pairs[1]},
                      "shift_rms": round(result.shift, 4),
                      "directory": str(result.directory) if result.directory else None}, indent=2))
    if not result.promoted:
        return fail(f"{model} version {result.version} {refusal(result.wins, min_win)}: not written; "
                    f"version {loaded.version} stays")
    print(f"wrote {result.directory} (version {result.version}); a server serving the newest version "
          "picks it up at its next start or `museforge models load`")
    return EXIT_OK


def add_export_parser(sub: Subcommands) -> None:
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
    export.add_argument("--seed", type=whole_number(0, 2**32 - 1, "a training seed"), default=0,
                        help="training seed, 0 to 2**32 - 1 (default 0)")
    export.add_argument("--output", type=Path,
                        help="models directory (default: the plugin's own models/<name>/; "
                        "with --quick: ./museforge-export/<name>)")
    export.add_argument("--version-number", type=whole_number(1, 2**31 - 1, "a model version"), default=None,
                        dest="model_version", metavar="N",
                        help="the version directory to write (default: the next free one there, 1 in an "
                        "empty folder; with neither --output nor --quick: the newest shipped one, which "
                        "the export rebuilds in place; with --replace: the newest one there; with "
                        "--from-feedback: the one after both the served version and --output's newest)")
    export.add_argument("--replace", action="store_true",
                        help="rewrite the version directory if it exists (refused otherwise, naming the "
                        "next free version; another model's version is never rewritten)")
    export.add_argument("--checkpoints", type=Path,
                        help="directory for training checkpoints: saved at the recipe's interval (500 steps "
                        "for most) and when Ctrl-C or SIGTERM stops the run (after the step under way); "
                        "the same command with the same directory resumes from the latest")
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    export.add_argument("--allow-noncommercial", action="store_true",
                        help="train on data whose licence forbids commercial use (refused otherwise; "
                        "the manifest and every artifact's provenance record the licence)")
    tuning = export.add_argument_group(
        "tuning on feedback", "A new version of a latent generator's model, its latent prior moved toward "
        "what the key's users rated highly; written only if it wins a held-out A/B comparison "
        "(docs/feedback.md).")
    tuning.add_argument("--from-feedback", nargs="?", const="", default=None, metavar="DATABASE",
                        help="tune on this feedback database (default: the server's, in its data directory)")
    tuning.add_argument("--owner", default=None, metavar="KEY_ID",
                        help="whose feedback: an API key's id (default: '', a server without auth)")
    tuning.add_argument("--min-win", type=share, default=None, metavar="SHARE",
                        help="the share of held-out A/B comparisons the median held-out user's picks must "
                        f"give the new version, 0 to 1 (default {DEFAULT_MIN_WIN}); and three in four of "
                        "them must prefer it at all")
    add_settings_flags(export)
    export.set_defaults(handler=cmd_export)


def share(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a share is 0 to 1 (0.6: 60%), got {text}")
    return value


def unwritable_folder(root: Path, version: str) -> str:
    """Why version ``version`` cannot be written under ``root`` ('' when it can), checked before any
    training: the export stages it in ``root`` and renames it into place (companions go beside)."""
    folder = root / version
    if folder.exists() and not folder.is_dir():
        return (f"{folder} is a file; the version folder would go there (remove it, or name another "
                "--version-number)")
    parent = root
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file, so {folder} cannot be made"
    try:  # a folder made and removed at once: what access() says for root is no proof (/proc)
        os.rmdir(tempfile.mkdtemp(prefix=".museforge-check-", dir=parent))
    except OSError as exc:
        return f"{folder} cannot be made: {parent} is not writable here ({exc.strerror or exc})"
    return ""


def recipe_plugin(host: Any, name: str) -> str:
    """The plugin that registered recipe ``name``."""
    return str(host.catalogue.owners.get(f"recipes:{name}", "?"))
