"""What the GAN recipes share: the hinge loss, an averaged generator, epoch batches, the loop.

Each recipe keeps its own networks, augmentation and step (what it feeds the critic);
``Adversarial`` holds the two nets, their Adam optimisers and the generator's EMA, and
runs the recipe's step through the common ``Loop`` (progress, checkpoints, resume).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .callbacks import Hooks
from .fit import Loop, StepFn, update
from .seeds import Streams

BETAS = (0.0, 0.9)  # beta1 = 0 with hinge loss + spectral norm, as in SNGAN/BigGAN


def hinge_critic_loss(score_real: Tensor, score_fake: Tensor) -> Tensor:
    """The critic's hinge loss: real scores pushed above 1, fake ones below -1."""
    return F.relu(1.0 - score_real).mean() + F.relu(1.0 + score_fake).mean()


class EMA:
    """An exponential moving average of a generator's weights: what a GAN recipe exports.

    The decay starts low, ``n / (n + warmup)`` after n updates, so early on the average
    covers the few steps that exist rather than the random initial weights.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: float = 9.0) -> None:
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)
        self.decay, self.warmup = decay, warmup

    @torch.no_grad()
    def update(self, model: nn.Module, updates: int) -> None:
        """Move the average towards ``model`` after its ``updates``-th optimiser step."""
        decay = min(self.decay, updates / (updates + self.warmup))
        for p_ema, p in zip(self.model.parameters(), model.parameters(), strict=True):
            p_ema.lerp_(p, 1.0 - decay)


class EpochBatches:
    """Index batches of a data set, in a fresh shuffled order every epoch.

    ``batch(step)`` for steps 1, 2, ...: the order of an epoch is drawn at its first step,
    so a run resumed at an epoch boundary draws exactly what the uninterrupted run drew.
    The ragged tail is dropped, so BatchNorm never sees a tiny batch.
    """

    def __init__(self, size: int, batch_size: int, generator: torch.Generator) -> None:
        if not 1 <= batch_size <= size:
            raise ValueError(f"batch_size must be in [1, {size}], got {batch_size}")
        self.size, self.batch_size, self.generator = size, batch_size, generator
        self.per_epoch = size // batch_size
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.int64)

    def batch(self, step: int) -> Tensor:
        epoch, index = divmod(step - 1, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, torch.randperm(self.size, generator=self.generator)
        return self._order[index * self.batch_size:(index + 1) * self.batch_size]


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, inputs: Callable[[], Sequence[Tensor]], batches: int = 16) -> None:
    """Give an averaged generator BatchNorm statistics of its own weights.

    EMA weights never ran in train mode, so the running statistics copied from the live
    generator do not match them; a cumulative average over ``batches`` fresh inputs does.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average
    model.train()
    for _ in range(batches):
        model(*inputs())
    for bn, momentum in zip(norms, saved, strict=True):
        bn.momentum = momentum
    model.eval()


@dataclass
class Adversarial:
    """A generator, its critic, their optimisers and the generator's EMA."""

    generator: nn.Module
    critic: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: EMA

    @classmethod
    def create(cls, generator: nn.Module, critic: nn.Module, *, lr_g: float, lr_d: float,
               ema_decay: float = 0.999, ema_warmup: float = 9.0) -> Adversarial:
        """Adam for both nets (TTUR-style rates, ``BETAS``) and an EMA copy of the generator."""
        ema = EMA(generator, ema_decay, ema_warmup)
        return cls(generator, critic, torch.optim.Adam(generator.parameters(), lr=lr_g, betas=BETAS),
                   torch.optim.Adam(critic.parameters(), lr=lr_d, betas=BETAS), ema)

    def critic_step(self, loss: Tensor) -> None:
        update(self.opt_d, loss)

    def generator_step(self, loss: Tensor, step: int) -> None:
        """The generator's ``step``-th update (counted from 1), then its average follows."""
        update(self.opt_g, loss)
        self.ema.update(self.generator, step)

    def parts(self) -> Mapping[str, nn.Module | torch.optim.Optimizer]:
        return {"generator": self.generator, "discriminator": self.critic,
                "generator_ema": self.ema.model, "opt_g": self.opt_g, "opt_d": self.opt_d}

    def run(self, steps: int, step: StepFn, streams: Streams, hooks: Hooks | None = None,
            checkpoint_every: int = 500) -> nn.Module:
        """Train both nets with ``step`` (which calls the two updates); returns the averaged generator."""
        loop = Loop(steps, self.parts(), streams, hooks or Hooks(), checkpoint_every)
        self.generator.train()
        self.critic.train()
        loop.run(step)
        return self.ema.model
