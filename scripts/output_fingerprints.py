"""The sha256 of what every generator and effect makes for fixed seeds, to prove a refactor changed no output.

    python scripts/output_fingerprints.py -o before.json          # on the old code
    python scripts/output_fingerprints.py --compare before.json   # on the new code: exit 1 on any change

It runs the engine in-process with the built-in plugins and shipped models, over every
output format, a few seeds and parameter sets per generator, and every effect on real
photographs (PNG, 16-bit PNG and EXR inputs). Any interpreter with museforge importable
works, so an old checkout installed in its own virtualenv can write the reference.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from museforge.config import Settings

try:
    from museforge.engine.catalogue import EffectInput, Engine
except ImportError:  # an old checkout, before core/ had subpackages
    from museforge.engine import EffectInput, Engine

SEEDS = (0, 7)
GENERATOR_CASES: dict[str, list[dict[str, Any]]] = {
    "image.digits": [{}, {"digit": 3}],
    "image.faces": [{}],
    "image.texture": [{}, {"family": "grass", "tileable": True}],
    "image.tiles": [{}, {"kind": "wall", "look": "violet", "columns": 2, "rows": 2}],
    "image.icons": [{}, {"category": "animals"}],
    "music.melody": [{"bars": 4}, {"bars": 4, "style": "celtic"},
                     {"bars": 4, "style": "chorale", "stems": True}],
    "mesh.props": [{"resolution": 32}, {"family": "crate", "lods": 2, "resolution": 32}],
}
EFFECT_CASES: dict[str, list[dict[str, Any]]] = {
    "effect.denoise": [{}],
    "effect.restore": [{}],
    "effect.stylize": [{}],
    "effect.upscale": [{}, {"scale": 4}],
    "effect.interpolate": [{}],
}


def photographs() -> list[np.ndarray]:
    """Two real photographs (scikit-image's coffee and chelsea), cropped small, as RGB uint8."""
    from skimage import data

    return [np.ascontiguousarray(data.coffee()[100:196, 200:328]),
            np.ascontiguousarray(data.chelsea()[50:146, 100:228])]


def encoded_inputs(photo: np.ndarray) -> Iterator[tuple[str, bytes]]:
    png = io.BytesIO()
    Image.fromarray(photo).save(png, format="PNG")
    yield "png", png.getvalue()
    from museforge.engine.codecs.png_writer import write_png

    yield "png16", write_png(photo.astype(np.uint16) * 257)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def generator_fingerprints(engine: Engine) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, cases in GENERATOR_CASES.items():
        formats = engine.generators[name].formats
        for number, parameters in enumerate(cases):
            for fmt in formats:
                for seed in SEEDS:
                    artifacts = engine.generate(name, parameters, seed=seed, count=2, fmt=fmt)
                    for artifact in artifacts:
                        found[f"{name}/{number}/{fmt}/seed{seed}/{artifact.index}"] = digest(artifact.data)
    return found


def effect_fingerprints(engine: Engine) -> dict[str, str]:
    found: dict[str, str] = {}
    photos = photographs()
    for name, cases in EFFECT_CASES.items():
        effect = engine.effects[name]
        for number, parameters in enumerate(cases):
            for input_kind, first in encoded_inputs(photos[0]):
                inputs = [EffectInput(first, "a")]
                if effect.min_inputs == 2:
                    inputs.append(EffectInput(dict(encoded_inputs(photos[1]))[input_kind], "b"))
                for fmt in ("png", "exr"):
                    artifacts = engine.apply_effect(name, parameters, inputs, seed=3, fmt=fmt)
                    for artifact in artifacts:
                        key = f"{name}/{number}/{input_kind}->{fmt}/{artifact.index}"
                        found[key] = digest(artifact.data)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, help="write the fingerprints to this JSON file")
    parser.add_argument("--compare", type=Path, help="compare with fingerprints written earlier")
    args = parser.parse_args(argv)
    engine = Engine(Settings(load_installed_plugins=True)).start()
    try:
        found = {**generator_fingerprints(engine), **effect_fingerprints(engine)}
    finally:
        engine.close()
    if args.output:
        args.output.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    print(f"{len(found)} outputs fingerprinted")
    if args.compare:
        reference = json.loads(args.compare.read_text())
        changed = sorted(k for k in reference.keys() & found.keys() if reference[k] != found[k])
        missing = sorted(reference.keys() - found.keys())
        for key in changed:
            print(f"changed: {key}")
        for key in missing:
            print(f"missing: {key}")
        same = len(reference.keys() & found.keys()) - len(changed)
        print(f"{same} identical, {len(changed)} changed, {len(missing)} missing, "
              f"{len(found.keys() - reference.keys())} new")
        return 1 if changed or missing else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
