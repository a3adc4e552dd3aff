"""Training of the props VAE (torch; export path): the loss, on the export kit's loop."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from museforge.export.callbacks import Hooks
from museforge.export.fit import fit
from museforge.export.seeds import seeded

from .props_data import PropGrids, family_weights
from .props_net import FamilyPrior, PropsVAE
from .shapes import FAMILIES


@dataclass(frozen=True)
class VAESettings:
    steps: int
    batch: int = 32
    lr: float = 1e-3
    kl_weight: float = 1e-3  # per sample, against the per-voxel mean L1 of the reconstruction
    kl_warmup: float = 0.2  # fraction of the steps over which the KL weight ramps up from 0
    band_weight: float = 4.0  # extra L1 weight on voxels within the truncation band


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


def train_vae(data: PropGrids, settings: VAESettings, seed: int, hooks: Hooks | None = None,
              checkpoint_every: int = 500) -> PropsVAE:
    """Train the conditional VAE on ``data`` (Adam, warm-up + cosine); returns it in eval mode."""
    if settings.steps < 1:
        raise ValueError(f"steps must be >= 1, got {settings.steps}")
    streams = seeded(seed)
    model = PropsVAE()
    weights = family_weights(data.families)

    def loss(step: int) -> tuple[Tensor, Mapping[str, float]]:
        pick = streams.numpy.integers(0, len(data.grids), settings.batch)
        grid = torch.from_numpy(augment(data.grids[pick], streams.numpy))
        reconstruction, mean, log_var = model(grid, torch.from_numpy(weights[pick]))
        # The band round the surface (|value| < 1) is where meshes come from; the far field is
        # 90% of the voxels and would otherwise teach mostly "outside".
        weight = 1.0 + settings.band_weight * (grid.abs() < 1).float()
        recon = ((reconstruction - grid).abs() * weight).mean()
        kl = kl_divergence(mean, log_var).mean()
        beta = settings.kl_weight * min(1.0, step / max(1.0, settings.kl_warmup * settings.steps))
        return recon + beta * kl, {"l1": float(recon.detach()), "kl": float(kl.detach())}

    fit(model, torch.optim.Adam(model.parameters(), lr=settings.lr), loss, steps=settings.steps,
        streams=streams, hooks=hooks, checkpoint_every=checkpoint_every)
    return model


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
