"""How well the colour memory's ranking rules do on a validation split of the training drawings.

Rules for choosing a sketch's neighbours (``sketch_memory.RankedColourMemory``) are chosen here,
not on the held-out drawings: a seeded 15% of the groups of identical line art is set aside
(272 of the 1,858 training drawings; none of their line art is in the rest), the other drawings
make the memory and train the colour-mix guess, and the ones set aside are coloured as the server
colours them (the served network's image; the regions' colours from the memory's answers) and
compared with their artists' own colour versions. It prints, at variation 0 and 0.5:

- **shape only**: the 5 drawings with the nearest keys (as versions 3 and 4 choose them; every
  rule here draws by version 5's rule at variation 0.5, which versions 3 and 4 do not);
- **ranked**: of the 20 nearest, the 5 whose colour mix is nearest the guess (version 5 on);
- **oracle**: the same, ranked by the drawing's true colour mix: what a perfect guess would reach.

    python scripts/sketch_validation.py [--guess FILE]     # FILE: the guess's weights, trained
                                                           # (about 5 minutes) and saved when absent
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from museforge.plugins.effect.sketch import MODELS, STYLE, SketchParams, style_codes
from museforge.plugins.effect.sketch_colour_mix import FULL_STEPS, ColourMix, colour_mix_of, train_colour_mix
from museforge.plugins.effect.sketch_data import SketchPairs, sketch_train
from museforge.plugins.effect.sketch_hints import empty
from museforge.plugins.effect.sketch_memory import MIX_SEED, NEIGHBOURS, RankedColourMemory, colour_answers
from museforge.plugins.effect.sketch_quality import EVAL_SEED, colour_error, finished, histogram_distance, run
from museforge.plugins.effect.sketch_region_colours import NONE, SHARE_POWER

VALIDATION = 0.15
SPLIT_SEED = 0
VARIATIONS = (0.0, 0.5)
SERVED = "6"  # the network whose images are coloured (it saw every training drawing; the memory is split)


def validation_split(pairs: SketchPairs) -> tuple[SketchPairs, SketchPairs]:
    """(memory, validation): the drawings outside and inside a seeded 15% of the groups of
    identical line art."""
    art = [lines.tobytes() for lines in pairs.lines]
    group_of = {a: k for k, a in enumerate(dict.fromkeys(art))}
    groups = np.array([group_of[a] for a in art])
    chosen = np.random.default_rng(SPLIT_SEED).permutation(len(group_of))[: int(VALIDATION * len(group_of))]
    held = np.isin(groups, chosen)
    return pairs.subset(np.flatnonzero(~held)), pairs.subset(np.flatnonzero(held))


def trained_guess(memory: SketchPairs, path: Path | None) -> ColourMix:
    """The colour-mix guess trained on ``memory`` as the recipe trains it, from ``path`` when saved."""
    guess = ColourMix()
    if path is not None and path.exists():
        guess.load_state_dict(torch.load(path))
        return guess.eval()
    trained = train_colour_mix(memory, colour_mix_of(colour_answers(memory)), steps=FULL_STEPS, seed=MIX_SEED)
    if path is not None:
        torch.save(trained.state_dict(), path)
    return trained.eval()


def shares_of(memory: RankedColourMemory, picks: np.ndarray, size: int) -> np.ndarray:
    """(N, 25, size, size): the share of the picked drawings giving each answer at each pixel."""
    one_hot = np.eye(NONE + 1, dtype=np.float32)
    answers = memory.answers.numpy().astype(np.int64)
    side = round(answers.shape[1] ** 0.5)  # the memory keeps its answers pooled to side x side
    shares = one_hot[answers[picks]].mean(axis=1).transpose(0, 2, 1).reshape(len(picks), NONE + 1, side, side)
    return shares.repeat(size // side, axis=2).repeat(size // side, axis=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guess", type=Path,
                        help="the guess's weights: read when present, else trained and saved there")
    args = parser.parse_args()
    memory_pairs, validation = validation_split(sketch_train())
    print(f"memory {len(memory_pairs)} drawings, validation {len(validation)}", flush=True)
    memory = RankedColourMemory(memory_pairs, trained_guess(memory_pairs, args.guess)).eval()
    lines, real = validation.unit_lines(), validation.unit_colour()
    with torch.no_grad():
        tensor = torch.from_numpy(lines)
        index, distance = memory.shape_candidates(tensor)
        truth = torch.from_numpy(colour_mix_of(colour_answers(validation)))
        rules = {"shape only": index[:, :NEIGHBOURS],
                 "ranked": memory.ranked(index, distance, torch.softmax(memory.guess(tensor), dim=1)),
                 "oracle": memory.ranked(index, distance, truth)}
    session = ort.InferenceSession(str(MODELS / "sketch" / SERVED / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    hints = np.ascontiguousarray(np.broadcast_to(empty(*lines.shape[2:]), (len(lines), 5, *lines.shape[2:])),
                                 np.float32)
    power = np.full(len(lines), SHARE_POWER, np.float32)
    print(f"{'rule':<12}" + "".join(f"  ΔE v{v:<4}  histogram v{v:<4}" for v in VARIATIONS))
    images = {}
    for variation in VARIATIONS:
        codes = np.concatenate([style_codes(EVAL_SEED + i, 1, variation) for i in range(len(lines))])
        images[variation] = run(session, lines, hints, codes.reshape(-1, STYLE))["image"]
    for name, picks in rules.items():
        shares = shares_of(memory, picks.numpy(), lines.shape[-1])
        row = f"{name:<12}"
        for variation in VARIATIONS:
            out = finished(images[variation], shares, power, lines, hints, hints,
                           SketchParams(variation=variation), EVAL_SEED)
            row += f"  {colour_error(out, real):>8.2f}  {histogram_distance(out, real):>14.4f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
