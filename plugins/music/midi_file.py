"""A Standard MIDI File writer (format 1, 480 ticks per quarter) and its provenance reader.

Track 0 holds tempo, metre, key and the provenance JSON in a text event; then one
track per voice present, each on its own channel with the General MIDI program it is
rendered with (percussion on channel 10, the GM kit). The same tracks, shifted to start
at a block, are what the SoundFont renderer plays (``block_midi``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import replace

from museforge import provenance_from_text, provenance_json

from .general_midi import DRUM_BANK, DRUM_CHANNEL
from .pickup import pickup_signature
from .score import VOICES, Note, Piece
from .theory import PITCH_NAMES

TICKS_PER_QUARTER = 480
CHANNELS = {"melody": 0, "chords": 1, "bass": 2, "percussion": DRUM_CHANNEL}
TRACK_NAMES = {"melody": "Melody", "chords": "Chords", "bass": "Bass", "percussion": "Percussion"}
# Semitones from a mode's tonic down to its parent major's: a mode shares that key signature.
MODE_TO_MAJOR = {"major": 0, "ionian": 0, "dorian": 2, "phrygian": 4, "lydian": 5,
                 "mixolydian": 7, "minor": 9, "aeolian": 9, "locrian": 11}


def vlq(value: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits a byte, high bit set on all but the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def key_signature(tonic: int, mode: str) -> tuple[int, bool]:
    """(sharps, or flats as a negative count; minor?) for a key; modes take their parent major's."""
    if mode.lower() not in MODE_TO_MAJOR:
        raise ValueError(f"mode must be one of {sorted(MODE_TO_MAJOR)}, got {mode!r}")
    fifths = (tonic - MODE_TO_MAJOR[mode.lower()]) % 12 * 7 % 12  # steps round the circle of fifths
    # Six either way (F# or Gb major and their modes): spell as the key is named, so the
    # "Eb" minor of the metadata is six flats, not the D# minor of six sharps.
    flat = fifths > 6 or (fifths == 6 and PITCH_NAMES[tonic % 12].endswith("b"))
    return (fifths - 12 if flat else fifths), mode.lower() in ("minor", "aeolian")


def meta(kind: int, data: bytes) -> bytes:
    return bytes([0xFF, kind]) + vlq(len(data)) + data


def track(events: list[tuple[int, int, bytes]], end: int) -> bytes:
    """A track chunk from (tick, order, message) events; order 0 (note-off) sorts before 1."""
    body, now = bytearray(), 0
    for tick, _, message in sorted(events, key=lambda event: (event[0], event[1])):
        body += vlq(tick - now) + message
        now = tick
    body += vlq(max(end - now, 0)) + meta(0x2F, b"")
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def ticks(beats: float) -> int:
    return round(beats * TICKS_PER_QUARTER)


def note_events(notes: list[Note], channel: int, origin: float = 0.0) -> list[tuple[int, int, bytes]]:
    """Note on/off pairs (times from ``origin`` beats); a repeated pitch ends the previous one so no
    note-off cuts it short."""
    events: list[tuple[int, int, bytes]] = []
    ordered = sorted(notes, key=lambda note: (note.pitch, note.start))
    for index, note in enumerate(ordered):
        if not 0 <= note.pitch <= 127:
            raise ValueError(f"note pitch must be 0..127, got {note.pitch}")
        start, end = ticks(note.start - origin), ticks(note.start + note.length - origin)
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        if following is not None and following.pitch == note.pitch:
            end = min(end, ticks(following.start - origin))
        if end <= start:
            continue
        velocity = min(max(note.velocity, 1), 127)
        events.append((start, 1, bytes([0x90 | channel, note.pitch, velocity])))
        events.append((end, 0, bytes([0x80 | channel, note.pitch, 64])))
    return events


def voice_tracks(notes: list[Note], programs: Mapping[str, int], end: int,
                 origin: float = 0.0) -> list[bytes]:
    """One track per voice that has notes: its name, program and notes (times from ``origin``)."""
    chunks = []
    for voice in VOICES:
        voiced = [note for note in notes if note.voice == voice]
        if not voiced:
            continue
        channel = CHANNELS[voice]
        events = [(0, 0, meta(0x03, TRACK_NAMES[voice].encode())),
                  (0, 0, bytes([0xC0 | channel, programs.get(voice, 0)]))]
        chunks.append(track(events + note_events(voiced, channel, origin), end))
    return chunks


def midi_file(chunks: list[bytes]) -> bytes:
    return b"MThd" + struct.pack(">IHHH", 6, 1, len(chunks), TICKS_PER_QUARTER) + b"".join(chunks)


def tempo_event(bpm: float) -> tuple[int, int, bytes]:
    return (0, 0, meta(0x51, round(60_000_000 / bpm).to_bytes(3, "big")))


def time_signature(numerator: int, denominator: int, click: int) -> bytes:
    return meta(0x58, bytes([numerator, denominator.bit_length() - 1, click, 8]))


