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
OVERLAP = 0.6  # a voice moving past where its neighbour just was
WIDE = 0.4  # per semitone beyond an octave between soprano/alto or alto/tenor
_LEAP = {"alto": (2, 0.12, 7, 1.0), "tenor": (2, 0.12, 7, 1.0), "bass": (4, 0.05, 12, 2.0)}
_PAIRS = tuple(combinations(range(4), 2))  # voice pairs in S A T B order


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _candidates(scores: dict[str, np.ndarray], soprano: int, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Ordered (alto > tenor > bass, alto < soprano) chords of top pitches: [N, 3] and emission cost."""
    picks = []
    for voice in LOWER_VOICES:
        order = np.argsort(-scores[voice])[:top]
        picks.append((order + RANGES[voice][0], scores[voice][order]))
    grid = np.array(np.meshgrid(*(p[0] for p in picks), indexing="ij")).reshape(3, -1).T
    cost = -np.array(np.meshgrid(*(p[1] for p in picks), indexing="ij")).reshape(3, -1).T.sum(1)
    ordered = (grid[:, 0] > grid[:, 1]) & (grid[:, 1] > grid[:, 2])
    if soprano >= 0:
        ordered &= grid[:, 0] < soprano
        cost = cost + WIDE * np.maximum(0, soprano - grid[:, 0] - 12)
    cost = cost + WIDE * np.maximum(0, grid[:, 0] - grid[:, 1] - 12)
    full = np.concatenate([np.full((len(grid), 1), soprano), grid], 1)
    for x, y in _PAIRS:
        if x == 0 and soprano < 0:
            continue
        interval = (full[:, x] - full[:, y]) % 12
        cost = cost + DISSONANCE * ((interval == 1) | (interval == 11))
    grid, cost = grid[ordered], cost[ordered]
    keep = np.argsort(cost, kind="stable")[:KEEP]
    return grid[keep], cost[keep]


def _transition(previous: np.ndarray, prev_soprano: int, current: np.ndarray, soprano: int) -> np.ndarray:
    """Cost [P, N] of moving from each previous chord to each current one (alto, tenor, bass rows)."""
    p = np.concatenate([np.full((len(previous), 1), prev_soprano), previous], 1)[:, None, :]  # [P, 1, 4]
    c = np.concatenate([np.full((len(current), 1), soprano), current], 1)[None, :, :]  # [1, N, 4]
    cost = np.zeros((p.shape[0], c.shape[1]))
    motion = c - p
    for x, y in _PAIRS:
        if x == 0 and (soprano < 0 or prev_soprano < 0):
            continue
        before, after = (p[..., x] - p[..., y]) % 12, (c[..., x] - c[..., y]) % 12
        both_move = (motion[..., x] != 0) & (motion[..., y] != 0) & (np.sign(motion[..., x]) == np.sign(
            motion[..., y]))
        cost += PARALLEL * (both_move & (before == after) & ((after == 0) | (after == 7)))
    for row, voice in enumerate(LOWER_VOICES, 1):
        free, per, big, big_cost = _LEAP[voice]
        leap = np.abs(motion[..., row])
        cost += per * np.maximum(0, leap - free) + big_cost * (leap > big)
    # overlap: alto below the old tenor, tenor above the old alto or below the old bass,
    # bass above the old tenor
    cost += OVERLAP * ((c[..., 1] < p[..., 2]) + (c[..., 2] > p[..., 1]) + (c[..., 2] < p[..., 3])
                       + (c[..., 3] > p[..., 2]))
    return cost


def decode(logits: dict[str, np.ndarray], soprano: np.ndarray, previous: tuple[np.ndarray, int] | None
           ) -> np.ndarray:
    """The chosen (alto, tenor, bass) per step, int [T, 3].

    ``logits``: [T, classes] per voice; ``soprano``: the melody's pitch per step (-1 rest);
    ``previous``: the last chord of the bar before and the soprano over it.
    """
    steps = len(soprano)
    scores = {voice: log_softmax(logits[voice].astype(np.float64)) for voice in LOWER_VOICES}
    heard = soprano.copy()  # a rest keeps the soprano's last pitch as the ceiling
    for t in range(steps):
        if heard[t] < 0:
            heard[t] = heard[t - 1] if t else (previous[1] if previous else -1)
    chords, costs = [], []
    for t in range(steps):
        step_scores = {voice: scores[voice][t] for voice in LOWER_VOICES}
        for top in (TOP, 2 * TOP, max(len(s) for s in step_scores.values())):
            found, cost = _candidates(step_scores, int(heard[t]), top)
            if len(found):
                break
        else:  # no ordered chord under this soprano at all: the likeliest pitches, unordered
            found = np.array([[int(np.argmax(step_scores[v])) + RANGES[v][0] for v in LOWER_VOICES]])
            cost = np.zeros(1)
        chords.append(found)
        costs.append(cost)
    total = costs[0].copy()
    if previous is not None:
        total += _transition(previous[0][None, :], previous[1], chords[0], int(heard[0]))[0]
    back = []
    for t in range(1, steps):
        step = total[:, None] + _transition(chords[t - 1], int(heard[t - 1]), chords[t], int(heard[t]))
        back.append(np.argmin(step, 0))
        total = step.min(0) + costs[t]
    path = [int(np.argmin(total))]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    path.reverse()
    return np.stack([chords[t][i] for t, i in enumerate(path)])
