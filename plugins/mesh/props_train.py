"""Training loop of the props VAE (torch; export path): seeded, with progress and checkpoints."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .props_data import PropGrids
from .props_net import FamilyPrior, PropsVAE
from .shapes import FAMILIES

ProgressFn = Callable[[int, int, dict[str, float]], None]
CheckpointFn = Callable[[int, Mapping[str, Any]], object]


@dataclass(frozen=True)
class VAESettings:
    steps: int
    batch: int = 32
    lr: float = 1e-3
    kl_weight: float = 1e-3  # per sample, against the per-voxel mean L1 of the reconstruction
    kl_warmup: float = 0.2  # fraction of the steps over which the KL weight ramps up from 0
    band_weight: float = 4.0  # extra L1 weight on voxels within the truncation band


def family_weights(families: np.ndarray) -> np.ndarray:
    """[N] family indices -> [N, F] one-hot float32 weights (the networks' family input)."""
    return np.eye(len(FAMILIES), dtype=np.float32)[families]


def kl_divergence(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(q(z|x) || N(0, I)) per sample, summed over latent dimensions."""
    return -0.5 * (1 + log_var - mean.square() - log_var.exp()).sum(dim=1)


def augment(grids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror across x and/or z at random: mirrored props are props of the same family."""
    out = grids.copy()
    for i in range(len(out)):
        if rng.integers(2):
            out[i] = out[i, ::-1]
        if rng.integers(2):
            out[i] = out[i, :, :, ::-1]
    return out


def train_vae(data: PropGrids, settings: VAESettings, seed: int, progress: ProgressFn | None = None,
              checkpoint: CheckpointFn | None = None, checkpoint_every: int = 500) -> PropsVAE:
    """Train the conditional VAE on ``data``; returns it in eval mode."""
    if settings.steps < 1:
        raise ValueError(f"steps must be >= 1, got {settings.steps}")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = PropsVAE()
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    steps = settings.steps
    warmup = max(1, steps // 50)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    weights = family_weights(data.families)
    report_every = max(1, min(25, steps // 100))
    running: dict[str, float] = {}
    model.train()
    for step in range(1, steps + 1):
        pick = rng.integers(0, len(data.grids), settings.batch)
        grid = torch.from_numpy(augment(data.grids[pick], rng))
        family = torch.from_numpy(weights[pick])
        reconstruction, mean, log_var = model(grid, family)
        # The band round the surface (|value| < 1) is where meshes come from; the far field is
        # 90% of the voxels and would otherwise teach mostly "outside".
        weight = 1.0 + settings.band_weight * (grid.abs() < 1).float()
        recon = ((reconstruction - grid).abs() * weight).mean()
        kl = kl_divergence(mean, log_var).mean()
        beta = settings.kl_weight * min(1.0, step / max(1.0, settings.kl_warmup * steps))
        loss = recon + beta * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        for key, value in (("l1", float(recon.detach())), ("kl", float(kl.detach()))):
            running[key] = value if step == 1 else running[key] + (value - running[key]) * 0.05
        if progress and (step % report_every == 0 or step == steps):
            progress(step, steps, dict(running))
        if checkpoint and step % checkpoint_every == 0:
            checkpoint(step, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step})
    return model.eval()


def fit_family_prior(model: PropsVAE, data: PropGrids, batch: int = 64) -> FamilyPrior:
    """Fit one Gaussian per family to the posterior of the (unaugmented) training shapes."""
    means, variances = [], []
    with torch.no_grad():
        for start in range(0, len(data.grids), batch):
            grid = torch.from_numpy(data.grids[start:start + batch])
            family = torch.from_numpy(family_weights(data.families[start:start + batch]))
            mean, log_var = model.encoder(grid, family)
            means.append(mean)
            variances.append(log_var.exp())
    mean_all, var_all = torch.cat(means).double(), torch.cat(variances).double()
    families = torch.from_numpy(data.families)
    centres, chols = [], []
    for f in range(len(FAMILIES)):
        mu, var = mean_all[families == f], var_all[families == f]
        centre = mu.mean(dim=0)
        # Aggregate posterior covariance: spread of the means plus the mean posterior variance.
        cov = torch.cov(mu.T) + torch.diag(var.mean(dim=0)) + 1e-6 * torch.eye(mu.shape[1], dtype=mu.dtype)
        centres.append(centre)
        chols.append(torch.linalg.cholesky(cov))
    return FamilyPrior(torch.stack(centres).float(), torch.stack(chols).float())
