"""Held-out figures for mesh.props, computed on the exported ONNX models (numpy, scipy, skimage).

- Reconstruction: held-out procedural shapes (never trained on) through the encoder's
  mean and the decoder; IoU of the insides at 32^3.
- Generated props: seeded draws per family, decoded and meshed exactly as served
  (``meshing.mesh_field``); the share that is watertight; the share a shape classifier
  assigns to the requested family; and their diversity next to real shapes'.
- The classifier: k nearest neighbours over simple shape descriptors (proportions,
  fill, compactness, convexity, a height profile, squareness) of real procedural
  training shapes meshed the same way. It never sees a generated mesh in training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from scipy.spatial import ConvexHull

from .asset import MeshLevel
from .meshing import EmptyShape, is_watertight, mesh_field, signed_volume
from .props_data import PropGrids, family_weights, occupancy_iou, prop_grids
from .shapes import FAMILIES

EVAL_RESOLUTION = 64  # meshing resolution for generated and reference meshes
PROFILE_BINS = 8
NEIGHBOURS = 5
REFERENCE_PER_FAMILY = 60
SAMPLE_SEED = 20261130  # the draws evaluated; fixed so figures are reproducible
DECODER, ENCODER = "mesh.props", "mesh.props_encoder"  # the served models' names
HELD_OUT_PER_FAMILY = 40  # held-out shapes per family the recipe's figures are computed on
QUICK_PER_FAMILY = 4  # held-out shapes per family of a quick export


def descriptors(level: MeshLevel) -> np.ndarray:
    """Scale-invariant shape descriptors of a placed mesh (Y up, centred, on y = 0)."""
    v = level.vertices.astype(np.float64)
    f = level.faces.astype(np.int64)
    extent = v.max(axis=0) - v.min(axis=0)
    top = float(extent.max())
    horizontal = np.sort(extent[[0, 2]]) / top
    corners = v[f]
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    area = float(np.linalg.norm(cross, axis=1).sum() / 2.0)
    volume = abs(signed_volume(v, f))
    hull = ConvexHull(v).volume
    radial = np.hypot(v[:, 0], v[:, 2])
    # Height profile: the widest vertex in each horizontal slab, relative to the widest overall.
    slab = np.minimum((v[:, 1] / max(extent[1], 1e-9) * PROFILE_BINS).astype(int), PROFILE_BINS - 1)
    profile = np.zeros(PROFILE_BINS)
    np.maximum.at(profile, slab, radial)
    profile /= max(profile.max(), 1e-9)
    # Square cross-sections put vertices where max(|x|, |z|) / radius is far below 1.
    squareness = float(np.mean(np.maximum(np.abs(v[:, 0]), np.abs(v[:, 2])) / np.maximum(radial, 1e-9)))
    return np.concatenate([horizontal, [extent[1] / top, volume / np.prod(extent),
                                        area**1.5 / max(volume, 1e-12) / 100.0, volume / max(hull, 1e-12),
                                        squareness], profile])


@dataclass(frozen=True)
class FamilyClassifier:
    """k nearest neighbours over standardised descriptors of real procedural shapes."""

    features: np.ndarray
    labels: np.ndarray
    centre: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray) -> FamilyClassifier:
        centre, scale = features.mean(axis=0), features.std(axis=0) + 1e-9
        return cls((features - centre) / scale, labels, centre, scale)

    def predict(self, features: np.ndarray) -> np.ndarray:
        x = (np.atleast_2d(features) - self.centre) / self.scale
        distances = ((x[:, None, :] - self.features[None]) ** 2).sum(axis=-1)
        nearest = self.labels[np.argsort(distances, axis=1)[:, :NEIGHBOURS]]
        votes = np.stack([(nearest == k).sum(axis=1) for k in range(len(FAMILIES))], axis=1)
        return np.asarray(votes.argmax(axis=1))


def mesh_of(grid: np.ndarray) -> MeshLevel | None:
    """LOD0 of a grid meshed as served, or None when it decodes to nothing."""
    try:
        return mesh_field(grid, EVAL_RESOLUTION, 1.0, 1)[0]
    except EmptyShape:
        return None


def reference_classifier(split: str = "train", per_family: int = REFERENCE_PER_FAMILY) -> FamilyClassifier:
    """The classifier fitted on real procedural shapes of ``split``, meshed as served."""
    real = prop_grids(split, per_family)
    meshes = [mesh_of(g) for g in real.grids]
    features = np.stack([descriptors(m) for m in meshes if m is not None])
    labels = np.array([k for k, m in zip(real.families, meshes, strict=True) if m is not None])
    return FamilyClassifier.fit(features, labels)


def sample_grids(decoder: ort.InferenceSession, family: int, count: int,
                 seed: int = SAMPLE_SEED) -> np.ndarray:
    """``count`` decoded grids of one family from seeded standard-normal draws (as served)."""
    latent_dim = int(decoder.get_inputs()[0].shape[1])
    noise = np.random.default_rng([seed, family]).standard_normal((count, latent_dim)).astype(np.float32)
    weights = family_weights(np.full(count, family))
    return np.concatenate([decoder.run(None, {"latent": noise[i:i + 16], "family": weights[i:i + 16]})[0]
                           for i in range(0, count, 16)])


def mean_pairwise_distance(grids: np.ndarray) -> float:
    """Mean 1 - IoU over all pairs: how different the shapes of a set are from each other."""
    if len(grids) < 2:
        return 0.0
    # Intersections of every pair as one matrix product of the 0/1 insides: whole counts, exact
    # in float32 up to 2^24 cells, so the IoUs equal occupancy_iou's pair by pair.
    inside = (grids < 0).reshape(len(grids), -1).astype(np.float32)
    intersection = (inside @ inside.T).astype(np.float64)
    sizes = np.diag(intersection)
    union = sizes[:, None] + sizes[None, :] - intersection
    first, second = np.triu_indices(len(grids), k=1)
    iou = intersection[first, second] / np.maximum(union[first, second], 1)
    return float(np.mean(1.0 - iou))


def reconstruction_iou(decoder: ort.InferenceSession, encoder: ort.InferenceSession,
                       held_out: PropGrids) -> np.ndarray:
    """Per-shape IoU at 32^3 of held-out shapes decoded from their encoder means."""
    out = []
    for start in range(0, len(held_out.grids), 16):
        grids = held_out.grids[start:start + 16]
        weights = family_weights(held_out.families[start:start + 16])
        mean, _ = encoder.run(None, {"sdf": grids, "family": weights})
        (decoded,) = decoder.run(None, {"latent": mean, "family": weights})
        out.append(occupancy_iou(decoded, grids))
    return np.concatenate(out)


def evaluate_props(decoder: ort.InferenceSession, encoder: ort.InferenceSession, held_out: PropGrids,
                   samples_per_family: int, reference_per_family: int = REFERENCE_PER_FAMILY,
                   families: Sequence[str] = FAMILIES) -> dict[str, Any]:
    """Every figure of the manifest, per family and overall."""
    metrics: dict[str, Any] = {}
    iou = reconstruction_iou(decoder, encoder, held_out)
    metrics["reconstruction_iou"] = float(iou.mean())
    metrics["reconstruction_iou_worst"] = float(iou.min())
    classifier = reference_classifier(per_family=reference_per_family)
    watertight, correct, total = 0, 0, 0
    for name in families:
        k = FAMILIES.index(name)
        grids = sample_grids(decoder, k, samples_per_family)
        meshes = [mesh_of(g) for g in grids]
        closed = sum(m is not None and is_watertight(m.faces.astype(np.int64)) for m in meshes)
        predicted = [int(classifier.predict(descriptors(m))[0]) if m is not None else -1 for m in meshes]
        hits = sum(p == k for p in predicted)
        real = held_out.grids[held_out.families == k]
        metrics[f"reconstruction_iou_{name}"] = float(iou[held_out.families == k].mean())
        metrics[f"watertight_{name}"] = closed / len(meshes)
        metrics[f"family_accuracy_{name}"] = hits / len(meshes)
        metrics[f"diversity_{name}"] = mean_pairwise_distance(grids)
        metrics[f"diversity_real_{name}"] = mean_pairwise_distance(real)
        watertight, correct, total = watertight + closed, correct + hits, total + len(meshes)
    metrics["watertight"] = watertight / total
    metrics["family_accuracy"] = correct / total
    metrics["samples_per_family"] = samples_per_family
    # The classifier's own accuracy on real held-out shapes: how much a family figure can mean.
    real_meshes = [mesh_of(g) for g in held_out.grids]
    real_predicted = np.array([int(classifier.predict(descriptors(m))[0]) if m is not None else -1
                               for m in real_meshes])
    metrics["classifier_accuracy_real_held_out"] = float(np.mean(real_predicted == held_out.families))
    return metrics


def evaluate_sessions(sessions: Mapping[str, ort.InferenceSession], held_out: PropGrids,
                      quick: bool = False) -> dict[str, Any]:
    """The figures of the exported decoder and encoder (what the recipe records; a few if quick)."""
    if quick:
        return evaluate_props(sessions[DECODER], sessions[ENCODER], held_out, samples_per_family=2,
                              reference_per_family=6)
    return evaluate_props(sessions[DECODER], sessions[ENCODER], held_out, samples_per_family=40)
