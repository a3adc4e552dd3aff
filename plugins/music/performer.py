"""A Piece's notes played through a General MIDI SoundFont, bar by bar as they are composed.

Notes arrive in start order, bar by bar. Once the pending bars span ``BLOCK_SECONDS`` they are
written as one small MIDI file (times from the block's start, with room for release and reverb
tails) and rendered through the SoundFont; each block's audio is added into the piece's buffer
at its place. The synthesizer is linear, so blocks rendered apart sum to the piece rendered
whole (up to its 16-bit output), and the blocks fall the same way whether the audio streams or
not, so streamed and unary output are the same bytes.

With ``separate`` every voice is rendered on its own into a stem of its own; the mix is then
the sum of the stems, exactly. A loop keeps its audio until the end, then wraps the tail past
its last bar into its first, as it sounds when the piece plays on repeat (notes held past the
loop point included). The audio starts at ``Piece.start`` (a one-shot's first note), frame 0.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .midi_file import block_midi
from .render_pool import Rendering, RenderPool, shared_pool
from .score import VOICES, Note, Piece
from .soundfont import RENDER_RATE, SoundFont, wav_audio

__all__ = ["BLOCK_SECONDS", "TAIL_SECONDS", "Performer", "perform"]

BLOCK_SECONDS = 4.0  # fewer, longer render calls: each renders its own reverb tail again
TAIL_SECONDS = 2.0  # release and reverb after the last note: TimGM6mb's are below -60 dB by then
AHEAD = 2  # blocks rendering at once per piece: as many as there are render processes by default


@dataclass
class _Block:
    """A block sent to render: where it goes and each render's target (None: the mix)."""

    offset: int
    renders: list[tuple[str | None, Rendering]]


