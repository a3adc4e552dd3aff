"""Quality of ``effect.sketch`` on held-out OpenMoji drawings, beside two baselines (numpy, SciPy,
scikit-image, scikit-learn; no torch).

- **Colour fidelity** to the artist's own colour version: mean CIELAB ΔE (CIE76) over the pixels
  either image covers, both composited on white; and the total-variation distance between their
  colour histograms (lightness x a* x b*, opaque pixels; ``HISTOGRAM_BINS``).
- **Structure**: strokes re-extracted from the result (dark pixels, luma below 0.5 on white)
  against the sketch's (ink above 0.5), F1 with one pixel of tolerance; the artist's own colour
  versions are scored the same way, for scale.
- **Realism**: ``sketch_judge`` trained on real vs each baseline; the share of results it calls real.
- **Hand-drawn strokes**: all of the above again on the drawings roughened at strength 0.5 and 1
  (``sketch_strokes``), the colour version following the same wobble.
- **Hints**: one scribble of an unusual colour (the region's own, turned about the grey axis) in
  the largest enclosed region; ΔE of that region's result from the hinted colour, with the hint
  filling its region (the default), with the scribble alone, and without it.
- **Variations**: mean ΔE between the results of four seeds for the same drawing.

Results are made as the server makes them at 64 x 64 (``sketch.style_codes``, the palette snap,
``sketch.finish``; not the 8-bit encoding),
drawing i with seed EVAL_SEED + i, at the served defaults (variation 0.5, palette openmoji).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.color import rgb2lab

from .sketch import STYLE, SketchParams, finish, in_palette, solid_ink, style_codes
from .sketch_baselines import FlatFill, NearestDrawing
from .sketch_batches import hue_turn, roughened_pair
from .sketch_data import SketchPairs, sketch_held_out, sketch_train
from .sketch_hints import empty
from .sketch_judge import CHROMA_BINS, CHROMA_RANGE, clip_chroma, features, judged_real, on_white
from .sketch_palette import hint_colours
from .sketch_region_colours import DRAW_OUTPUT, PALETTE_OUTPUT
from .sketch_regions import fill_regions, regions

__all__ = ["EVAL_SEED", "HISTOGRAM_BINS", "HISTOGRAM_RANGE", "QUICK_HELD_OUT", "QUICK_TRAIN", "STRENGTHS",
           "colour_error", "evaluate_session", "evaluation_pairs", "finished", "histogram_distance",
           "histogram_distances", "run", "served", "structure_f1"]

EVAL_SEED = 2024
STRENGTHS = (("clean", 0.0), ("rough", 0.5), ("rougher", 1.0))
_BATCH = 64
# Lightness in 4 bins of 25; a* and b* in 7 bins of 26.7 centred on grey (the judge's), colours past
# the outer bins counted in them. Until 2026-12-06 a* and b* had 6 bins over +-80: an edge at 0 split
# the greys by rounding noise (half an 8-bit level moved half an emoji's pixels across it: 0.29 from
# the artist's own image), and OpenMoji's yellow (b* 84.5), past the range, was not counted at all.
HISTOGRAM_BINS = (4, CHROMA_BINS, CHROMA_BINS)
HISTOGRAM_RANGE = ((0.0, 100.0), *CHROMA_RANGE)
QUICK_HELD_OUT, QUICK_TRAIN = 12, 48  # drawings of a quick derivation's figures and its baselines


def evaluation_pairs(quick: bool) -> tuple[SketchPairs, SketchPairs]:
    """(training, held-out) drawings a derived version's figures are measured with: all of them,
    or for ``quick`` the first 48 and 12 (a smoke test's figures)."""
    train, held = sketch_train(), sketch_held_out()
    if quick:
        return train.subset(np.arange(QUICK_TRAIN)), held.subset(np.arange(QUICK_HELD_OUT))
    return train, held


def run(session: Any, lines: np.ndarray, hints: np.ndarray, codes: np.ndarray) -> dict[str, np.ndarray]:
    """The network's outputs for each drawing, in batches: ``image`` (N, 4, 64, 64), and ``palette``
    (N, 25, 64, 64) from a graph with a colour memory."""
    names = [o.name for o in session.get_outputs()]
    parts = [session.run(names, {"lines": lines[i:i + _BATCH], "hints": hints[i:i + _BATCH],
                                 "style": codes[i:i + _BATCH]}) for i in range(0, len(lines), _BATCH)]
    return {name: np.concatenate([p[k] for p in parts]).astype(np.float32, copy=False)
            for k, name in enumerate(names)}


def served(session: Any, lines: np.ndarray, hints: np.ndarray | None = None, *, seed: int = EVAL_SEED,
           **settings: Any) -> np.ndarray:
    """What effect.sketch returns for each 64 x 64 drawing i with seed ``seed + i`` (``settings``:
    SketchParams fields, the defaults otherwise)."""
    params = SketchParams(**settings)
    if hints is None:
        hints = np.broadcast_to(empty(*lines.shape[2:]), (len(lines), 5, *lines.shape[2:]))
    artist = hints
    if params.hint_fill == "region":
        hints = np.stack([fill_regions(h, plane) for h, plane in zip(hints, lines[:, 0], strict=True)])
    hints = np.ascontiguousarray(hints, np.float32)
    codes = np.concatenate([style_codes(seed + i, 1, params.variation) for i in range(len(lines))])
    outputs = run(session, lines, hints, codes.reshape(-1, STYLE))
    return finished(outputs["image"], outputs.get(PALETTE_OUTPUT), outputs.get(DRAW_OUTPUT), lines, artist,
                    hints, params, seed)


def finished(images: np.ndarray, shares: np.ndarray | None, power: np.ndarray | None, lines: np.ndarray,
             artist: np.ndarray, hints: np.ndarray, params: SketchParams, seed: int) -> np.ndarray:
    """What the server makes of the network's ``images`` and the memory's ``shares`` and ``power``
    (None from a graph without one), drawing i with seed ``seed + i``; ``artist``: the hints as
    scribbled, ``hints``: as the network was given them (regions filled)."""
    out = []
    for i, (image, plane, hint, filled) in enumerate(zip(images, lines[:, 0], artist, hints, strict=True)):
        coloured = in_palette(image, None if shares is None else shares[i], plane, filled, hint_colours(hint),
                              params, seed + i, share_power=None if power is None else float(power[i]))
        out.append(finish(coloured, plane if params.keep_lines else None, solid_ink(params, plane)))
    return np.stack(out)


def _lab(rgba: np.ndarray) -> np.ndarray:
    return np.stack([rgb2lab(image) for image in on_white(rgba)])


def colour_error(result: np.ndarray, real: np.ndarray) -> float:
    """Mean over drawings of the mean ΔE over pixels either covers."""
    difference = np.linalg.norm(_lab(result) - _lab(real), axis=-1)
    covered = (result[:, 3] > 0.1) | (real[:, 3] > 0.1)
    per = [float(d[c].mean()) if c.any() else 0.0 for d, c in zip(difference, covered, strict=True)]
    return float(np.mean(per))


def _histograms(rgba: np.ndarray) -> np.ndarray:
    out = []
    for lab, alpha in zip(_lab(rgba), rgba[:, 3], strict=True):
        pixels = clip_chroma(lab[alpha > 0.5])
        counts = np.histogramdd(pixels, bins=HISTOGRAM_BINS, range=HISTOGRAM_RANGE)[0].ravel()
        out.append(counts / max(counts.sum(), 1.0))
    return np.asarray(out)


def histogram_distances(result: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Each drawing's total-variation distance between the two colour histograms."""
    return 0.5 * np.abs(_histograms(result) - _histograms(real)).sum(axis=1)


def histogram_distance(result: np.ndarray, real: np.ndarray) -> float:
    return float(np.mean(histogram_distances(result, real)))


def _strokes(darkness: np.ndarray) -> np.ndarray:
    # One threshold on both sides: a pencil-light stroke counts in the sketch and in the result
    # alike. Dark fills (a red is ~0.6 dark) count too; the real colour versions pay the same.
    return darkness > 0.5


def structure_f1(result: np.ndarray, lines: np.ndarray) -> float:
    """Mean F1 of the result's strokes against the sketch's (``lines`` (N, 1, H, W)), 1 px tolerance."""
    darkness = 1.0 - on_white(result) @ np.array([0.299, 0.587, 0.114])
    scores = []
    for got_plane, want_plane in zip(darkness, lines[:, 0], strict=True):
        got, want = _strokes(got_plane), _strokes(want_plane)
        near_got, near_want = (ndimage.binary_dilation(x, np.ones((3, 3))) for x in (got, want))
        precision = (got & near_want).sum() / max(got.sum(), 1)
        recall = (want & near_got).sum() / max(want.sum(), 1)
        scores.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(scores))


def held_out_drawings(held: SketchPairs, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """(lines (N, 1, 64, 64), colour (N, 4, 64, 64)) of the held-out pairs, roughened at ``strength``."""
    lines, colour = held.unit_lines(), held.unit_colour()
    if strength == 0.0:
        return lines, colour
    pairs = [roughened_pair(plane, rgba, np.random.default_rng(EVAL_SEED + i), strength)
             for i, (plane, rgba) in enumerate(zip(lines[:, 0], colour, strict=True))]
    return np.stack([p[0] for p in pairs])[:, None], np.stack([p[1] for p in pairs])


def _hint_case(plane: np.ndarray, rgba: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """(hints, region) for the drawing's largest enclosed region, or None when it has none of 40+ px."""
    labels, outside = regions(plane)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    sizes[outside] = 0
    if sizes.max(initial=0) < 40:
        return None
    region = labels == int(np.argmax(sizes))
    own = rgba[:3, region].mean(axis=1)
    colour = hue_turn(own[:, None], float(rng.uniform(2.0, 4.3)))[:, 0]
    hints = empty(*plane.shape)
    core = ndimage.binary_erosion(region, np.ones((3, 3)))
    ys, xs = np.nonzero(core if core.any() else region)
    middle = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    y, x = ys[middle], xs[middle]
    stroke = np.zeros_like(region)
    stroke[max(0, y - 1):y + 2, max(0, x - 4):x + 5] = True
    stroke &= region
    hints[:3, stroke] = colour[:, None]
    hints[3:, stroke] = 1.0
    measured = region & ~ndimage.binary_dilation(plane > 0.3)  # the region's paper, off its strokes
    return (hints, measured) if measured.any() else None


def hint_figures(session: Any, held: SketchPairs) -> dict[str, float]:
    lines = held.unit_lines()
    cases = [(i, _hint_case(p, c, np.random.default_rng(EVAL_SEED + i)))
             for i, (p, c) in enumerate(zip(lines[:, 0], held.unit_colour(), strict=True))]
    kept = [(i, case) for i, case in cases if case is not None]
    index = np.array([i for i, _ in kept])
    hints = np.stack([case[0] for _, case in kept])
    results = {"hint_error": served(session, lines[index], hints),
               "hint_error_free_palette": served(session, lines[index], hints, palette="free"),
               "hint_error_strokes_only": served(session, lines[index], hints, hint_fill="strokes"),
               "hint_error_unhinted": served(session, lines[index])}
    errors: dict[str, list[float]] = {name: [] for name in results}
    for n, (_, (hint, region)) in enumerate(kept):
        want = rgb2lab(hint[:3, hint[4] > 0.5].mean(axis=1)[None, None])[0, 0]
        for name, images in results.items():
            got = rgb2lab(on_white(images[n:n + 1])[0])[region]
            errors[name].append(float(np.linalg.norm(got - want, axis=-1).mean()))
    return {**{name: float(np.mean(values)) for name, values in errors.items()}, "hint_drawings": len(kept)}


def variation_spread(session: Any, lines: np.ndarray, seeds: int = 4) -> float:
    outs = [_lab(served(session, lines, seed=EVAL_SEED + 1000 * k)) for k in range(seeds)]
    pairs = [np.linalg.norm(outs[a] - outs[b], axis=-1).mean()
             for a in range(seeds) for b in range(a + 1, seeds)]
    return float(np.mean(pairs))


def evaluate_session(session: Any, held: SketchPairs | None = None,
                     train: SketchPairs | None = None) -> dict[str, Any]:
    """Every figure the manifest records and the tests recompute from the shipped ONNX."""
    held = sketch_held_out() if held is None else held
    train = sketch_train() if train is None else train
    methods: dict[str, Callable[[np.ndarray], np.ndarray]] = {"flat_fill": FlatFill(train),
                                                               "nearest": NearestDrawing(train)}
    figures: dict[str, Any] = {"held_out_drawings": len(held)}
    for tag, strength in STRENGTHS:
        lines, real = held_out_drawings(held, strength)
        results = {"model": served(session, lines)}
        results.update({name: method(lines) for name, method in methods.items()})
        for name, result in results.items():
            figures[f"{name}_colour_error_{tag}"] = colour_error(result, real)
            figures[f"{name}_histogram_distance_{tag}"] = histogram_distance(result, real)
            figures[f"{name}_structure_f1_{tag}"] = structure_f1(result, lines)
        figures[f"real_structure_f1_{tag}"] = structure_f1(real, lines)
        if tag == "clean":
            for label, settings in (("variation0", {"variation": 0.0}), ("variation1", {"variation": 1.0}),
                                    ("free_palette", {"palette": "free"})):
                other = served(session, lines, **settings)
                figures[f"model_colour_error_{label}"] = colour_error(other, real)
                figures[f"model_histogram_distance_{label}"] = histogram_distance(other, real)
            network_only = served(session, lines, keep_lines=False)
            figures["model_structure_f1_network_only"] = structure_f1(network_only, lines)
            rows = {name: features(result) for name, result in results.items()}
            real_rows = features(real)
            for name in methods:
                judged = judged_real(real_rows, rows[name], {"model": rows["model"], "baseline": rows[name]})
                figures[f"judge_vs_{name}_accuracy"] = judged["accuracy"]
                figures[f"judge_vs_{name}_model_called_real"] = judged["model"]
                figures[f"judge_vs_{name}_baseline_called_real"] = judged["baseline"]
            figures["variation_spread"] = variation_spread(session, lines[:64])
    return {**figures, **hint_figures(session, held)}
