"""From the harmony model's per-step pitch distributions to voices (numpy only: served).

At each step the few likeliest pitches of each lower voice form candidate chords (alto
above tenor above bass, all below the soprano). A Viterbi pass over the bar picks the
sequence of chords that is likeliest under the model after costs for what part-writing
forbids or avoids between neighbouring chords: parallel fifths and octaves between any
two voices, voices overlapping, big leaps, wide spacing. It starts from the last chord of
the bar before, so bars join as smoothly as steps do.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from .harmony_features import LOWER_VOICES, RANGES

TOP = 5  # candidate pitches per voice and step
KEEP = 24  # candidate chords per step kept for the Viterbi pass (the cheapest)
DISSONANCE = 1.5  # a semitone or major seventh between two voices: the heads choose pitches apart
PARALLEL = 4.0  # cost of a parallel fifth or octave (unison included) between two voices
OVERLAP = 0.6  # voices moving past where a neighbour just was (once per move)
WIDE = 0.4  # per semitone beyond an octave between soprano/alto or alto/tenor
_LEAP = {"alto": (2, 0.12, 7, 1.0), "tenor": (2, 0.12, 7, 1.0), "bass": (4, 0.05, 12, 2.0)}
_PAIRS = tuple(combinations(range(4), 2))  # voice pairs in S A T B order


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _chord_costs(grid: np.ndarray, cost: np.ndarray, soprano: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which chords are ordered (alto > tenor > bass, alto < soprano) and their cost with spacing and
    dissonance added. ``grid`` [..., N, 3], ``cost`` [..., N], ``soprano`` [..., 1] (-1: none)."""
    ordered = (grid[..., 0] > grid[..., 1]) & (grid[..., 1] > grid[..., 2])
    heard = soprano >= 0
    ordered &= ~heard | (grid[..., 0] < soprano)
    cost = cost + np.where(heard, WIDE * np.maximum(0, soprano - grid[..., 0] - 12), 0)
    cost = cost + WIDE * np.maximum(0, grid[..., 0] - grid[..., 1] - 12)
    full = np.concatenate([np.broadcast_to(soprano[..., None], (*grid.shape[:-1], 1)), grid], -1)
    for x, y in _PAIRS:
        interval = (full[..., x] - full[..., y]) % 12
        clash = (interval == 1) | (interval == 11)
        cost = cost + DISSONANCE * (clash & heard if x == 0 else clash)
    return ordered, cost


