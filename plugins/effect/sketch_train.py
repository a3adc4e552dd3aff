"""Training of ``effect.sketch`` (torch; export path): pix2pix with a BicycleGAN-style latent code.

Each step draws a batch (``sketch_batches``) and trains two ways at once:

- **Reconstruct** (cVAE-GAN): the encoder reads the artist's colour version and gives a style
  code; the generator must rebuild that colour version from the line art, the hints and the
  code (L1 on premultiplied colour and alpha), while the code stays close to a standard normal
  (KL), so a random code at serving time is one the generator knows.
- **Invent**: from a random code, the result must fool the patch critic; from code zero (half
  the batch) it must also be the artist's own colouring (L1), so variation 0 gives
  the most likely colours and a seed's code a plausible other choice. (BicycleGAN's latent
  regression, the code read back from the result, was tried first: the generator hid the code
  in rainbow colour gradients.)

In both, hinted pixels must take the hinted colour. The critic sees real pairs and both
branches' results. The generator's weights are averaged (EMA) and the average is exported.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from museforge.export.callbacks import Hooks
from museforge.export.gan import Adversarial, hinge_critic_loss
from museforge.export.seeds import Streams, forked

from .sketch_batches import training_batch
from .sketch_data import SketchPairs
from .sketch_net import STYLE, SketchCritic, SketchGenerator, StyleEncoder

__all__ = ["FULL_STEPS", "QUICK_STEPS", "train_sketch"]

QUICK_STEPS = 4  # enough to prove the pipeline; a quick run is not judged on its pictures
FULL_STEPS = 3500  # 28 min on 2 cores; version 2: 4000, version 1: 5000 with half the inventing batch
_BATCH = 16
_LR_G, _LR_D = 2e-4, 2e-4
_L1_WEIGHT = 10.0  # BicycleGAN's weights
_KL_WEIGHT = 0.01
_HINT_WEIGHT = 10.0
_EMA_DECAY = 0.999


class _Pair(nn.Module):
    """The generator and the encoder, optimised together (the encoder is not exported)."""

    def __init__(self) -> None:
        super().__init__()
        self.generator = SketchGenerator()
        self.encoder = StyleEncoder()


def _premultiplied(image: Tensor) -> Tensor:
    return torch.cat([image[:, :3] * image[:, 3:], image[:, 3:]], dim=1)


def _hint_loss(image: Tensor, hints: Tensor) -> Tensor:
    presence = hints[:, 4:]
    return (torch.abs(image - hints[:, :4]) * presence).sum() / (4.0 * presence.sum()).clamp(min=1.0)


def train_sketch(pairs: SketchPairs, *, seed: int, steps: int, hooks: Hooks | None = None,
                 checkpoint_every: int = 500) -> SketchGenerator:
    """Train on ``pairs``; returns the averaged generator in eval mode (reproducible per seed)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    with forked(seed) as streams:
        return _train(pairs, streams, steps, hooks, checkpoint_every)


def _train(pairs: SketchPairs, streams: Streams, steps: int, hooks: Hooks | None,
           checkpoint_every: int) -> SketchGenerator:
    gan = Adversarial.create(_Pair(), SketchCritic(), lr_g=_LR_G, lr_d=_LR_D, ema_decay=_EMA_DECAY)
    pair = gan.generator
    assert isinstance(pair, _Pair)
    g, e, d = pair.generator, pair.encoder, gan.critic

    def step(i: int) -> Mapping[str, float]:
        lines, hints, target = (torch.from_numpy(a) for a in training_batch(pairs, streams.numpy, _BATCH))
        mean, log_var = e(lines, target)
        code = mean + torch.randn(mean.shape, generator=streams.torch) * torch.exp(0.5 * log_var)
        rebuilt = g(lines, hints, code)
        # The inventing branch colours the whole batch from the line art alone. Half of it gets
        # code zero and must give the artist's own colours: so code zero (variation 0) is the most
        # likely colouring, and codes near it stay close to it. (Version 1 did this for a quarter
        # of the batch only; it is the one signal that teaches colours from lines, and held-out
        # colour error was 10 ΔE above the training drawings'.)
        half = len(lines) // 2
        random_code = torch.randn(len(lines), STYLE, generator=streams.torch)
        random_code[:half] = 0.0
        invented = g(lines, hints, random_code)

        score_real = d(lines, target)
        loss_d = 0.5 * (hinge_critic_loss(score_real, d(lines, rebuilt.detach()))
                        + hinge_critic_loss(score_real, d(lines, invented.detach())))
        gan.critic_step(loss_d)

        l1 = F.l1_loss(_premultiplied(rebuilt), _premultiplied(target))
        likely = F.l1_loss(_premultiplied(invented[:half]), _premultiplied(target[:half]))
        kl = 0.5 * torch.mean(torch.sum(mean**2 + log_var.exp() - 1.0 - log_var, dim=1))
        hint = _hint_loss(rebuilt, hints) + _hint_loss(invented, hints)
        adversarial = -d(lines, rebuilt).mean() - d(lines, invented).mean()
        loss_g = adversarial + _L1_WEIGHT * (l1 + likely) + _KL_WEIGHT * kl + _HINT_WEIGHT * hint
        gan.generator_step(loss_g, i)
        return {"loss_d": loss_d.item(), "l1": l1.item(), "likely": likely.item(), "kl": kl.item(),
                "hint": hint.item()}

    averaged = gan.run(steps, step, streams, hooks, checkpoint_every)
    assert isinstance(averaged, _Pair)
    generator = averaged.generator
    generator.eval()
    return generator

