"""A block renders through a subset of the bank, bit for bit as through the whole bank."""

from __future__ import annotations

import random
import struct

import pytest
from midirenderer import render_wave_from

from museforge.plugins.music.arrangement import STYLE_PARTS
from museforge.plugins.music.general_midi import resolve_program
from museforge.plugins.music.midi_file import block_midi, midi_file, presets_played, track
from museforge.plugins.music.score import Note
from museforge.plugins.music.soundfont import default_soundfont
from museforge.plugins.music.soundfont_subset import (
    INSTRUMENT,
    SAMPLE_ID,
    SHDR,
    Subsets,
    _parse,
    _zones,
    subset,
)


@pytest.fixture(scope="module")
def bank() -> bytes:
    return default_soundfont().path.read_bytes()


def band_block(programs: dict[str, int], seed: int = 0) -> bytes:
    rng = random.Random(seed)
    notes = [Note(i * 0.25, rng.choice([0.1, 0.5, 1.0, 2.5]), rng.randint(36, 50) if voice == "percussion"
                  else rng.randint(30, 96), rng.randint(20, 127), voice)
             for i in range(32) for voice in programs if rng.random() < 0.7]
    return block_midi(sorted(notes, key=lambda note: note.start), programs, 120.0, 0.0, 12.0)


def styles() -> list[tuple[str, dict[str, int]]]:
    found = []
    for style, parts in STYLE_PARTS.items():
        programs = {voice: resolve_program(name) for voice, name in parts.items()}
        if style == "celtic":
            programs["percussion"] = 0
        found.append((style, programs))
        found += [(f"{style} {voice} stem", {voice: program}) for voice, program in programs.items()]
    return found


@pytest.mark.parametrize(("name", "programs"), styles(), ids=[name for name, _ in styles()])
def test_each_band_and_stem_sounds_the_same_through_its_subset(bank: bytes, name: str,
                                                                programs: dict[str, int]) -> None:
    midi = band_block(programs)
    played = presets_played(midi)
    assert played is not None
    cut = subset(bank, played)
    assert cut is not None and len(cut) < 0.5 * len(bank)
    assert render_wave_from(cut, midi) == render_wave_from(bank, midi)


def test_any_instruments_sound_the_same_through_their_subset(bank: bytes) -> None:
    rng = random.Random(7)
    for seed in range(8):
        melodic = rng.sample(range(128), 3)
        programs = dict(zip(("melody", "chords", "bass"), melodic, strict=True)) | {"percussion": 0}
        midi = band_block(programs, seed)
        cut = subset(bank, presets_played(midi) or frozenset())
        assert cut is not None
        assert render_wave_from(cut, midi) == render_wave_from(bank, midi), programs


def channel_file(*events: bytes) -> bytes:
    return midi_file([track([(tick, 1, event) for tick, event in enumerate(events)], len(events))])


def test_the_presets_a_file_plays_are_read_from_its_channels() -> None:
    assert presets_played(channel_file(b"\xC2\x28", b"\x92\x40\x50")) == {(0, 40)}
    assert presets_played(channel_file(b"\x93\x40\x50")) == {(0, 0)}  # no program change: program 0
    assert presets_played(channel_file(b"\xC9\x05", b"\x99\x24\x50")) == {(128, 5)}  # the drum kit
    assert presets_played(channel_file(b"\xC2\x28", b"\x92\x40\x00")) == frozenset()  # a note-on at 0 is off
    # A note before a program change may sound through the program before it.
    assert presets_played(channel_file(b"\x92\x40\x50", b"\xC2\x28", b"\x92\x41\x50")) == {(0, 0), (0, 40)}
    assert presets_played(channel_file(b"\xB2\x00\x01", b"\x92\x40\x50")) is None  # a bank select
    assert presets_played(b"not midi") is None


def test_a_preset_the_bank_lacks_or_a_compressed_bank_is_not_cut(bank: bytes) -> None:
    assert subset(bank, frozenset({(5, 3)})) is None  # the synthesizer's fallback decides, not a subset
    small = subset(bank, frozenset({(0, 24)}))
    assert small is not None
    start = small.index(b"shdr") + 8
    kind = start + SHDR.size - 2
    flagged = struct.pack("<H", struct.unpack_from("<H", small, kind)[0] | 0x10)
    compressed = small[:kind] + flagged + small[kind + 2:]
    assert subset(compressed, frozenset({(0, 24)})) is None  # SF3: samples are Ogg Vorbis, not points
    assert subset(b"RIFF\x04\x00\x00\x00sfbk", frozenset({(0, 0)})) is None


