"""What a piece's artifacts say of it (``x.*`` metadata): the mix speaks of the whole piece and
its melody, each stem of its own layer."""

from __future__ import annotations

import numpy as np

from .general_midi import program_name
from .loudness import integrated_loudness
from .score import Piece
from .theory import PITCH_NAMES

__all__ = ["piece_metadata", "stem_metadata"]


def _instrument(piece: Piece, voice: str) -> str:
    return "GM kit" if voice == "percussion" else program_name(piece.programs[voice])


def _notes(piece: Piece, voice: str) -> str:
    return str(sum(n.voice == voice for n in piece.notes))


def piece_metadata(piece: Piece, style: str, tokens: int) -> dict[str, str]:
    """The piece as asked for and as composed; ``instrument`` and ``notes`` are the melody's."""
    return {"style": style, "key": PITCH_NAMES[piece.tonic], "mode": piece.mode,
            "time_signature": str(piece.metre), "bars": str(piece.bars), "tempo_qpm": f"{piece.bpm:g}",
            "instrument": _instrument(piece, "melody"),
            "instruments": ", ".join(f"{part}: {_instrument(piece, part)}" for part in piece.programs),
            "notes": _notes(piece, "melody"), "tokens": str(tokens),
            # quarter notes before the first bar line: a one-shot that starts on a pickup
            "pickup_beats": f"{(-piece.start) % piece.metre.bar_beats:g}"}


def stem_metadata(piece: Piece, voice: str, samples: np.ndarray, sample_rate: int) -> dict[str, str]:
    """What a stem says of itself where the mix's metadata speaks of the mix: its layer, its
    instrument, its notes and its own loudness."""
    return {"stem": voice, "instrument": _instrument(piece, voice), "notes": _notes(piece, voice),
            "loudness_lufs": f"{integrated_loudness(samples, sample_rate):.2f}"}
