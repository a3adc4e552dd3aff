"""SoundFonts: the default bank and its licence, banks found by name only, General MIDI names."""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from museforge.plugins.music import render_pool, soundfont, soundfont_subset
from museforge.plugins.music.general_midi import PROGRAM_NAMES, program_name, resolve_program
from museforge.plugins.music.midi_file import block_midi
from museforge.plugins.music.score import Note


def test_the_default_bank_comes_with_the_install_and_names_its_licence() -> None:
    bank = soundfont.default_soundfont()
    assert bank.name == "TimGM6mb" and bank.path.parent.name == "pretty_midi"
    assert bank.data()[8:12] == b"sfbk" and len(bank.data()) > 5_000_000
    record = bank.provenance()
    assert record["soundfont_licence"] == "GPL-2.0-only"
    assert "Tim Brechbill" in record["soundfont_attribution"]
    assert soundfont.find_soundfont("default") == bank == soundfont.find_soundfont("timgm6mb")


@pytest.fixture()
def bank_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MUSEFORGE_SOUNDFONT_PATH", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "nothing-here"))
    return tmp_path


def test_two_banks_whose_names_differ_in_case_are_each_reached_by_their_own(bank_folder: Path) -> None:
    for name in ("Bank", "bank"):
        shutil.copyfile(soundfont.default_soundfont().path, bank_folder / f"{name}.sf2")
    assert soundfont.find_soundfont("Bank").path.name == "Bank.sf2"
    assert soundfont.find_soundfont("bank").path.name == "bank.sf2"
    assert soundfont.find_soundfont("BANK").path.name in ("Bank.sf2", "bank.sf2")  # either: not exact


def test_a_bank_in_a_soundfont_folder_is_found_by_name(bank_folder: Path) -> None:
    shutil.copyfile(soundfont.default_soundfont().path, bank_folder / "Studio_Bank.sf2")
    found = soundfont.find_soundfont("studio_bank")
    assert found.path == bank_folder / "Studio_Bank.sf2" and found.licence == "unknown"
    listed = soundfont.available_soundfonts()
    assert "studio_bank" not in listed and "Studio_Bank" in listed
    midi = block_midi([Note(0.0, 1.0, 69)], {"melody": 40}, 120.0, 0.0, 2.0)
    audio = soundfont.render_midi(found, midi)
    assert audio.shape == (soundfont.RENDER_RATE, 2) and np.abs(audio).max() > 0.01


@pytest.mark.parametrize(("name", "why"), [
    ("../etc/passwd", "is a path"), ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "is a path"),
    ("a/b", "is a path"),
    ("", "is empty"), (" ", "is empty"), ("ñandú", "has other characters"),
    ("_bank", "must start with a letter or digit"), ("b" * 65, "is over 64 characters")])
def test_a_path_is_never_a_bank_name(bank_folder: Path, name: str, why: str) -> None:
    with pytest.raises(ValueError, match="file name without .sf2 .*; " + re.escape(f"{name!r} {why}") + "$"):
        soundfont.find_soundfont(name)


def test_an_unknown_bank_lists_the_ones_there_are(bank_folder: Path) -> None:
    with pytest.raises(ValueError, match=r"no SoundFont 'Nope': available are (.*, )?default"):
        soundfont.find_soundfont("Nope")


def test_a_file_that_is_not_a_soundfont_is_refused_clearly(bank_folder: Path) -> None:
    (bank_folder / "Broken.sf2").write_bytes(b"RIFF\x04\x00\x00\x00WAVE")
    with pytest.raises(ValueError, match="not a SoundFont 2 file"):
        soundfont.find_soundfont("Broken").data()


def test_a_bank_that_makes_the_renderer_panic_is_refused_by_name(bank_folder: Path) -> None:
    """Twenty random bytes in the preset data: the Rust renderer panics (a BaseException in Python);
    the bank is refused with a ValueError when it is chosen, before any request runs with it."""
    data = bytearray(soundfont.default_soundfont().data())
    rng, start = random.Random(1), data.find(b"pdta")
    for _ in range(20):
        data[rng.randrange(start, len(data))] = rng.randrange(256)
    (bank_folder / "Mangled.sf2").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="SoundFont Mangled could not be played"):
        soundfont.find_soundfont("Mangled")


@pytest.mark.parametrize("value, program", [
    ("Violin", 40), ("violin", 40), ("Acoustic Guitar (nylon)", 24), ("acoustic guitar nylon", 24),
    ("harp", 46), ("strings", 48), ("organ", 19), ("pluck", 46), ("lead", 81), (41, 40), ("41", 40), (1, 0),
    (128, 127), ("Fiddle", 110), ("Lead 2 (sawtooth)", 81),
])
def test_instruments_by_name_short_name_or_number(value: str | int, program: int) -> None:
    assert resolve_program(value) == program


@pytest.mark.parametrize("value, message", [
    (0, "1-128"), (129, "1-128"), ("kazoo", "unknown instrument 'kazoo'"), (True, "boolean")])
def test_unknown_instruments_say_what_is_accepted(value: str | int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_program(value)


def test_the_general_midi_names_are_the_sound_set() -> None:
    assert len(set(PROGRAM_NAMES)) == 128
    assert (program_name(0), program_name(40), program_name(73), program_name(127)) == (
        "Acoustic Grand Piano", "Violin", "Flute", "Gunshot")


@pytest.mark.parametrize("processes", [1, 0])
def test_a_bank_that_crashes_the_renderer_is_refused_and_the_server_stays(bank_folder: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          processes: int) -> None:
    """A bank of no preset makes the renderer segfault: checked in a render process, the bank is
    refused by name; checked in this process, as it once was, it would end the test run. With no
    render processes (``MUSEFORGE_RENDER_PROCESSES=0``) the check still runs in one of its own."""
    parsed = soundfont_subset._parse(soundfont.default_soundfont().data())
    assert parsed is not None
    (bank_folder / "Hollow.sf2").write_bytes(soundfont_subset._build(parsed, []))
    shutil.copyfile(soundfont.default_soundfont().path, bank_folder / "Sound.sf2")
    pool = render_pool.RenderPool(processes)
    monkeypatch.setattr(render_pool, "_shared", pool)
    before = _children()
    try:
        with pytest.raises(ValueError, match="SoundFont Hollow could not be played"):
            soundfont.find_soundfont("Hollow")
        assert soundfont.find_soundfont("default").name == "TimGM6mb"
        assert soundfont.find_soundfont("Sound").path == bank_folder / "Sound.sf2"  # a sound bank passes
        if not processes:
            assert _children() == before  # the check's own processes are gone again
    finally:
        pool.shutdown()


def _children() -> set[int]:
    """Live child processes of this one."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found
