"""``museforge export``: train a model from a plugin's recipe and export it to ONNX."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..runtime.versions import available_versions
from .options import Subcommands, add_settings_flags, settings_from
from .output import EXIT_FAILED, EXIT_OK, EXIT_USAGE, fail, print_table


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

    root = output or recipe.models_dir  # reproducing: the newest version there, unless one is named
    shipped = available_versions(root) if root.is_dir() else []
    version = args.model_version or (shipped[-1] if shipped else 1)
    try:
        result = run_recipe(
            recipe, seed=args.seed, quick=args.quick, output=output, version=version,
            show_progress=not args.no_progress, checkpoint_dir=args.checkpoints,
            allow_noncommercial=args.allow_noncommercial,
        )
    except NonCommercialData as exc:
        return fail(f"{recipe.name} trains on data that may not be used commercially: {exc}")
    manifest = result.manifest
    print(f"wrote {result.directory / 'model.onnx'} (sha256 {manifest.sha256[:12]}…, "
          f"trained in {manifest.training['seconds']} s)")
    print(json.dumps(manifest.metrics, indent=2))
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
    export.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    export.add_argument("--output", type=Path,
                        help="models directory (default: the plugin's own models/<name>/; "
                        "with --quick: ./museforge-export/<name>)")
    export.add_argument("--version-number", type=int, default=None, dest="model_version", metavar="N",
                        help="the version directory to write (default: the newest one there, so a plain "
                        "export reproduces the shipped model; 1 in an empty --output)")
    export.add_argument("--checkpoints", type=Path, help="directory for training checkpoints")
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    export.add_argument("--allow-noncommercial", action="store_true",
                        help="train on data whose licence forbids commercial use (refused otherwise; "
                        "the manifest and every artifact's provenance record the licence)")
    add_settings_flags(export)
    export.set_defaults(handler=cmd_export)