def write_midi(piece: Piece, provenance: Mapping[str, str]) -> bytes:
    """The piece as a format-1 Standard MIDI File, from ``piece.start`` as its audio is: a one-shot
    that starts on a pickup opens with the pickup as a bar of its own time signature. A loop's notes
    held past its end go on from its start, as the audio wraps them."""
    end = ticks(piece.beats - piece.start)
    metre = piece.metre
    compound = metre.denominator == 8 and metre.numerator % 3 == 0 and metre.numerator > 3
    click = 36 if compound else 96 // metre.denominator  # MIDI clocks per metronome beat
    sharps, minor = key_signature(piece.tonic, piece.mode)
    pickup = (-piece.start) % metre.bar_beats  # quarter notes before the first full bar
    signatures = [(0, 0, time_signature(metre.numerator, metre.denominator, click))]
    if pickup > 1e-9:
        signatures = [(0, 0, time_signature(*pickup_signature(pickup, metre.denominator), click)),
                      (ticks(pickup), 0, time_signature(metre.numerator, metre.denominator, click))]
    conductor = [
        (0, 0, meta(0x03, b"museforge")),
        tempo_event(piece.bpm),
        *signatures,
        (0, 0, meta(0x59, struct.pack(">bB", sharps, int(minor)))),
        (0, 0, meta(0x01, provenance_json(provenance).encode())),
    ]
    notes = wrapped(piece.notes, piece.beats) if piece.loop else piece.notes
    return midi_file([track(conductor, end), *voice_tracks(notes, piece.programs, end, piece.start)])


def wrapped(notes: list[Note], beats: float) -> list[Note]:
    """A loop's notes with what sounds past ``beats`` moved to the start, round and round."""
    out = []
    for note in notes:
        start, length = note.start, note.length
        while start + length > beats + 1e-9:
            out.append(replace(note, start=start, length=beats - start))
            start, length = 0.0, start + length - beats
        out.append(replace(note, start=start, length=length))
    return [note for note in out if note.length > 1e-9]


def block_midi(notes: list[Note], programs: Mapping[str, int], bpm: float, origin: float,
               beats: float) -> bytes:
    """Notes from ``origin`` as a file ``beats`` long (room for their tails): what one render call plays."""
    end = ticks(beats)
    return midi_file([track([tempo_event(bpm)], end), *voice_tracks(notes, programs, end, origin)])


def read_vlq(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos


def track_events(body: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(status, meta type or -1, data) of every event in a track body, in order; running status
    resolved. A channel event's data is its one or two data bytes."""
    pos, status = 0, 0
    while pos < len(body):
        _, pos = read_vlq(body, pos)
        if body[pos] & 0x80:  # else running status: the previous channel status again
            status = body[pos]
            pos += 1
        if status in (0xFF, 0xF0, 0xF7):
            kind = body[pos] if status == 0xFF else -1
            length, pos = read_vlq(body, pos + 1 if status == 0xFF else pos)
            yield status, kind, body[pos:pos + length]
            pos += length
        else:
            size = 1 if status & 0xF0 in (0xC0, 0xD0) else 2
            yield status, -1, body[pos:pos + size]
            pos += size


def meta_events(body: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, data) of every meta event in a track body, stepping over the other events."""
    return ((kind, data) for status, kind, data in track_events(body) if status == 0xFF)


def track_bodies(data: bytes) -> Iterator[bytes]:
    """The body of every MTrk chunk of a Standard MIDI File."""
    if data[:4] != b"MThd" or len(data) < 8:
        raise ValueError("not a Standard MIDI File (no MThd header)")
    pos = 8 + struct.unpack(">I", data[4:8])[0]
    while pos + 8 <= len(data):
        kind, length = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        if kind == b"MTrk":
            yield data[pos + 8:pos + 8 + length]
        pos += 8 + length


def presets_played(midi: bytes) -> frozenset[tuple[int, int]] | None:
    """(bank, program) of every preset the file's notes may sound through: each program set on a
    channel that plays, and program 0 where a note may come before one is set in its track (a
    superset, never less); None when it selects banks or cannot be read."""
    programs: list[set[int]] = [set() for _ in range(16)]
    plays = [False] * 16
    try:
        for body in track_bodies(midi):
            set_here = [False] * 16
            for status, _, data in track_events(body):
                kind, channel = status & 0xF0, status & 0x0F
                if status >= 0xF0:
                    continue
                if kind == 0xC0:
                    programs[channel].add(data[0])
                    set_here[channel] = True
                elif kind == 0xB0 and data[0] in (0, 32):
                    return None  # a bank select: leave the choice of preset to the synthesizer
                elif kind == 0x90 and data[1]:
                    plays[channel] = True
                    if not set_here[channel]:
                        programs[channel].add(0)  # what the channel plays before a program change
    except (IndexError, ValueError, struct.error):
        return None
    return frozenset((DRUM_BANK if channel == DRUM_CHANNEL else 0, program)
                     for channel in range(16) if plays[channel] for program in programs[channel] or {0})


def read_midi_provenance(data: bytes) -> dict[str, str]:
    """The provenance a museforge MIDI file carries in a text event (empty when it has none)."""
    for body in track_bodies(data):
        for meta_type, payload in meta_events(body):
            found = provenance_from_text(payload) if meta_type == 0x01 and payload.startswith(b"{") else {}
            if found:
                return found
    return {}
