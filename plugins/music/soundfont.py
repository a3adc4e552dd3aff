"""SoundFonts: where they are found, what their licences are, and rendering MIDI through one.

The default bank is TimGM6mb, a 6 MB General MIDI SoundFont that the ``pretty-midi`` wheel
carries, so ``pip install museforge`` brings a complete GM bank with no download. Callers
pick another bank by name (``soundfont`` parameter): a file ``<name>.sf2`` in a SoundFont
folder (``MUSEFORGE_SOUNDFONT_PATH``, then ``$XDG_DATA_HOME/museforge/soundfonts`` and the
Debian folders ``/usr/share/sounds/sf2`` and ``/usr/share/soundfonts``), never a path, so a
request cannot read arbitrary files. Rendering is rustysynth's (through ``midirenderer``):
a sample-based SoundFont synthesizer with reverb and chorus, 48 kHz stereo.
"""

from __future__ import annotations

import difflib
import importlib.util
import io
import os
import re
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .soundfont_subset import Subsets

__all__ = ["RENDER_RATE", "SoundFont", "available_soundfonts", "default_soundfont", "find_soundfont",
           "render_midi", "render_wav", "wav_audio"]

RENDER_RATE = 48000  # midirenderer always renders at this rate
_SUBSETS = Subsets()  # what in-thread renders play through, as the render processes do
_BUILT_IN_NAMES = ("default", "timgm6mb")  # what a request calls the bank that comes with museforge
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+ -]{0,63}$")
_SUFFIXES = (".sf2",)
UNKNOWN_BYTES = 220  # room for the "Value error, " pydantic puts before it
# Banks whose licences we checked (Debian's copyright files); others are reported as unknown.
_KNOWN = {
    "timgm6mb": ("GPL-2.0-only", "TimGM6mb General MIDI SoundFont, copyright 2004 Tim Brechbill, "
                 "2010 David Bolton (as shipped in the pretty-midi wheel and Debian's timgm6mb-soundfont)"),
    "fluidr3_gm": ("MIT", "FluidR3 GM SoundFont, copyright 2000-2002, 2008 Frank Wen "
                   "(Debian fluid-soundfont-gm)"),
    "musescore_general": ("MIT", "MuseScore General SoundFont, copyright S. Christian Collins "
                          "(Debian musescore-general-soundfont)"),
}


@dataclass(frozen=True)
class SoundFont:
    name: str
    path: Path
    licence: str  # SPDX identifier, or "unknown" for a bank we have not checked
    attribution: str

    def data(self) -> bytes:
        return _read(self.path, self.path.stat().st_mtime_ns)

    def provenance(self) -> dict[str, str]:
        return {"soundfont": self.name, "soundfont_licence": self.licence,
                "soundfont_attribution": self.attribution}


@lru_cache(maxsize=2)  # a bank can be hundreds of MB
def _read(path: Path, mtime_ns: int) -> bytes:
    """The bank's bytes, read once per file version (the renderer wants them whole every call)."""
    del mtime_ns  # part of the cache key only: an edited file is read again
    data = path.read_bytes()
    _check_header(path, data[:12])
    return data


def _check_header(path: Path, head: bytes) -> None:
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise ValueError(f"{path.name} is not a SoundFont 2 file (no RIFF 'sfbk' header)")


def _described(name: str, path: Path) -> SoundFont:
    unchecked = f"{path.name}: licence not checked by museforge; see where the file came from"
    licence, attribution = _KNOWN.get(name.lower(), ("unknown", unchecked))
    return SoundFont(name, path, licence, attribution)


def default_soundfont() -> SoundFont:
    """TimGM6mb from the installed pretty-midi package (located without importing it)."""
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the default SoundFont comes with the pretty-midi package, which is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "TimGM6mb.sf2"
    if not path.is_file():
        raise RuntimeError(f"the default SoundFont is missing from the pretty-midi package ({path})")
    return _described("TimGM6mb", path)


def search_path() -> list[Path]:
    folders = [Path(p) for p in os.environ.get("MUSEFORGE_SOUNDFONT_PATH", "").split(os.pathsep) if p]
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return [*folders, data_home / "museforge" / "soundfonts", Path("/usr/share/sounds/sf2"),
            Path("/usr/share/soundfonts")]


def available_soundfonts() -> dict[str, Path]:
    """Every bank a request may name: the default plus ``*.sf2`` in the SoundFont folders (first wins)."""
    found = {"default": default_soundfont().path}
    for folder in search_path():
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                # Only names a request can reach: not hidden files, not the built-in bank's names.
                if (path.suffix.lower() in _SUFFIXES and _NAME.match(path.stem) and path.is_file()
                        and path.stem.lower() not in _BUILT_IN_NAMES):
                    found.setdefault(path.stem, path)
    return found


