"""Autoregressive sampling of the melody model with ONNX Runtime alone (numpy; served).

The exported graph is one step: (token, clock, conditioning, state) -> (logits, state).
This module loops it for a batch of pieces at once, one model call per step for all of
them, and enforces the grammar and the user's constraints by masking logits:

- bar lines and the end are never sampled: ``BAR`` is fed when a bar fills up, ``END``
  after the requested number of bars, so every piece has exactly ``bars`` whole bars;
- a duration never overruns the bar; ``TIE`` only continues a note that reached the bar line;
- ``end_on_tonic``: in the last bar a note that is not the tonic must leave at least a beat
  free, and the last beat only admits the tonic, so the piece ends on it;
- temperature, top-k and top-p (nucleus) filtering, all from a seeded numpy generator.

Bars are yielded as soon as every note starting in them has a known length (a note tied
over the bar line waits for the next bar), so audio can be rendered while later bars are
still being sampled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .theory import MODES
from .tokens import (
    BAR,
    BARS_LEFT_CLIP,
    DURATION_BASE,
    END,
    MAX_DURATION,
    METRES,
    PITCH_BASE,
    PITCH_HIGH,
    PITCH_LOW,
    REST,
    STYLES,
    TIE,
    VOCABULARY,
    NoteEvent,
    bar_length,
)

StepFn = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class PieceRequest:
    """What one piece must be; indices follow tokens.STYLES, theory.MODES, tokens.METRES."""

    style: str
    tonic: int
    mode: str
    metre: tuple[int, int]
    bars: int
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k filter
    top_p: float = 1.0  # 1.0: no nucleus filter
    end_on_tonic: bool = True


@dataclass(frozen=True)
class SampledBar:
    """A finished bar of one piece: the notes that start in it (lengths final)."""

    piece: int
    bar: int  # 0-based
    events: tuple[NoteEvent, ...]
    tokens: int = 0  # tokens of the piece so far (for throughput figures)


def beat_length(metre: tuple[int, int]) -> int:
    """Sixteenths in one beat: a dotted quarter in compound metres (6/8, 9/8, 12/8)."""
    numerator, denominator = metre
    if denominator == 8 and numerator % 3 == 0 and numerator > 3:
        return 6
    return 16 // denominator


@dataclass
class _Piece:
    request: PieceRequest
    bar16: int
    tokens: list[int] = field(default_factory=lambda: [BAR])
    clock: list[tuple[int, int]] = field(default_factory=list)  # (position, bars left) after each token
    fed: int = 0  # tokens already fed to the model
    time: int = 0  # sixteenths elapsed
    pending: int | None = None  # a pitch slot waiting for its duration
    events: list[NoteEvent] = field(default_factory=list)
    closed: int = 0  # events whose length can no longer grow
    emitted_bars: int = 0
    done: bool = False

    @property
    def bar(self) -> int:
        return self.time // self.bar16

    @property
    def position(self) -> int:
        return self.time % self.bar16

    def append(self, token: int) -> None:
        self.tokens.append(token)
        self.clock.append((self.position, min(max(self.request.bars - self.bar, 0), BARS_LEFT_CLIP)))


def _filter(logits: np.ndarray, top_k: int, top_p: float) -> np.ndarray:
    """Logits with everything outside the top-k / top-p set at -inf (1-D)."""
    out = logits.copy()
    if 0 < top_k < np.isfinite(out).sum():
        kth = np.partition(out, -top_k)[-top_k]
        out[out < kth] = -np.inf
    if top_p < 1.0:
        order = np.argsort(-out, kind="stable")
        probs = np.exp(out[order] - out[order[0]])
        probs /= probs.sum()
        keep = np.cumsum(probs) - probs < top_p  # always keeps the most likely token
        out[order[~keep]] = -np.inf
    return out


class MelodySampler:
    """Samples pieces with a single-step model called through ``step``."""

    def __init__(self, step: StepFn, state_shape: tuple[int, int]) -> None:
        self.step = step
        self.layers, self.hidden = state_shape

    def _mask(self, piece: _Piece) -> np.ndarray:
        request, allowed = piece.request, np.zeros(VOCABULARY, bool)
        remaining = piece.bar16 - piece.position
        last_bar = piece.bar == request.bars - 1
        tail = min(beat_length(request.metre), piece.bar16)
        if piece.pending is None:  # a note starts: its pitch slot
            allowed[PITCH_BASE:DURATION_BASE] = True
            allowed[REST] = True
            previous = piece.events[-1] if piece.events else None
            if piece.position == 0 and previous and previous.pitch >= 0 \
                    and previous.start + previous.length == piece.time:
                allowed[TIE] = True
            if request.end_on_tonic and last_bar and remaining <= tail:
                allowed[:] = False
                for pitch in range(PITCH_LOW, PITCH_HIGH + 1):
                    allowed[PITCH_BASE + pitch - PITCH_LOW] = pitch % 12 == request.tonic
                if previous and previous.pitch % 12 == request.tonic and previous.pitch >= 0 \
                        and previous.start + previous.length == piece.time and piece.position == 0:
                    allowed[TIE] = True
        else:  # its duration
            longest = min(MAX_DURATION, remaining)
            if request.end_on_tonic and last_bar and not self._is_tonic(piece, piece.pending):
                longest = min(longest, remaining - tail)
            allowed[DURATION_BASE:DURATION_BASE + max(longest, 1)] = True
        return allowed

    @staticmethod
    def _is_tonic(piece: _Piece, slot: int) -> bool:
        if slot == TIE:
            previous = piece.events[-1] if piece.events else None
            return bool(previous and previous.pitch >= 0 and previous.pitch % 12 == piece.request.tonic)
        return slot not in (REST, TIE) and (slot - PITCH_BASE + PITCH_LOW) % 12 == piece.request.tonic

    def _advance(self, piece: _Piece, token: int) -> None:
        """Apply a sampled token; append BAR or END (fed, never sampled) when a bar fills."""
        if piece.pending is None:
            piece.append(token)
            piece.pending = token
            if token != TIE:
                piece.closed = len(piece.events)  # a new note: everything before it is final
            return
        length = token - DURATION_BASE + 1
        slot, piece.pending = piece.pending, None
        if slot == TIE:
            last = piece.events[-1]
            piece.events[-1] = NoteEvent(last.pitch, last.start, last.length + length)
        else:
            pitch = -1 if slot == REST else slot - PITCH_BASE + PITCH_LOW
            piece.events.append(NoteEvent(pitch, piece.time, length))
        piece.time += length
        piece.append(token)
        if piece.position == 0:
            if piece.bar >= piece.request.bars:
                piece.append(END)
                piece.closed = len(piece.events)
                piece.done = True
            else:
                piece.append(BAR)

    def _finished_bars(self, index: int, piece: _Piece) -> Iterator[SampledBar]:
        # Events before ``closed`` are final; a bar is complete once every event starting
        # in it is final and the clock has left it.
        open_from = piece.events[piece.closed].start if piece.closed < len(piece.events) else piece.time
        while piece.emitted_bars < piece.request.bars:
            bar = piece.emitted_bars
            bar_end = (bar + 1) * piece.bar16
            if not piece.done and (piece.time < bar_end or open_from < bar_end):
                return
            events = tuple(e for e in piece.events if bar * piece.bar16 <= e.start < bar_end)
            piece.emitted_bars += 1
            yield SampledBar(index, bar, events, len(piece.tokens))

    def sample(self, requests: Sequence[PieceRequest],
               rngs: Sequence[np.random.Generator]) -> Iterator[SampledBar]:
        """Sample all pieces together (one generator each, so a piece does not depend on
        how many were asked for); yields each bar of each piece once it is final."""
        if len(rngs) != len(requests):
            raise ValueError("one random generator per request")
        for request in requests:
            if request.metre not in METRES or request.style not in STYLES or request.mode not in MODES:
                raise ValueError(f"unsupported request {request}")
            if not request.bars >= 1:
                raise ValueError("bars must be >= 1")
        pieces = [_Piece(r, bar_length(r.metre)) for r in requests]
        for piece in pieces:
            piece.clock.append((0, min(piece.request.bars, BARS_LEFT_CLIP)))
        count = len(pieces)
        conditioning = {
            "style": np.array([STYLES.index(r.style) for r in requests], np.int64),
            "tonic": np.array([r.tonic for r in requests], np.int64),
            "mode": np.array([MODES.index(r.mode) for r in requests], np.int64),
            "metre": np.array([METRES.index(r.metre) for r in requests], np.int64),
        }
        state = np.zeros((count, self.layers, self.hidden), np.float32)
        while not all(p.done for p in pieces):
            # Each piece feeds its next unfed token: a sampled one, or a BAR it was given.
            # Finished pieces feed END and their outputs are ignored.
            current = [(p.tokens[i], *p.clock[i]) for p in pieces for i in [min(p.fed, len(p.tokens) - 1)]]
            columns = np.array(current, np.int64)
            feed: dict[str, np.ndarray] = {"token": columns[:, 0], "position": columns[:, 1],
                                           "bars_left": columns[:, 2], **conditioning, "state": state}
            outputs = self.step(feed)
            logits = np.asarray(outputs["logits"], np.float64)
            state = np.asarray(outputs["next_state"], np.float32)
            for index, piece in enumerate(pieces):
                if piece.done:
                    continue
                piece.fed += 1
                if piece.fed < len(piece.tokens):
                    continue  # the next input is already known (a bar line)
                request = piece.request
                row = np.where(self._mask(piece), logits[index] / max(request.temperature, 1e-3), -np.inf)
                row = _filter(row, request.top_k, request.top_p)
                probs = np.exp(row - row.max())
                token = int(rngs[index].choice(VOCABULARY, p=probs / probs.sum()))
                self._advance(piece, token)
                yield from self._finished_bars(index, piece)
