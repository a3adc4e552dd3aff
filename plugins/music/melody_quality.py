"""Held-out figures for music.melody (numpy + scikit-learn; export path and tests).

1. Per-token negative log-likelihood of held-out pieces under the ONNX step model,
   against a smoothed bigram over the same tokens trained on the same (transposed) data.
2. A style classifier (logistic regression on key-invariant melody statistics) trained on
   the real training pieces, checked on held-out real pieces, then asked which style each
   generated piece is.
3. The share of generated pitches inside the requested key's scale (theory.py says what
   the scale is for each mode).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .dataset import MelodySet
from .sampler import MelodySampler, PieceRequest, StepFn
from .theory import MODES, in_scale_fraction
from .tokens import (
    MAX_DURATION,
    METRES,
    PAD,
    STYLES,
    VOCABULARY,
    Encoded,
    Melody,
    NoteEvent,
    bar_length,
    encode,
    fits_range,
    transpose_events,
)

SMOOTHING_CHOICES = (1.0, 0.3, 0.1, 0.03, 0.01)
INTERVAL_CLIP = 12


# --- likelihood -------------------------------------------------------------------------

def training_encodings(melodies: Sequence[Melody]) -> list[Encoded]:
    """Every training piece in all twelve keys that fit the range (the model's augmentation)."""
    out = []
    for melody in melodies:
        for shift in range(-6, 6):
            events = transpose_events(melody.events, shift)
            if fits_range(events):
                out.append(encode(events, melody.metre))
    return out


class Bigram:
    """P(next | previous) with add-``alpha`` smoothing over the whole vocabulary."""

    def __init__(self, sequences: Sequence[np.ndarray], alpha: float) -> None:
        counts = np.zeros((VOCABULARY, VOCABULARY), np.float64)
        for tokens in sequences:
            np.add.at(counts, (tokens[:-1], tokens[1:]), 1.0)
        counts += alpha
        self.log_probs = np.log(counts / counts.sum(axis=1, keepdims=True))

    def nll(self, sequences: Sequence[np.ndarray]) -> float:
        """Mean negative log-likelihood per predicted token (nats)."""
        total = sum(-self.log_probs[t[:-1], t[1:]].sum() for t in sequences)
        return float(total / sum(len(t) - 1 for t in sequences))


def best_bigram(train: Sequence[np.ndarray], held_out: Sequence[np.ndarray]) -> tuple[float, float]:
    """The bigram's held-out NLL at its best smoothing (chosen on held-out: generous to it)."""
    scores = [(Bigram(train, a).nll(held_out), a) for a in SMOOTHING_CHOICES]
    return min(scores)


def conditioning_arrays(melodies: Sequence[Melody]) -> dict[str, np.ndarray]:
    return {
        "style": np.array([STYLES.index(m.style) for m in melodies], np.int64),
        "tonic": np.array([m.tonic for m in melodies], np.int64),
        "mode": np.array([MODES.index(m.mode) for m in melodies], np.int64),
        "metre": np.array([METRES.index(m.metre) for m in melodies], np.int64),
    }


def model_nll(step: StepFn, state_shape: tuple[int, int], melodies: Sequence[Melody],
              batch: int = 64) -> float:
    """Mean per-token NLL (nats) of the step model over the pieces, teacher forcing."""
    total, count = 0.0, 0
    for start in range(0, len(melodies), batch):
        chunk = melodies[start:start + batch]
        encoded = [encode(m.events, m.metre) for m in chunk]
        length = max(len(e.tokens) for e in encoded)
        tokens = np.full((len(chunk), length), PAD, np.int64)
        positions = np.zeros_like(tokens)
        bars_left = np.zeros_like(tokens)
        for row, e in enumerate(encoded):
            tokens[row, :len(e.tokens)] = e.tokens
            positions[row, :len(e.tokens)] = e.positions
            bars_left[row, :len(e.tokens)] = e.bars_left
        cond = conditioning_arrays(chunk)
        state = np.zeros((len(chunk), *state_shape), np.float32)
        for t in range(length - 1):
            out = step({"token": tokens[:, t], "position": positions[:, t], "bars_left": bars_left[:, t],
                        **cond, "state": state})
            logits, state = np.asarray(out["logits"], np.float64), np.asarray(out["next_state"], np.float32)
            target = tokens[:, t + 1]
            live = target != PAD
            if live.any():
                shifted = logits[live] - logits[live].max(axis=1, keepdims=True)
                log_z = np.log(np.exp(shifted).sum(axis=1))
                total += float((log_z - shifted[np.arange(live.sum()), target[live]]).sum())
                count += int(live.sum())
    return total / count


# --- style ------------------------------------------------------------------------------

def features(events: Sequence[NoteEvent], tonic: int, metre: tuple[int, int]) -> np.ndarray:
    """Key-invariant melody statistics (the metre itself is left out on purpose)."""
    notes = [e for e in events if e.pitch >= 0]
    bar16 = bar_length(metre)
    total_time = max(1, sum(e.length for e in events))
    degrees = np.bincount([(e.pitch - tonic) % 12 for e in notes], minlength=12) / max(1, len(notes))
    steps = np.diff([e.pitch for e in notes]) if len(notes) > 1 else np.zeros(0)
    intervals = np.bincount(np.clip(steps, -INTERVAL_CLIP, INTERVAL_CLIP).astype(int) + INTERVAL_CLIP,
                            minlength=2 * INTERVAL_CLIP + 1) / max(1, len(steps))
    lengths = np.bincount([min(e.length, MAX_DURATION) - 1 for e in notes],
                          minlength=MAX_DURATION) / max(1, len(notes))
    beat = bar16 / max(1, metre[0]) if metre[1] != 8 else 6
    on_beat = np.mean([e.start % max(1, int(beat)) == 0 for e in notes]) if notes else 0.0
    pitches = np.array([e.pitch for e in notes], np.float64)
    extra = np.array([
        len(notes) * bar16 / total_time / 16.0,  # notes per 4/4-bar-equivalent of time
        sum(e.length for e in events if e.pitch < 0) / total_time,  # rests
        float(pitches.std()) / 12.0 if len(pitches) else 0.0,  # spread
        float(np.abs(steps).mean()) / 12.0 if len(steps) else 0.0,  # mean leap
        float((np.abs(steps) == 0).mean()) if len(steps) else 0.0,  # repeated notes
        float(on_beat),
    ])
    return np.concatenate([degrees, intervals, lengths, extra])


def melody_features(melodies: Sequence[Melody]) -> np.ndarray:
    return np.stack([features(m.events, m.tonic, m.metre) for m in melodies])


def train_style_classifier(train: Sequence[Melody]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = [STYLES.index(m.style) for m in train]
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=1.0,
                                                                    class_weight="balanced"))
    classifier.fit(melody_features(train), labels)
    return classifier