def find_soundfont(name: str) -> SoundFont:
    """The bank called ``name`` ("default" for TimGM6mb); ValueError listing what is there."""
    if name.lower() in _BUILT_IN_NAMES:
        return default_soundfont()
    if not _NAME.match(name):
        why = ("is empty" if not name.strip() else "is a path" if "/" in name or "\\" in name
               else "is over 64 characters" if len(name) > 64
               else "must start with a letter or digit" if not name[0].isalnum() else "has other characters")
        raise ValueError(f"a SoundFont is named by its file name without .sf2 (letters, digits, '_.+- ', "
                         f"at most 64, e.g. 'default'); {name!r} {why}")
    banks = available_soundfonts()
    # The exact name first: with Bank.sf2 and bank.sf2 both there, each is reached by its own name.
    stem = name if name in banks else next((s for s in banks if s.lower() == name.lower()), None)
    if stem is not None:
        font = _described(stem, banks[stem])
        _plays(font, banks[stem].stat().st_mtime_ns)  # a broken bank fails the request's validation
        return font
    raise ValueError(unknown_bank(name, list(banks)))


def unknown_bank(name: str, banks: list[str]) -> str:
    """What an unknown bank name is told, in at most ``UNKNOWN_BYTES`` (a field violation keeps 256, so
    a long list of banks would cut off the end): the name without a typed .sf2, else the closest banks
    first, then the others, as many as fit."""
    stem = name[:-4] if name.lower().endswith(".sf2") else None
    known = {bank.lower(): bank for bank in banks} | {built_in: "default" for built_in in _BUILT_IN_NAMES}
    if stem is not None and stem.lower() in known:
        bank = known[stem.lower()]
        return f"no SoundFont {name!r}: a bank is named by its file name without .sf2: {bank!r}"
    close = difflib.get_close_matches(name, banks, n=3, cutoff=0.6)
    first = [*close, *(["default"] if "default" in banks and "default" not in close else [])]
    ordered = [*first, *sorted(bank for bank in banks if bank not in first)]
    where = "(add .sf2 files to a folder in MUSEFORGE_SOUNDFONT_PATH or /usr/share/sounds/sf2)"
    message = f"no SoundFont {name!r}: there are {len(ordered)} banks {where}"
    for shown in range(len(ordered), 0, -1):
        more = f" and {len(ordered) - shown} more" if shown < len(ordered) else ""
        listed = f"no SoundFont {name!r}: available are {', '.join(ordered[:shown])}{more} {where}"
        if len(listed.encode()) <= UNKNOWN_BYTES:
            return listed
    return message


def render_wav(path: str, mtime_ns: int, midi: bytes, whole: bool = False) -> bytes:
    """A Standard MIDI File through the bank at ``path`` as WAV bytes (48 kHz stereo s16): through
    the subset of it that the file plays (the same bytes, parsed faster), or with ``whole`` the
    whole bank, every preset parsed.

    Takes the bank by path, not bytes, so a worker process reads it once (module cache) rather
    than receiving it with every block."""
    from midirenderer import render_wave_from

    try:
        from .midi_file import presets_played

        bank = _read(Path(path), mtime_ns)
        presets = None if whole else presets_played(midi)
        return render_wave_from(_SUBSETS.bank_for((path, mtime_ns), bank, presets), midi)
    except BaseException as exc:
        # A malformed bank makes the Rust renderer panic, which PyO3 raises as PanicException, a
        # BaseException: turned into the ValueError a bad parameter gives, not a crashed request.
        if not isinstance(exc, (ValueError, RuntimeError)) and type(exc).__name__ != "PanicException":
            raise
        raise ValueError(f"SoundFont {Path(path).stem} could not be played: {exc}") from None


def wav_audio(wav: bytes) -> np.ndarray:
    """What :func:`render_wav` returned as [frames, 2] float32 at RENDER_RATE."""
    with wave.open(io.BytesIO(wav)) as reader:
        if (reader.getsampwidth(), reader.getnchannels(), reader.getframerate()) != (2, 2, RENDER_RATE):
            raise RuntimeError("midirenderer returned audio in an unexpected format")
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    return (pcm.reshape(-1, 2) * np.float32(1.0 / 32768.0)).astype(np.float32)


def render_midi(font: SoundFont, midi: bytes, whole: bool = False) -> np.ndarray:
    """A Standard MIDI File through the bank: [frames, 2] float32 at RENDER_RATE, as long as the file."""
    return wav_audio(render_wav(str(font.path), font.path.stat().st_mtime_ns, midi, whole))


@lru_cache(maxsize=16)
def _plays(font: SoundFont, mtime_ns: int) -> None:
    """Render one short note through the bank, once per file version: ValueError if it cannot."""
    from .midi_file import block_midi
    from .score import Note

    del mtime_ns  # part of the cache key only
    from .render_pool import RenderPool, shared_pool

    # Through the whole bank: a broken preset anywhere in it makes the renderer's parse panic. In a
    # render process: a bank that crashes the renderer outright ends that process (twice, then a
    # ValueError), not the server. With no render processes (MUSEFORGE_RENDER_PROCESSES=0) one is
    # started for the check alone, once per bank version, so such a bank is refused there too.
    with font.path.open("rb") as file:
        _check_header(font.path, file.read(12))
    midi = block_midi([Note(0.0, 0.25, 60)], {"melody": 0}, 120.0, 0.0, 0.5)
    shared = shared_pool()
    checker = shared if shared.workers else RenderPool(1)
    try:
        wav_audio(checker.submit(font, midi, whole=True).result())
    finally:
        if checker is not shared:
            checker.shutdown()
