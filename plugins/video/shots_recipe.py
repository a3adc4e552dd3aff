"""``museforge export video.shots``: train the shot boundary network on composed clips.

Clips of five shots each are composed from ten packaged photographs and the first 70% of
the Big Buck Bunny frames (``shot_data``); a second set from the same material, other
seeds, chooses the operating points of the two outputs; the quality figures are measured
on clips made only of held-out material (three other photographs, the film's last 30%).
``--quick`` composes a few clips from the photographs alone and trains a few steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort
import torch

from museforge.export.pipeline import RecipeContext, TrainedModel
from museforge.export.spec import ExportSpec, TensorSpec

from . import shots
from .shot_boundaries import Boundary, boundaries
from .shot_data import TRAINING_DATA, Sample, samples, shot_material
from .shot_features import FEATURES, NUM_FEATURES
from .shot_net import DILATIONS, RECEPTIVE_RADIUS, WIDTH, ShotNet
from .shot_train import WINDOW, probabilities, train_shot_net
from .shots_quality import CUT_TOLERANCE, GRADUAL_TOLERANCE, Counts, Detection, count

FULL = {"train": 480, "validation": 48, "held_out": 64, "steps": 3000}
QUICK = {"train": 4, "validation": 2, "held_out": 2, "steps": 8}
BATCH = 32
LR = 2e-3
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)


def _example(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.abs(rng.normal(0.0, 0.1, shape)).astype(np.float32)


SPEC = ExportSpec(
    inputs=(TensorSpec("features", "float32", ("batch", "time", NUM_FEATURES), example=_example),),
    outputs=(TensorSpec("boundary", "float32", ("batch", "time", 2)),),
    opset=17, rtol=1e-3, atol=1e-4, max_batch_size=8,
    max_input_elements=8 * (shots.WINDOW + 2 * shots.MARGIN) * NUM_FEATURES,
    example_axes={"time": 64},
)


def detections(found: Sequence[Boundary]) -> list[Detection]:
    return [Detection(b.frame, b.kind == "gradual") for b in found]


def score(predict: list[np.ndarray], data: Sequence[Sample], cut: float, gradual: float) -> Counts:
    """Counts over clips for operating points ``cut`` and ``gradual`` on the raw probabilities."""
    total = Counts()
    for p, sample in zip(predict, data, strict=True):
        # Shift each head so its operating point is 0.5, as the exported graph does.
        moved = np.stack([_moved(p[:, 0], cut), _moved(p[:, 1], gradual)], axis=1)
        total.add(count(sample.truths, detections(boundaries(moved))))
    return total


def _moved(p: np.ndarray, point: float) -> np.ndarray:
    logit = np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))
    return 1 / (1 + np.exp(-(logit - np.log(point / (1 - point)))))


def operating_points(model: ShotNet, data: Sequence[Sample]) -> tuple[float, float]:
    """The thresholds of the two heads that maximise F1 of all boundaries on ``data``."""
    predict = [probabilities(model, s.features) for s in data]
    best = max((score(predict, data, c, g).f1(), c, g) for c in THRESHOLDS for g in THRESHOLDS)
    return float(best[1]), float(best[2])


def evaluate(session: ort.InferenceSession, data: Sequence[Sample]) -> dict[str, float]:
    """F1 on the held-out clips: hard cuts at +-1 frame, gradual transitions at +-3, both; and on
    the clips with strong camera motion alone."""
    every, moving = Counts(), Counts()
    for sample in data:
        p = session.run(None, {"features": sample.features[None]})[0][0]
        counted = count(sample.truths, detections(boundaries(p)))
        every.add(counted)
        if sample.strong_motion:
            moving.add(counted)
    return {
        "f1_hard_cuts": round(every.f1("cut"), 4), "f1_gradual": round(every.f1("gradual"), 4),
        "f1_all": round(every.f1(), 4), "f1_strong_motion": round(moving.f1(), 4),
        "precision_all": round(every.precision(), 4), "recall_all": round(every.recall(), 4),
        "held_out_clips": len(data),
        "held_out_hard_cuts": every.found["cut"] + every.missed["cut"],
        "held_out_gradual": every.found["gradual"] + every.missed["gradual"],
    }


def build(ctx: RecipeContext) -> TrainedModel:
    sizes = QUICK if ctx.quick else FULL
    ctx.use(*(TRAINING_DATA if not ctx.quick else TRAINING_DATA[:-1]))
    material = shot_material(ctx.quick)
    train = samples(material.train, sizes["train"], seed=ctx.seed * 3 + 1)
    validation = samples(material.train, sizes["validation"], seed=ctx.seed * 3 + 2)
    held_out = samples(material.held_out, sizes["held_out"], seed=ctx.seed * 3 + 3)
    model = train_shot_net(train, steps=sizes["steps"], batch=BATCH, seed=ctx.seed, lr=LR, hooks=ctx.hooks)
    cut, gradual = operating_points(model, validation)
    with torch.no_grad():
        model.offset.copy_(torch.tensor([np.log(cut / (1 - cut)), np.log(gradual / (1 - gradual))]))
    frames = sum(len(s.features) for s in train)
    return TrainedModel(
        module=model,
        spec=SPEC,
        dataset={
            "source": material.source,
            "fingerprint": material.fingerprint,
            "synthesis": ("clips of 5 shots: a virtual camera (still, pan, zoom, shake; half the clips "
                          "with whip pans, fast zooms and strong shake) over a photograph or film frames, "
                          "with objects crossing, flashes and exposure swings inside shots; joined by "
                          "hard cuts (45%), dissolves (20%), fades through black or white (15%) and "
                          "wipes (20%) of 6-30 frames"),
            "train_clips": len(train), "train_frames": frames, "validation_clips": len(validation),
            "held_out_clips": len(held_out), "committed_fixture": ctx.quick,
        },
        hyperparameters={"steps": sizes["steps"], "batch": BATCH, "window": WINDOW, "lr": LR,
                         "width": WIDTH, "dilations": list(DILATIONS), "receptive_radius": RECEPTIVE_RADIUS,
                         "features": list(FEATURES), "cut_threshold": cut, "gradual_threshold": gradual,
                         "cut_tolerance_frames": CUT_TOLERANCE,
                         "gradual_tolerance_frames": GRADUAL_TOLERANCE},
        evaluate=lambda session: evaluate(session, held_out),
    )