def test_subsets_are_kept_within_their_budget_and_a_bad_bank_is_passed_through(bank: bytes) -> None:
    subsets = Subsets(budget=1 << 20)  # less than the bank: the bank's own size is the budget then
    blocks = [band_block({"melody": program, "percussion": 0}) for program in (0, 24, 40, 73, 19, 52)]
    played = presets_played(blocks[0])
    first = subsets.bank_for("timgm6mb", bank, played)
    assert len(first) < len(bank) and subsets.bank_for("timgm6mb", bank, played) is first  # kept
    for midi in blocks[1:]:
        subsets.bank_for("timgm6mb", bank, presets_played(midi))
    kept = list(subsets._made.values())
    assert 1 < len(kept) < len(blocks)  # the kit makes each about 2 MB: the oldest went
    assert sum(len(made or b"") for made in kept) <= len(bank)
    assert presets_played(blocks[-1]) in subsets._made  # the newest stays
    broken = b"RIFF" + bytes(8) + bytes(100)
    assert subsets.bank_for("broken", broken, played) is broken  # the renderer says what is wrong


def test_a_block_with_no_sounding_note_plays_through_the_whole_bank(bank: bytes) -> None:
    silent = channel_file(b"\xC2\x28", b"\x92\x40\x00")  # a program, and a note-on at velocity 0
    assert presets_played(silent) == frozenset() and subset(bank, frozenset()) is None
    # A bank of no preset crashes the renderer: the whole bank plays instead.
    assert Subsets().bank_for("timgm6mb", bank, presets_played(silent)) is bank
    assert len(render_wave_from(bank, silent)) > 44
    assert presets_played(b"MThd\x00\x00") is None  # cut short


def with_start_offsets(bank: bytes, fine: int, coarse: int) -> tuple[bytes, int]:
    """The bank with one zone of a melodic preset moving its sample's start by ``fine`` points and
    ``coarse`` x 32768 (written over two of the zone's other generators); that preset's program."""
    parsed = _parse(bank)
    assert parsed is not None
    hydra, data = parsed.hydra, bytearray(bank)
    igen_at = bank.index(b"igen") + 8
    for index, record in enumerate(hydra["phdr"][:-1]):
        program, bank_number = struct.unpack_from("<HH", record, 20)
        instruments = [struct.unpack("<HH", g)[1] for gens, _ in _zones(hydra, "phdr", index)
                       for g in gens if struct.unpack("<HH", g)[0] == INSTRUMENT]
        if bank_number or not instruments:
            continue
        for gens, _ in _zones(hydra, "inst", instruments[0]):
            ops = [struct.unpack("<Hh", g) for g in gens]
            free = [k for k, (oper, _) in enumerate(ops[:-1]) if oper not in (43, 44)]
            if ops and ops[-1][0] == SAMPLE_ID and len(free) >= 2 and SHDR.unpack(
                    hydra["shdr"][ops[-1][1]])[1] > 40000:
                at = next(i for i in range(len(hydra["igen"])) if hydra["igen"][i:i + len(gens)] == gens)
                for k, (oper, amount) in zip(free, ((0, fine), (4, coarse)), strict=False):
                    struct.pack_into("<Hh", data, igen_at + 4 * (at + k), oper, amount)
                return bytes(data), program
    raise AssertionError("no zone to move")


@pytest.mark.parametrize(("fine", "coarse"), [(-200, -1), (-200, 0), (0, -1), (150, 1)])
def test_a_sample_start_moved_by_fine_and_coarse_offsets_together_is_copied(bank: bytes, fine: int,
                                                                              coarse: int) -> None:
    moved, program = with_start_offsets(bank, fine, coarse)
    midi = block_midi([Note(0.0, 1.0, pitch, 100) for pitch in (36, 60, 84)], {"melody": program},
                      120.0, 0.0, 4.0)
    cut = subset(moved, presets_played(midi) or frozenset())
    assert cut is not None
    assert render_wave_from(cut, midi) == render_wave_from(moved, midi)