def _candidates(scores: dict[str, np.ndarray], heard: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to KEEP cheapest ordered chords of each step's ``top`` likeliest pitches per voice:
    [T, KEEP, 3] and their cost [T, KEEP] (inf in unused slots, which come last)."""
    steps = len(heard)
    pitches, logps = [], []
    for voice in LOWER_VOICES:
        order = np.argsort(-scores[voice], axis=1)[:, :top]  # [T, top]
        pitches.append(order + RANGES[voice][0])
        logps.append(np.take_along_axis(scores[voice], order, 1))
    index = [axis.ravel() for axis in np.meshgrid(*(np.arange(p.shape[1]) for p in pitches), indexing="ij")]
    grid = np.stack([pitches[v][:, index[v]] for v in range(3)], -1)  # [T, top^3, 3]
    cost = -np.stack([logps[v][:, index[v]] for v in range(3)], -1).sum(-1)
    ordered, cost = _chord_costs(grid, cost, heard[:, None])
    cost = np.where(ordered, cost, np.inf)
    keep = np.argsort(cost, axis=1, kind="stable")[:, :KEEP]
    chosen = np.take_along_axis(grid, keep[..., None], 1)
    kept = np.take_along_axis(cost, keep, 1)
    if kept.shape[1] < KEEP:
        chosen = np.concatenate([chosen, np.repeat(chosen[:, :1], KEEP - kept.shape[1], 1)], 1)
        kept = np.concatenate([kept, np.full((steps, KEEP - kept.shape[1]), np.inf)], 1)
    return chosen, kept


def _with_soprano(chords: np.ndarray, soprano: np.ndarray) -> np.ndarray:
    """[S, K, 4] int16 chords with the soprano in front (S, A, T, B)."""
    top = np.broadcast_to(soprano[:, None, None], (*chords.shape[:2], 1))
    return np.concatenate([top, chords], -1).astype(np.int16)


def _transition(previous: np.ndarray, prev_soprano: np.ndarray, current: np.ndarray, soprano: np.ndarray
                ) -> np.ndarray:
    """Cost [S, P, N] of moving from each previous chord to each current one, for S step pairs at once:
    ``previous`` [S, P, 3], ``current`` [S, N, 3] (alto, tenor, bass), sopranos [S] (-1: none)."""
    before, after = _with_soprano(previous, prev_soprano), _with_soprano(current, soprano)
    x, y = (np.array(v) for v in zip(*_PAIRS, strict=True))
    interval_before = (before[..., x] - before[..., y]) % 12  # [S, P, 6]
    interval_after = (after[..., x] - after[..., y]) % 12  # [S, N, 6]
    perfect = (interval_after == 0) | (interval_after == 7)
    motion = after[:, None, :, :] - before[:, :, None, :]  # [S, P, N, 4]
    direction = np.sign(motion)
    moving = (direction[..., x] != 0) & (direction[..., x] == direction[..., y])  # both move the same way
    parallel = moving & (interval_before[:, :, None, :] == interval_after[:, None, :, :]) & perfect[:, None]
    parallel[..., x == 0] &= ((soprano >= 0) & (prev_soprano >= 0))[:, None, None, None]
    cost = PARALLEL * parallel.sum(-1, dtype=np.float64)
    for row, voice in enumerate(LOWER_VOICES, 1):
        free, per, big, big_cost = _LEAP[voice]
        leap = np.abs(motion[..., row])
        cost += per * np.maximum(0, leap - free) + big_cost * (leap > big)
    # one cost for any overlap: alto below the old tenor, tenor above the old alto or below the old
    # bass, bass above the old tenor
    b, a = before[:, :, None, :], after[:, None, :, :]
    cost += OVERLAP * ((a[..., 1] < b[..., 2]) | (a[..., 2] > b[..., 1]) | (a[..., 2] < b[..., 3])
                       | (a[..., 3] > b[..., 2]))
    return cost


def _fallback(scores: dict[str, np.ndarray], heard: int) -> tuple[np.ndarray, np.ndarray]:
    """One step no chord of the top pitches fits under: wider choices, else the likeliest pitches."""
    one = {voice: scores[voice][None] for voice in LOWER_VOICES}
    for top in (2 * TOP, max(len(s) for s in scores.values())):
        chords, costs = _candidates(one, np.array([heard]), top)
        if np.isfinite(costs[0, 0]):
            return chords[0], costs[0]
    likeliest = np.array([int(np.argmax(scores[v])) + RANGES[v][0] for v in LOWER_VOICES])
    return np.repeat(likeliest[None], KEEP, 0), np.r_[0.0, np.full(KEEP - 1, np.inf)]


def decode(logits: dict[str, np.ndarray], soprano: np.ndarray, previous: tuple[np.ndarray, int] | None
           ) -> np.ndarray:
    """The chosen (alto, tenor, bass) per step, int [T, 3].

    ``logits``: [T, classes] per voice; ``soprano``: the melody's pitch per step (-1 rest);
    ``previous``: the last chord of the bar before and the soprano over it.
    """
    steps = len(soprano)
    scores = {voice: log_softmax(logits[voice].astype(np.float64)) for voice in LOWER_VOICES}
    heard = np.asarray(soprano, np.int64).copy()  # a rest keeps the soprano's last pitch as the ceiling
    for t in range(steps):
        if heard[t] < 0:
            heard[t] = heard[t - 1] if t else (previous[1] if previous else -1)
    chords, costs = _candidates(scores, heard, TOP)
    for t in np.flatnonzero(~np.isfinite(costs[:, 0])).tolist():
        chords[t], costs[t] = _fallback({voice: scores[voice][t] for voice in LOWER_VOICES}, int(heard[t]))
    moves = _transition(chords[:-1], heard[:-1], chords[1:], heard[1:])  # [T-1, K, K]
    total = costs[0].copy()
    if previous is not None:
        total += _transition(previous[0][None, None, :], np.array([previous[1]]), chords[:1], heard[:1])[0, 0]
    back = []
    for t in range(1, steps):
        step = total[:, None] + moves[t - 1]
        back.append(np.argmin(step, 0))
        total = step.min(0) + costs[t]
    path = [int(np.argmin(total))]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    path.reverse()
    return np.stack([chords[t][i] for t, i in enumerate(path)])
