"""The ``museforge`` argument parser: each command module adds its own subcommand, with the
function that runs it as the ``handler`` default."""

from __future__ import annotations

import argparse

from .. import __version__
from .export_command import add_export_parser
from .feedback import add_feedback_parser
from .jobs import add_job_parser
from .keys import add_keys_parser
from .listing_commands import add_listing_parser
from .media_commands import add_apply_parser, add_generate_parser
from .models_command import add_models_parser
from .serve_command import add_serve_parser
from .tool_commands import add_health_parser, add_openapi_parser, add_plugin_parser

EPILOG = """examples:
  museforge serve                                   # 127.0.0.1:50051, built-in plugins
  museforge generators                              # what the server can make
  museforge generate image.digits --param digit=7 --count 8 -o out/
  museforge effects                                 # what the server can do to media
  museforge apply effect.upscale --param scale=2 in.png -o out.png
  museforge models list                             # served models: version, state, reason
  museforge export image.digits --quick --output /tmp/models
  museforge job submit --step effect.denoise -p sigma=25 --input 'plates/sh010.####.png' \\
      --frames 1001-1240 --output 'clean/sh010.####.png' --watch
  museforge feedback rate out/image.digits-42-0000.png --stars 4 --user ann
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="museforge",
        description="museforge: a gRPC server for digital-art generation (image, music, 3D).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"museforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # In the order `museforge --help` lists them.
    add_serve_parser(sub)
    add_listing_parser(sub, "plugins")
    add_listing_parser(sub, "generators")
    add_generate_parser(sub)
    add_listing_parser(sub, "effects")
    add_apply_parser(sub)
    add_job_parser(sub)
    add_feedback_parser(sub)
    add_models_parser(sub)
    add_keys_parser(sub)
    add_health_parser(sub)
    add_openapi_parser(sub)
    add_plugin_parser(sub)
    add_export_parser(sub)
    return parser