# --- generation -------------------------------------------------------------------------

def evaluation_requests(train: Sequence[Melody], per_style: int, bars: int,
                        rng: np.random.Generator) -> list[PieceRequest]:
    """Per style: metre and mode drawn from that style's own corpus, key uniform."""
    requests = []
    for style in STYLES:
        pool = [m for m in train if m.style == style]
        for _ in range(per_style):
            model = pool[int(rng.integers(len(pool)))]
            requests.append(PieceRequest(style, int(rng.integers(12)), model.mode, model.metre, bars))
    return requests


def generate_pieces(step: StepFn, state_shape: tuple[int, int], requests: Sequence[PieceRequest],
                    seed: int) -> list[list[NoteEvent]]:
    sampler = MelodySampler(step, state_shape)
    pieces: list[list[NoteEvent]] = [[] for _ in requests]
    for bar in sampler.sample(requests, [np.random.default_rng([seed, i]) for i in range(len(requests))]):
        pieces[bar.piece].extend(bar.events)
    return pieces


def evaluate_melody_model(step: StepFn, state_shape: tuple[int, int], train: Sequence[Melody],
                          held_out: Sequence[Melody], *, per_style: int = 40, bars: int = 16,
                          seed: int = 2026, nll_pieces: int | None = None) -> dict[str, Any]:
    """Every figure the manifest records and the quality test re-checks."""
    rng = np.random.default_rng(seed)
    scored = list(held_out) if nll_pieces is None else [held_out[i] for i in sorted(
        rng.choice(len(held_out), size=min(nll_pieces, len(held_out)), replace=False))]
    train_tokens = [e.tokens for e in training_encodings(train)]
    held_tokens = [encode(m.events, m.metre).tokens for m in scored]
    bigram_nll, alpha = best_bigram(train_tokens, held_tokens)
    nll = model_nll(step, state_shape, scored)

    classifier = train_style_classifier(train)
    real_accuracy = float(np.mean(classifier.predict(melody_features(held_out))
                                  == [STYLES.index(m.style) for m in held_out]))
    requests = evaluation_requests(train, per_style, bars, rng)
    pieces = generate_pieces(step, state_shape, requests, seed)
    predicted = classifier.predict(np.stack([features(p, r.tonic, r.metre)
                                             for p, r in zip(pieces, requests, strict=True)]))
    per_style_figures: dict[str, dict[str, float]] = {}
    for index, style in enumerate(STYLES):
        rows = [i for i, r in enumerate(requests) if r.style == style]
        pitches_ok = [in_scale_fraction([e.pitch for e in pieces[i] if e.pitch >= 0], requests[i].tonic,
                                        requests[i].mode) for i in rows]
        notes = [sum(e.pitch >= 0 for e in pieces[i]) for i in rows]
        per_style_figures[style] = {
            "classified_as_requested": float(np.mean(predicted[rows] == index)),
            "in_scale": float(np.average(pitches_ok, weights=notes)),
            "ends_on_tonic": float(np.mean([[e for e in pieces[i] if e.pitch >= 0][-1].pitch % 12
                                            == requests[i].tonic for i in rows])),
        }
        held = [m for m in held_out if m.style == style]
        per_style_figures[style]["real_in_scale"] = float(np.mean(
            [in_scale_fraction([e.pitch for e in m.events if e.pitch >= 0], m.tonic, m.mode) for m in held]))
    all_notes = [(e.pitch, r) for p, r in zip(pieces, requests, strict=True) for e in p if e.pitch >= 0]
    return {
        "nll_model": nll,
        "nll_bigram": bigram_nll,
        "bigram_smoothing": alpha,
        "nll_reduction": 1.0 - nll / bigram_nll,
        "perplexity_model": math.exp(nll),
        "nll_pieces": len(scored),
        "classifier_accuracy_real_held_out": real_accuracy,
        "style_accuracy_generated": float(np.mean(predicted == [STYLES.index(r.style) for r in requests])),
        "in_scale_generated": float(np.mean([in_scale_fraction([p], r.tonic, r.mode) for p, r in all_notes])),
        "per_style": per_style_figures,
        "generated_per_style": per_style,
        "generated_bars": bars,
        "seed": seed,
    }


def session_step(session: Any) -> StepFn:
    """The exported step model as a sampler's step function."""
    def step(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        logits, state = session.run(["logits", "next_state"], dict(feed))
        return {"logits": logits, "next_state": state}

    return step


def evaluate_session(session: Any, state_shape: tuple[int, int], data: MelodySet,
                     quick: bool = False) -> dict[str, Any]:
    """The figures of the exported step model (what the recipe records); quick: a few pieces
    prove the pipeline, in seconds."""
    step = session_step(session)
    if quick:
        small_held = [m for s in STYLES for m in data.of_style(s, held_out=True)[:4]]
        small_train = [m for s in STYLES for m in data.of_style(s, held_out=False)[:30]]
        return evaluate_melody_model(step, state_shape, small_train, small_held, per_style=2, bars=4)
    return evaluate_melody_model(step, state_shape, data.split(held_out=False), data.split(held_out=True))
