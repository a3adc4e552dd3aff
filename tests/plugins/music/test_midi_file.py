"""The MIDI writer: raw structure, and a round trip through music21's own MIDI reader."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import music21
import pytest

from museforge.plugins.music import midi_file
from museforge.plugins.music.score import Metre, Note, Piece

PROVENANCE = {"generator": "music.melody", "seed": "7", "models": json.dumps([{"sha256": "ab" * 32}] * 40)}


def dorian_piece() -> Piece:
    notes = [Note(0.0, 1.5, 74, 100), Note(1.5, 0.5, 76, 90), Note(2.0, 1.0, 77, 80), Note(3.0, 3.0, 74, 70)]
    notes += [Note(0.0, 3.0, pitch, 70, "chords") for pitch in (50, 53, 57)]
    notes += [Note(3.0, 3.0, 48, 60, "chords"), Note(0.0, 6.0, 38, 80, "bass")]
    return Piece(Metre(6, 8), 96.0, 2, 2, "dorian", {"melody": 46, "chords": 52, "bass": 48}, False, notes)


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        kind, length = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        out.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 8 + length
    return out


def test_file_structure() -> None:
    data = midi_file.write_midi(dorian_piece(), PROVENANCE)
    found = chunks(data)
    assert found[0] == (b"MThd", struct.pack(">HHH", 1, 4, 480))  # format 1, 4 tracks, 480 per quarter
    assert [kind for kind, _ in found[1:]] == [b"MTrk"] * 4
    assert all(body.endswith(b"\xff\x2f\x00") for _, body in found[1:])
    conductor = found[1][1]
    assert b"\xff\x51\x03" + (625000).to_bytes(3, "big") in conductor  # 96 bpm
    assert b"\xff\x58\x04\x06\x03\x24\x08" in conductor  # 6/8, a click every dotted quarter
    assert b"\xff\x59\x02\x00\x00" in conductor  # D dorian: C major's signature
    assert b"\xc0\x2e" in found[2][1] and b"\xc1\x34" in found[3][1] and b"\xc2\x30" in found[4][1]


def test_only_voices_present_get_tracks() -> None:
    piece = dorian_piece()
    piece.notes = [note for note in piece.notes if note.voice == "melody"]
    data = midi_file.write_midi(piece, {})
    assert struct.unpack(">H", data[10:12])[0] == 2


def test_note_offs_come_before_note_ons_at_the_same_time() -> None:
    piece = Piece(Metre(4, 4), 120.0, 1, 0, "major", {"melody": 19}, False,
                  [Note(0.0, 1.0, 60), Note(1.0, 1.0, 62), Note(2.0, 2.0, 60)])
    melody = chunks(midi_file.write_midi(piece, {}))[2][1]
    events = melody[melody.index(b"\xc0\x13") + 2:]
    # delta, status, key, velocity: on C4 at 0; at 480 the off of C4 then the on of D4; ...
    assert events.startswith(b"\x00\x90\x3c\x5a" + b"\x83\x60\x80\x3c\x40" + b"\x00\x90\x3e\x5a"
                             + b"\x83\x60\x80\x3e\x40" + b"\x00\x90\x3c\x5a" + b"\x87\x40\x80\x3c\x40")


def test_a_repeated_pitch_ends_the_note_it_overlaps() -> None:
    piece = Piece(Metre(4, 4), 120.0, 1, 0, "major", {"melody": 19}, False,
                  [Note(0.0, 2.0, 60), Note(1.0, 2.0, 60)])
    melody = chunks(midi_file.write_midi(piece, {}))[2][1]
    events = melody[melody.index(b"\xc0\x13") + 2:]
    assert events.startswith(b"\x00\x90\x3c\x5a" + b"\x83\x60\x80\x3c\x40" + b"\x00\x90\x3c\x5a"
                             + b"\x87\x40\x80\x3c\x40")


def test_music21_reads_back_notes_tempo_metre_and_key(tmp_path: Path) -> None:
    piece = dorian_piece()
    path = tmp_path / "piece.mid"
    path.write_bytes(midi_file.write_midi(piece, PROVENANCE))
    score = music21.converter.parse(str(path), format="midi").stripTies()
    assert isinstance(score, music21.stream.Score)
    tempi = score.recurse().getElementsByClass(music21.tempo.MetronomeMark)
    assert {mark.number for mark in tempi} == {96}
    metres = score.recurse().getElementsByClass(music21.meter.TimeSignature)
    assert {sig.ratioString for sig in metres} == {"6/8"}
    keys = list(score.recurse().getElementsByClass(music21.key.KeySignature))
    assert keys and all(key.sharps == 0 for key in keys)
    parts = {part.partName.split(":")[0]: part for part in score.parts}
    assert set(parts) == {"Melody", "Chords", "Bass"}
    for voice, part in (("melody", parts["Melody"]), ("chords", parts["Chords"]), ("bass", parts["Bass"])):
        read = sorted((float(element.offset), float(element.quarterLength), pitch.midi)
                      for element in part.flatten().notes for pitch in element.pitches)
        written = sorted((note.start, note.length, note.pitch) for note in piece.notes if note.voice == voice)
        assert read == written
    programs = {name: [i.midiProgram for i in part.getInstruments()] for name, part in parts.items()}
    assert 46 in programs["Melody"] and 52 in programs["Chords"] and 48 in programs["Bass"]


@pytest.mark.parametrize("tonic, mode, sharps, minor", [
    (0, "major", 0, False), (9, "minor", 0, True), (2, "minor", -1, True), (7, "major", 1, False),
    (5, "major", -1, False), (6, "major", 6, False), (1, "major", -5, False), (10, "minor", -5, True),
    (2, "dorian", 0, False), (7, "mixolydian", 0, False), (4, "phrygian", 0, False), (9, "dorian", 1, False),
    (11, "locrian", 0, False), (5, "lydian", 0, False),
    # six either way: spelled as the tonic is named (Eb minor, Ab dorian flat; C# mixolydian sharp)
    (3, "minor", -6, True), (8, "dorian", -6, False), (1, "mixolydian", 6, False),
])
def test_key_signature(tonic: int, mode: str, sharps: int, minor: bool) -> None:
    assert midi_file.key_signature(tonic, mode) == (sharps, minor)


@pytest.mark.parametrize("tonic, mode", [(4, "minor"), (10, "major"), (2, "mixolydian"), (3, "minor")])
def test_music21_reads_the_key_signature(tonic: int, mode: str, tmp_path: Path) -> None:
    piece = Piece(Metre(3, 4), 120.0, 1, tonic, mode, {"melody": 81}, False, [Note(0.0, 3.0, 60 + tonic)])
    path = tmp_path / "key.mid"
    path.write_bytes(midi_file.write_midi(piece, {}))
    score = music21.converter.parse(str(path), format="midi")
    read = next(iter(score.recurse().getElementsByClass(music21.key.KeySignature)))
    sharps, minor = midi_file.key_signature(tonic, mode)
    assert read.sharps == sharps
    assert getattr(read, "mode", "major") == ("minor" if minor else "major")


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        midi_file.key_signature(0, "bebop")


def test_provenance_round_trips() -> None:
    data = midi_file.write_midi(dorian_piece(), PROVENANCE)
    assert midi_file.read_midi_provenance(data) == PROVENANCE
    assert midi_file.read_midi_provenance(midi_file.write_midi(dorian_piece(), {})) == {}
    with pytest.raises(ValueError, match="MThd"):
        midi_file.read_midi_provenance(b"RIFF....")


def test_variable_length_quantities() -> None:
    assert [midi_file.vlq(v) for v in (0, 0x7F, 0x80, 0x3FFF, 0x4000)] == [
        b"\x00", b"\x7f", b"\x81\x00", b"\xff\x7f", b"\x81\x80\x00"]
    assert midi_file.read_vlq(b"\x81\x80\x00", 0) == (0x4000, 3)
