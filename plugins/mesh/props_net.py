"""The props shape space: a conditional VAE over 32^3 truncated distance grids (torch; export path).

A 3-D convolutional VAE, not a DeepSDF-style point decoder: one decoder run gives the
whole grid, which is what marching cubes needs, at a cost independent of how finely the
server meshes it (finer meshes interpolate the grid). A point decoder would have to be
evaluated at every one of the 2 million points of a 128^3 mesh.

Encoder q(z | grid, family): three stride-2 convolutions (32^3 -> 4^3), then linear
layers to the mean and log-variance of a 32-dimensional latent. Decoder p(grid | z,
family): linear to 64 x 4^3, three stride-2 transposed convolutions back to 32^3, each
followed by a 3x3x3 convolution at its resolution, linear output (a tanh saturates
where most targets sit, at the truncation, and trials stalled at an empty grid). The family enters both as a
vector of weights over the families (one-hot for one family), so the exported decoder
can blend families for cross-family morphs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .shapes import FAMILIES

LATENT = 32
CHANNELS = (64, 32, 16)  # decoder channels at 4^3, 8^3 and 16^3 (encoder mirrors them)


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose3d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU(inplace=True),
                         nn.Conv3d(c_out, c_out, 3, padding=1), nn.ReLU(inplace=True))


class PropsEncoder(nn.Module):
    """([N, 32, 32, 32] grid in [-1, 1], [N, F] family weights) -> (mean, log-variance), each [N, LATENT]."""

    def __init__(self, families: int = len(FAMILIES), latent: int = LATENT) -> None:
        super().__init__()
        c4, c8, c16 = CHANNELS
        self.features = nn.Sequential(
            nn.Conv3d(1, c16, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv3d(c16, c8, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv3d(c8, c4, 4, stride=2, padding=1), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Linear(c4 * 64 + families, 256), nn.ReLU(inplace=True),
                                  nn.Linear(256, 2 * latent))
        self.latent = latent

    def forward(self, grid: Tensor, family: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(grid.unsqueeze(1)).flatten(1)
        stats = self.head(torch.cat([features, family], dim=1))
        return stats[:, :self.latent], stats[:, self.latent:]


class PropsDecoder(nn.Module):
    """([N, LATENT] latent, [N, F] family weights) -> [N, 32, 32, 32] truncated distance (about [-1, 1])."""

    def __init__(self, families: int = len(FAMILIES), latent: int = LATENT) -> None:
        super().__init__()
        c4, c8, c16 = CHANNELS
        self.c4 = c4
        self.start = nn.Sequential(nn.Linear(latent + families, 256), nn.ReLU(inplace=True),
                                   nn.Linear(256, c4 * 64), nn.ReLU(inplace=True))
        self.body = nn.Sequential(_up(c4, c8), _up(c8, c16),
                                  nn.ConvTranspose3d(c16, 8, 4, stride=2, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv3d(8, 1, 3, padding=1))

    def forward(self, latent: Tensor, family: Tensor) -> Tensor:
        start = self.start(torch.cat([latent, family], dim=1)).reshape(-1, self.c4, 4, 4, 4)
        return self.body(start).squeeze(1)


class PropsVAE(nn.Module):
    """Encoder and decoder trained together; only their halves are exported."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = PropsEncoder()
        self.decoder = PropsDecoder()

    def forward(self, grid: Tensor, family: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mean, log_var = self.encoder(grid, family)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        return self.decoder(z, family), mean, log_var


class FamilyPrior(nn.Module):
    """Per-family Gaussians fitted to the training shapes' posterior means (ex-post density).

    A VAE's aggregate posterior never quite fills N(0, I); sampling where the training
    shapes of a family actually sit gives better props than the standard prior. Both
    exported halves work in this whitened space: noise ~ N(0, I) -> z = mean_f + L_f noise.
    """

    def __init__(self, mean: Tensor, chol: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)  # [F, D]
        self.register_buffer("chol", chol)  # [F, D, D], lower triangular
        self.register_buffer("chol_inv", torch.linalg.inv(chol))
        self.mean: Tensor
        self.chol: Tensor
        self.chol_inv: Tensor

    def to_latent(self, noise: Tensor, family: Tensor) -> Tensor:
        chol = torch.einsum("nf,fij->nij", family, self.chol)
        return family @ self.mean + torch.einsum("nij,nj->ni", chol, noise)

    def to_noise(self, latent: Tensor, family: Tensor) -> Tensor:
        # Exact for one family; a blend of inverses for blended weights (encoding is per family).
        inverse = torch.einsum("nf,fij->nij", family, self.chol_inv)
        return torch.einsum("nij,nj->ni", inverse, latent - family @ self.mean)


class ServedDecoder(nn.Module):
    """What ships as mesh.props: (noise [N, D], family weights [N, F]) -> grid [N, 32, 32, 32]."""

    def __init__(self, decoder: PropsDecoder, prior: FamilyPrior) -> None:
        super().__init__()
        self.decoder, self.prior = decoder, prior

    def forward(self, latent: Tensor, family: Tensor) -> Tensor:
        return self.decoder(self.prior.to_latent(latent, family), family)


class ServedEncoder(nn.Module):
    """Ships as mesh.props_encoder: (grid, family) -> (mean, log-variance) in the decoder's noise space."""

    def __init__(self, encoder: PropsEncoder, prior: FamilyPrior) -> None:
        super().__init__()
        self.encoder, self.prior = encoder, prior

    def forward(self, sdf: Tensor, family: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_var = self.encoder(sdf, family)
        return self.prior.to_noise(mean, family), log_var
