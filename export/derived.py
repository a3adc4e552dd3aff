"""A new model version made from a shipped one by a change to its graph, its trained weights kept.

A plugin that can improve a trained model after the fact (an edit of its weights chosen on
validation draws, say, or a small part trained beside the network on the same data, as
effect.sketch's colour-mix guess) reads the shipped version, edits its graph and writes the next version
here: the parent's manifest carried over (training data, licences, seed, settings) with the
new settings, the figures measured on the new graph, and the parent's number recorded, all
written whole or not at all and never over an existing version. No torch is imported.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from museforge.runtime.manifest import MODEL_NAME, Manifest, TensorInfo
from museforge.runtime.versions import next_version

from .convert import write_version
from .spec import TensorSpec

__all__ = ["ShippedVersion", "derivation_main"]


@dataclass(frozen=True)
class ShippedVersion:
    """One version folder of a model: its manifest and graph."""

    path: Path
    manifest: Manifest

    @classmethod
    def read(cls, path: Path) -> ShippedVersion:
        if not (path / "manifest.json").is_file():
            raise ValueError(f"{path} is not a model version (no manifest.json)")
        return cls(path, Manifest.read(path))

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.manifest.training.get("hyperparameters", {}))

    def graph(self) -> onnx.ModelProto:
        return onnx.load(str(self.path / MODEL_NAME))

    def derive(self, graph: onnx.ModelProto, output: Path, version: int | None = None, *,
               hyperparameters: Mapping[str, Any], metrics: Mapping[str, Any], quick: bool = False,
               added_outputs: Sequence[TensorSpec] = ()) -> Path:
        """``output/<version>/`` holding ``graph`` (by default the version after the newest there,
        as ``models add`` and feedback tuning number theirs); FileExistsError if it exists.
        ``added_outputs``: outputs the new graph has beyond the parent's."""
        version = next_version(output) if version is None else version
        training = {**self.manifest.training, "hyperparameters": {**self.hyperparameters, **hyperparameters},
                    "derived_from_version": self.manifest.version}
        manifest = self.manifest.model_copy(update={
            "version": version, "training": training, "metrics": dict(metrics),
            "quick": self.manifest.quick or quick,
            "outputs": [*self.manifest.outputs, *(TensorInfo(name=t.name, dtype=t.dtype, shape=list(t.shape))
                                                  for t in added_outputs)]})
        return write_version(graph, manifest, output, version, replace=False)[0]


Derive = Callable[[Path, Path, int | None, bool], Path]  # (parent, output, version, quick) -> written


def derivation_main(argv: list[str] | None, *, prog: str, description: str, model: str, models: Path,
                    derive: Derive, quick_help: str) -> int:
    """The command line of a derivation: ``--from-version N [--output] [--version-number] [--quick]``;
    prints the folder written, or says why not and returns 1."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--from-version", type=int, required=True, metavar="N",
                        help="the version to start from")
    parser.add_argument("--output", type=Path, default=models,
                        help="models folder to write into (default: the plugin's own)")
    parser.add_argument("--version-number", type=int, default=None, metavar="M",
                        help="the new version's number (default: one above the highest there)")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args(argv)
    parent = models / str(args.from_version)
    if not parent.is_dir():
        parser.error(f"no {model} version {args.from_version} in {models}")
    try:
        written = derive(parent, args.output, args.version_number, args.quick)
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(written)
    return 0