class Performer:
    """Renders notes into stereo float32 buffers as they arrive and hands out finished audio."""

    def __init__(self, piece: Piece, font: SoundFont, sample_rate: int = RENDER_RATE,
                 separate: bool = False, pool: RenderPool | None = None) -> None:
        if sample_rate not in (44100, 48000):
            raise ValueError(f"sample_rate must be 44100 or 48000, got {sample_rate}")
        self.piece, self.font, self.sample_rate, self.separate = piece, font, sample_rate, separate
        self.tail = round(TAIL_SECONDS * sample_rate)
        self._pending: list[Note] = []
        self._pool = pool or shared_pool()
        self._rendering: deque[_Block] = deque()  # sent to render, not yet added, in order
        self._taken = 0
        self._finished = False
        self._start = self._origin = 0.0  # _origin: beat where the pending (unrendered) notes' block starts
        self.length = self.frames = 0
        self.start_at(piece.start)
        # A loop's tail is folded into its start at the end; a later start only shortens the piece.
        buffer = self.length + self.tail
        # float32, as handed out: a 10-minute piece holds 230 MB per buffer (the mix and each stem).
        voices = [voice for voice in VOICES if voice in piece.programs] if separate else []
        self._stems = {voice: np.zeros((buffer, 2), np.float32) for voice in voices}
        self._mix = np.zeros((buffer, 2), np.float32)

    def frame(self, beat: float) -> int:
        """The sample index of a time in beats (from the piece's start)."""
        return round((beat - self._start) * 60.0 / self.piece.bpm * self.sample_rate)

    def start_at(self, beat: float) -> None:
        """Make ``beat`` the audio's frame 0 (a one-shot's first note); before any note is added."""
        if self._pending or self._rendering or self._taken:
            raise RuntimeError("the start is set before any note is added")
        self._start = self._origin = beat
        self.length = self.frame(self.piece.beats)  # the piece itself, in frames
        self.frames = self.length if self.piece.loop else self.length + self.tail  # what finish() hands out

    def add(self, notes: Iterable[Note]) -> None:
        for note in notes:
            if note.voice not in VOICES:
                raise ValueError(f"note voice must be one of {VOICES}, got {note.voice!r}")
            if note.length <= 0 or note.start < self._origin:
                raise ValueError(f"note needs length > 0 and a start after audio already rendered, "
                                 f"got {note}")
            if self.frame(note.start) >= self.length:
                raise ValueError(f"note at beat {note.start} starts after the piece ends "
                                 f"({self.piece.beats})")
            self._pending.append(note)

    def take(self, until_beat: float, wait_for: int = 0) -> np.ndarray:
        """Audio from where the last take stopped, as far towards ``until_beat`` as is final; with
        ``wait_for``, waits for the blocks sent to render until that many frames are final (or all
        that were sent are)."""
        if (until_beat - self._origin) * self.piece.seconds_per_beat >= BLOCK_SECONDS:
            self._render(until_beat)
        self._settle(wait_for)
        if self.piece.loop:
            return self._hand_out(0)  # the start is final only once the tail has wrapped into it
        # Audio is final up to the first block still rendering (blocks add only from their start on).
        return self._hand_out(self._rendering[0].offset if self._rendering else self.frame(self._origin))

    def finish(self) -> np.ndarray:
        """The rest of the audio: tails after the last bar, or for a loop the whole of it, tail wrapped."""
        if not self._finished:
            self._render(self.piece.beats)
            self._settle(math.inf)
            if self.piece.loop:
                for buffer in (self._mix, *self._stems.values()):
                    _fold(buffer, self.length)
                if self.separate:  # the stems still sum to the mix exactly, not within rounding
                    self._mix[:] = sum(self._stems.values())
            self._finished = True
        return self._hand_out(self.frames)

    def finishing(self) -> Iterator[np.ndarray]:
        """What ``finish`` hands out, a stretch as each block still rendering completes, so the caller
        passes audio on (to the client, to the encoder) while later blocks render; a loop's at once."""
        if not self._finished and not self.piece.loop:
            self._render(self.piece.beats)
            while self._rendering:
                self._settle(self._rendering[0].offset + 1)  # the oldest block, and any done after it
                if self._rendering:
                    yield self._hand_out(self._rendering[0].offset)
        yield self.finish()

    def audio(self) -> np.ndarray:
        """After ``finish``: the whole mix, [frames, 2] float32 (what the takes handed out, together);
        a read-only view, not a copy."""
        if not self._finished:
            raise RuntimeError("the audio is ready once the performance is finished")
        return _read_only(self._mix[:self.frames])

    def stems(self) -> dict[str, np.ndarray]:
        """After ``finish``: each sounding voice's audio (float32, the mix's length), for ``separate``
        performers; read-only views."""
        if not self._finished:
            raise RuntimeError("stems are ready once the performance is finished")
        return {voice: _read_only(buffer[:self.frames]) for voice, buffer in self._stems.items()}

    def _hand_out(self, stop: int) -> np.ndarray:
        """The next stretch as a read-only view: audio handed out is final, no block adds to it."""
        stop = min(max(stop, self._taken), self.frames)
        chunk = _read_only(self._mix[self._taken:stop])
        self._taken = stop
        return chunk

    def _render(self, until_beat: float) -> None:
        """Send the pending notes to render as one block (one render per voice with ``separate``)."""
        notes, self._pending = self._pending, []
        origin, self._origin = self._origin, until_beat
        if not notes:
            return
        last = max(note.start + note.length for note in notes)
        beats = last - origin + TAIL_SECONDS / self.piece.seconds_per_beat
        block = _Block(self.frame(origin), [])
        groups = [(voice, [n for n in notes if n.voice == voice]) for voice in VOICES] if self.separate \
            else [(None, notes)]
        for voice, group in groups:
            if group:
                if voice is not None and voice not in self._stems:
                    raise ValueError(f"a {voice} note in a piece without a {voice} program")
                midi = block_midi(group, self.piece.programs, self.piece.bpm, origin, beats)
                block.renders.append((voice, self._pool.submit(self.font, midi)))
        self._rendering.append(block)

    def close(self) -> None:
        """Drop the blocks still waiting to render (the request was cancelled or failed)."""
        for block in self._rendering:
            for _, render in block.renders:
                render.cancel()
        self._rendering.clear()

    def sent_frames(self) -> int:
        """Frames of the piece whose notes have all been sent to render."""
        return self.frame(self._origin)

    def _settle(self, wait_until: float = 0) -> None:
        """Add rendered blocks into the buffers, oldest first: each finished one, and, waiting for
        them, those starting before frame ``wait_until`` and the oldest while more than AHEAD are out
        (bounding the audio in flight)."""
        while self._rendering:
            block = self._rendering[0]
            if not (block.offset < wait_until or len(self._rendering) > AHEAD
                    or all(render.done() for _, render in block.renders)):
                return
            self._rendering.popleft()
            end = block.offset
            for voice, render in block.renders:
                audio = self._resampled(wav_audio(render.result()))
                if self.piece.loop:  # notes held past the loop point: the buffers grow to fold them in
                    self._grow(block.offset + len(audio))
                target = self._mix if voice is None else self._stems[voice]
                end = max(end, self._add(target, block.offset, audio))
            if self.separate:  # only this block's span changed; summing all each block would be quadratic
                self._mix[block.offset:end] = sum(stem[block.offset:end] for stem in self._stems.values())

    def _grow(self, frames: int) -> None:
        if frames > len(self._mix):
            extra = np.zeros((frames - len(self._mix), 2), np.float32)
            self._mix = np.concatenate([self._mix, extra])
            self._stems = {voice: np.concatenate([stem, extra]) for voice, stem in self._stems.items()}

    @staticmethod
    def _add(buffer: np.ndarray, offset: int, audio: np.ndarray) -> int:
        """Add ``audio`` at ``offset``; where it ends (within the buffer)."""
        end = min(offset + len(audio), len(buffer))
        buffer[offset:end] += audio[:end - offset]
        return end

    def _resampled(self, audio: np.ndarray) -> np.ndarray:
        if self.sample_rate == RENDER_RATE:
            return audio
        from scipy.signal import resample_poly

        up, down = self.sample_rate // 300, RENDER_RATE // 300  # 147/160: 48 kHz to 44.1 kHz
        return np.asarray(resample_poly(audio, up, down, axis=0), dtype=np.float32)


def _read_only(view: np.ndarray) -> np.ndarray:
    view.flags.writeable = False
    return view


def _fold(buffer: np.ndarray, length: int) -> None:
    """Add everything past ``length`` into the start, round and round (a tail longer than the loop)."""
    for start in range(length, len(buffer), length):
        part = buffer[start:start + length]
        buffer[:len(part)] += part


def perform(piece: Piece, font: SoundFont, sample_rate: int = RENDER_RATE,
            separate: bool = False, pool: RenderPool | None = None) -> Performer:
    """The whole piece, fed bar by bar exactly as music.melody streams it; ``finish``-ed."""
    performer = Performer(piece, font, sample_rate, separate, pool)  # from piece.start
    bars: list[list[Note]] = [[] for _ in range(piece.bars)]
    for note in piece.notes:
        bars[min(int(note.start // piece.metre.bar_beats), piece.bars - 1)].append(note)
    for bar, notes in enumerate(bars):
        performer.add(sorted(notes, key=lambda note: note.start))
        if bar < piece.bars - 1:
            performer.take(piece.bar_start(bar + 1))
    performer.finish()
    return performer
