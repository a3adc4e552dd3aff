"""The harmony network (torch; export path only): a GRU over eighth-note steps.

Each step embeds what :mod:`harmony_features` reads about the soprano and the clock, adds
the piece's key, and runs one GRU layer; three heads give the alto's, tenor's and bass's
pitch. The soprano's scale degree gets its own embedding beside its absolute pitch, so
tonal function is learnt once for all keys while register stays absolute.
:class:`HarmonyBars` runs a run of steps from an explicit state: that is what ships as
ONNX, called once per bar by the server.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .harmony_features import HIDDEN, INPUT_SIZES, LOWER_VOICES, STEP_INPUTS, classes

EMBED = {"soprano": 48, "degree": 32, "ahead1": 16, "ahead2": 12, "onset": 4, "accent": 8, "bars_left": 4,
         "tonic": 8, "minor": 8}


class HarmonyNet(nn.Module):
    def __init__(self, hidden: int = HIDDEN, dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden = hidden
        self.embed = nn.ModuleDict({name: nn.Embedding(INPUT_SIZES[name], EMBED[name]) for name in EMBED})
        width = sum(EMBED.values())
        self.mix = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout))
        self.gru = nn.GRU(hidden, hidden, 1, batch_first=True)
        self.heads = nn.ModuleDict({voice: nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(),
                                                         nn.Linear(hidden, classes(voice)))
                                    for voice in LOWER_VOICES})

    def forward(self, steps: dict[str, Tensor], tonic: Tensor, minor: Tensor,
                state: Tensor | None = None) -> tuple[dict[str, Tensor], Tensor]:
        """steps: [B, T] per step input; tonic/minor [B]; state [1, B, H] -> logits per voice, state."""
        length = steps["soprano"].shape[1]
        parts = [self.embed[name](steps[name]) for name in STEP_INPUTS]
        key = torch.cat([self.embed["tonic"](tonic), self.embed["minor"](minor)], -1)
        x = self.mix(torch.cat([*parts, key[:, None, :].expand(-1, length, -1)], -1))
        if state is None:
            state = torch.zeros(1, x.shape[0], self.hidden, dtype=x.dtype)
        out, state = self.gru(x, state)
        both = torch.cat([out, x], -1)  # the step's own features beside the running context
        return {voice: self.heads[voice](both) for voice in LOWER_VOICES}, state


class HarmonyBars(nn.Module):
    """A run of steps with explicit state, batch first (what ships as ONNX)."""

    def __init__(self, net: HarmonyNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, soprano: Tensor, degree: Tensor, ahead1: Tensor, ahead2: Tensor, onset: Tensor,
                accent: Tensor, bars_left: Tensor, tonic: Tensor, minor: Tensor,
                state: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        steps = dict(zip(STEP_INPUTS, (soprano, degree, ahead1, ahead2, onset, accent, bars_left),
                         strict=True))
        logits, new_state = self.net(steps, tonic, minor, state.transpose(0, 1).contiguous())
        return logits["alto"], logits["tenor"], logits["bass"], new_state.transpose(0, 1)
