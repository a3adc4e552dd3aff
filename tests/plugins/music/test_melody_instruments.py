"""Instrument and bank values a game's tools send as typed, over a real server: `auto` in any case,
drum-kit names, which no GM program selects, and a bank named with its .sf2 or among many banks."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from museforge.client import Client, field_violations


@pytest.mark.parametrize("value", ["AUTO", " Auto ", "auto"])
def test_auto_is_taken_in_any_case_and_spacing(client: Client, value: str) -> None:
    params = {"style": "celtic", "bars": 2}
    expected = client.generate("music.melody", params, seed=3, fmt="mid").artifacts[0]
    for part in ("instrument", "chords_instrument", "bass_instrument"):
        artifact = client.generate("music.melody", {**params, part: value}, seed=3, fmt="mid").artifacts[0]
        assert artifact.metadata["x.instruments"] == expected.metadata["x.instruments"]
        assert artifact.metadata["x.notes"] == expected.metadata["x.notes"]


@pytest.mark.parametrize("value", ["drums", "Drum Kit", "GM kit", "percussion", "bodhrán"])
def test_a_drum_kit_name_is_told_the_kit_is_no_program(client: Client, value: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.generate("music.melody", {"style": "celtic", "bass_instrument": value}, seed=1, fmt="mid")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    description = dict(field_violations(caught.value))["parameters.bass_instrument"]
    # Not a spelling suggestion such as 'Steel Drums' or 'Percussive Organ': what a part can take.
    assert "drum kit is not a program" in description and "'Taiko Drum' (117)" in description, description
    assert "did you mean" not in description and f"'{value}'" in description


def _bank_error(client: Client, name: str) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        client.generate("music.melody", {"soundfont": name, "bars": 1}, seed=1, fmt="mid")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return dict(field_violations(caught.value))["parameters.soundfont"]


def test_a_bank_named_with_its_file_suffix_is_told_its_name(client: Client, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSEFORGE_SOUNDFONT_PATH", str(tmp_path))
    (tmp_path / "Studio.sf2").write_bytes(b"")  # listed by name; never opened here
    assert _bank_error(client, "Studio.sf2").endswith("without .sf2: 'Studio'")
    assert _bank_error(client, "default.sf2").endswith("without .sf2: 'default'")


def test_many_banks_leave_the_message_whole(client: Client, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSEFORGE_SOUNDFONT_PATH", str(tmp_path))
    for number in range(30):
        (tmp_path / f"Orchestral_Bank_{number:02d}.sf2").write_bytes(b"")
    # A field violation keeps 256 bytes: the list is cut to fit, closest names and default first.
    description = _bank_error(client, "Orchestral_Bank_7")
    assert description.endswith("/usr/share/sounds/sf2)") and not description.endswith("…"), description
    assert "Orchestral_Bank_07" in description and "default" in description
    assert " more (add .sf2 files" in description
