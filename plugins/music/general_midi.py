"""General MIDI: the 128 melodic programs by name, a few short names, and the drum keys used.

Callers name instruments by GM name ("Violin", "acoustic guitar (nylon)"), by a short name
("harp", "strings") or by number 1-128 as the GM 1 sound set numbers them (the byte on the
wire is one less). Every GM SoundFont lays its presets out the same way, so a name means the
same instrument whichever bank renders it.
"""

from __future__ import annotations

import difflib
import re

__all__ = ["DRUMS", "DRUM_BANK", "DRUM_CHANNEL", "PROGRAM_NAMES", "SHORT_NAMES", "program_name",
           "resolve_program"]

PROGRAM_NAMES = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavi",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
    "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1",
    "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp",
    "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs",
    "Voice Oohs", "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1",
    "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)",
    "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bag pipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum",
    "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)
assert len(PROGRAM_NAMES) == 128

# Short names a musician would type, to 0-based programs. "organ", "pluck" and "lead" are the
# values music.melody's `instrument` took before it rendered through a SoundFont.
SHORT_NAMES = {
    "piano": 0, "harpsichord": 6, "organ": 19, "accordion": 21, "guitar": 24, "bass": 32, "violin": 40,
    "cello": 42, "harp": 46, "pluck": 46, "strings": 48, "choir": 52, "trumpet": 56, "horn": 60, "oboe": 68,
    "clarinet": 71, "flute": 73, "recorder": 74, "whistle": 78, "lead": 81, "pad": 89, "bagpipe": 109,
}

UNKNOWN_BYTES = 220  # room for the "Value error, " pydantic puts before it
DRUM_CHANNEL = 9  # MIDI channel 10: the GM percussion kit, keys are drums rather than pitches
DRUM_BANK = 128  # the bank a SoundFont synthesizer plays the drum channel from
DRUMS = {"low floor tom": 41, "low tom": 45, "side stick": 37, "tambourine": 54}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower())


# What callers call the GM percussion kit (channel 10), which no program number selects.
_DRUM_KIT_KEYS = {_key(name) for name in ("drums", "drum", "drum kit", "drum set", "drumkit", "kit", "GM kit",
                                          "standard kit", "percussion", "bodhrán", "bodhran")}
_BY_KEY = {_key(name): program for program, name in enumerate(PROGRAM_NAMES)}
_BY_KEY.update({_key(name): program for name, program in SHORT_NAMES.items() if _key(name) not in _BY_KEY})


def resolve_program(value: str | int) -> int:
    """A GM name, short name or number 1-128 -> the 0-based program; ValueError saying what is accepted."""
    if isinstance(value, bool):
        raise ValueError("an instrument is a General MIDI name or a program number 1-128, not a boolean")
    digits = isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal()
    if isinstance(value, int) or digits:
        number = int(value)
        if not 1 <= number <= 128:
            raise ValueError(f"General MIDI programs are numbered 1-128 (1 = Acoustic Grand Piano), "
                             f"got {number}")
        return number - 1
    program = _BY_KEY.get(_key(value))
    if program is None:
        raise ValueError(unknown_instrument(value))
    return program


def unknown_instrument(value: str) -> str:
    """What an unknown name is told: the closest names, and where the whole list is, in at most
    ``UNKNOWN_BYTES`` whatever was typed (a field violation keeps 256); the 148 names would not fit."""
    shown = value if len(value) <= 32 else value[:31] + "…"
    if _key(value) in _DRUM_KIT_KEYS:
        # Spelling suggestions ('Steel Drums', 'Percussive Organ') would mislead: the kit is no program.
        return (f"{shown!r}: the GM drum kit is not a program and plays only celtic's percussion layer; a "
                f"part takes a pitched one, e.g. 'Taiko Drum' (117), 'Melodic Tom' (118) or 'Timpani' (48) "
                "(docs/music.md)")
    spelled = {_key(name): name for name in (*SHORT_NAMES, *PROGRAM_NAMES)}  # a GM name wins
    close = [spelled[key] for key in difflib.get_close_matches(_key(value), list(spelled), n=3, cutoff=0.6)]
    while True:
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        message = (f"unknown instrument {shown!r}: {hint}give a General MIDI name or number 1-128, or a "
                   f"short name such as piano or flute (all listed in docs/music.md)")
        if len(message.encode()) <= UNKNOWN_BYTES or not close:
            return message
        close.pop()  # the least close


def program_name(program: int) -> str:
    """The GM name of a 0-based program."""
    return PROGRAM_NAMES[program]
