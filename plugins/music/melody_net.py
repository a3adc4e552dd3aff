"""The style-conditioned GRU melody model (torch; export path only).

Each step reads the previous token, the clock (position in bar, bars left) and the
conditioning (style, tonic, mode, metre), and predicts the next token. Pitch tokens are
absolute (so the model can place a tune in register), but the tonal function of a pitch
depends on the key: a pitch token's input embedding gets a learnt vector for its scale
degree (pitch - tonic mod 12), and the output adds a learnt per-mode, per-style bias for
each scale degree. Both are table look-ups, so the exported step graph stays small.

:class:`MelodyStep` wraps one step with the recurrent state as explicit input and
output: that is what ships as ONNX and what the server loops over.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .theory import MODES
from .tokens import (
    BARS_LEFT_CLIP,
    MAX_DURATION,
    METRES,
    PITCH_BASE,
    PITCH_HIGH,
    PITCH_LOW,
    STYLES,
    VOCABULARY,
)

HIDDEN = 256
LAYERS = 2
TOKEN_DIM = 96
NOT_A_PITCH = 12  # degree index for tokens that are not pitches


def degree_table() -> Tensor:
    """[12, VOCABULARY] int64: scale degree of each token for each tonic (12 = not a pitch)."""
    table = torch.full((12, VOCABULARY), NOT_A_PITCH, dtype=torch.int64)
    for tonic in range(12):
        for pitch in range(PITCH_LOW, PITCH_HIGH + 1):
            table[tonic, PITCH_BASE + pitch - PITCH_LOW] = (pitch - tonic) % 12
    return table


class MelodyNet(nn.Module):
    def __init__(self, hidden: int = HIDDEN, layers: int = LAYERS, dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden, self.layers = hidden, layers
        self.token = nn.Embedding(VOCABULARY, TOKEN_DIM)
        self.degree = nn.Embedding(NOT_A_PITCH + 1, TOKEN_DIM)
        self.position = nn.Embedding(MAX_DURATION, 16)
        self.bars_left = nn.Embedding(BARS_LEFT_CLIP + 1, 8)
        self.style = nn.Embedding(len(STYLES), 16)
        self.tonic = nn.Embedding(12, 8)
        self.mode = nn.Embedding(len(MODES), 8)
        self.metre = nn.Embedding(len(METRES), 8)
        width = TOKEN_DIM + 16 + 8 + 16 + 8 + 8 + 8
        self.gru = nn.GRU(width, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, VOCABULARY)
        # Output bias per (style, mode, scale degree) on the pitch tokens.
        self.degree_bias = nn.Parameter(torch.zeros(len(STYLES) * len(MODES), NOT_A_PITCH + 1))
        self.register_buffer("degrees", degree_table(), persistent=False)

    def forward(self, tokens: Tensor, positions: Tensor, bars_left: Tensor, style: Tensor, tonic: Tensor,
                mode: Tensor, metre: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """tokens/positions/bars_left [B, T]; style/tonic/mode/metre [B] -> logits [B, T, V], state."""
        steps = tokens.shape[1]
        degrees: Tensor = self.degrees  # type: ignore[assignment]
        token_degree = torch.gather(degrees[tonic], 1, tokens)  # [B, T]
        condition = torch.cat([self.style(style), self.tonic(tonic), self.mode(mode), self.metre(metre)], -1)
        x = torch.cat([
            self.token(tokens) + self.degree(token_degree),
            self.position(positions),
            self.bars_left(bars_left),
            condition[:, None, :].expand(-1, steps, -1),
        ], -1)
        if state is None:
            state = torch.zeros(self.layers, tokens.shape[0], self.hidden, dtype=x.dtype)
        out, state = self.gru(x, state)
        logits = self.head(out)
        bias_row = self.degree_bias[style * len(MODES) + mode]  # [B, 13]
        vocab_bias = torch.gather(bias_row, 1, degrees[tonic])  # [B, V]: 0-degree row for non-pitches
        not_pitch = (degrees[tonic] == NOT_A_PITCH).to(logits.dtype)
        logits = logits + (vocab_bias * (1.0 - not_pitch))[:, None, :]
        return logits, state


class MelodyStep(nn.Module):
    """One step with explicit state: what ships as ONNX (batch of independent pieces).

    The state is batch-first, [batch, layers, hidden], unlike the GRU's own layout: every
    input and output then has the batch on axis 0, so the server's dynamic batcher can
    merge the steps of concurrent requests into one run.
    """

    def __init__(self, net: MelodyNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, token: Tensor, position: Tensor, bars_left: Tensor, style: Tensor, tonic: Tensor,
                mode: Tensor, metre: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        logits, new_state = self.net(token[:, None], position[:, None], bars_left[:, None], style, tonic,
                                     mode, metre, state.transpose(0, 1).contiguous())
        return logits[:, 0], new_state.transpose(0, 1)
