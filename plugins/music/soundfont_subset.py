"""A SoundFont cut down to the presets a MIDI file plays: the same sound, a fraction of the parse.

midirenderer parses the whole bank on every call (2.7 ms for TimGM6mb's 6 MB, about 0.1 s
for FluidR3_GM's 142 MB), and a piece renders in many small blocks that all play the same
few presets. So each block renders through a subset: those presets (``midi_file.presets_played``
reads them off the block), the instruments and samples they use, and nothing else. Sample
points are copied exactly, with everything a zone can reach around them, and every index and
offset is renumbered, so a block sounds bit for bit as it does through the whole bank (tested).

Standard library only: the render worker imports this module by path.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Subsets", "subset"]

PAD_POINTS = 46  # zero points the SF2 spec puts after every sample; interpolation may read them
INSTRUMENT, SAMPLE_ID = 41, 53  # generator operators that refer to an instrument, a sample
# Address-offset generators (fine in points, coarse in 32,768 points): how far a zone may move
# its sample's start, end and loop, so what the subset must copy around each sample.
FINE_OFFSETS, COARSE_OFFSETS = (0, 1, 2, 3), (4, 12, 45, 50)
RECORD = {"phdr": 38, "pbag": 4, "pmod": 10, "pgen": 4, "inst": 22, "ibag": 4, "imod": 10, "igen": 4,
          "shdr": 46}
SHDR = struct.Struct("<20sIIIIIBbHH")
STEREO = 0x2 | 0x4 | 0x8  # right, left, linked: the sample link names its partner
COMPRESSED = 0x10  # SF3: the sample is Ogg Vorbis, not points


@dataclass
class _Bank:
    """The parts of an SF2 file a subset is made of."""

    info: bytes  # the LIST 'INFO' chunk, whole
    smpl: memoryview
    sm24: memoryview | None
    hydra: dict[str, list[bytes]]  # each pdta sub-chunk as records, terminal record included


def _chunks(data: memoryview, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    pos = start
    while pos + 8 <= end:
        name, size = bytes(data[pos:pos + 4]), struct.unpack("<I", data[pos + 4:pos + 8])[0]
        yield name, pos + 8, size
        pos += 8 + size + (size & 1)


def _parse(bank: bytes) -> _Bank | None:
    data = memoryview(bank)
    if bank[:4] != b"RIFF" or bank[8:12] != b"sfbk":
        return None
    lists: dict[bytes, tuple[int, int]] = {}
    for name, start, size in _chunks(data, 12, len(bank)):
        if name == b"LIST":
            lists[bytes(data[start:start + 4])] = (start, size)
    if {b"INFO", b"sdta", b"pdta"} - set(lists):
        return None
    samples: dict[bytes, memoryview] = {}
    start, size = lists[b"sdta"]
    for name, at, length in _chunks(data, start + 4, start + size):
        samples[name] = data[at:at + length]
    hydra: dict[str, list[bytes]] = {}
    start, size = lists[b"pdta"]
    for name, at, length in _chunks(data, start + 4, start + size):
        width = RECORD.get(name.decode("latin-1"))
        if width is None or length % width:
            return None
        hydra[name.decode("latin-1")] = [bytes(data[i:i + width]) for i in range(at, at + length, width)]
    if set(hydra) != set(RECORD) or b"smpl" not in samples:
        return None
    info_start, info_size = lists[b"INFO"]
    return _Bank(bytes(data[info_start - 8:info_start + info_size]), samples[b"smpl"],
                 samples.get(b"sm24"), hydra)


def _zones(hydra: dict[str, list[bytes]], head: str, index: int) -> list[tuple[list[bytes], list[bytes]]]:
    """(generators, modulators) of each zone of preset (``phdr``) or instrument (``inst``) ``index``."""
    bags, gens, mods = ("pbag", "pgen", "pmod") if head == "phdr" else ("ibag", "igen", "imod")
    at = 24 if head == "phdr" else 20  # where the bag index sits in the header record
    first, last = (struct.unpack_from("<H", hydra[head][i], at)[0] for i in (index, index + 1))
    bag = [struct.unpack("<HH", record) for record in hydra[bags][first:last + 1]]
    return [(hydra[gens][bag[b][0]:bag[b + 1][0]], hydra[mods][bag[b][1]:bag[b + 1][1]])
            for b in range(last - first)]


def _reach(hydra: dict[str, list[bytes]]) -> tuple[int, int]:
    """How far before a sample's start and past its end any zone's address offsets may reach: a
    point is moved by a fine and a coarse offset together, each set in an instrument's zone (or its
    global zone) and perhaps again in a preset's, so the most of each, added up (never less)."""
    most = {(gens, coarse, sign): 0 for gens in ("pgen", "igen") for coarse in (False, True)
            for sign in (-1, 1)}
    for gens in ("pgen", "igen"):
        for record in hydra[gens]:
            oper, amount = struct.unpack("<Hh", record)
            if oper in FINE_OFFSETS or oper in COARSE_OFFSETS:
                for sign in (-1, 1):
                    key = (gens, oper in COARSE_OFFSETS, sign)
                    most[key] = max(most[key], sign * amount)
    before, after = (sum(most[gens, coarse, sign] * (32768 if coarse else 1)
                         for gens in ("pgen", "igen") for coarse in (False, True)) for sign in (-1, 1))
    return before, after


def subset(bank: bytes, presets: frozenset[tuple[int, int]]) -> bytes | None:
    """The bank with only ``presets`` (bank, program) and what they use; None when one of them is
    not in the bank or the file is not one this can cut (an SF3's compressed samples, an
    unexpected layout): render through the whole bank then."""
    if not presets:
        return None  # no note sounds: a bank of no preset would crash the renderer; the whole one plays
    parsed = _parse(bank)
    if parsed is None or any(SHDR.unpack(r)[9] & COMPRESSED for r in parsed.hydra["shdr"][:-1]):
        return None
    keys = [(bank_number, program) for program, bank_number in
            (struct.unpack_from("<HH", record, 20) for record in parsed.hydra["phdr"][:-1])]
    if not presets <= set(keys):
        return None  # the synthesizer would fall back to another preset: leave that to it
    return _build(parsed, [i for i, key in enumerate(keys) if key in presets])


class _Builder:
    """The subset's records, gathered preset by preset, with every index renumbered."""

    def __init__(self, parsed: _Bank) -> None:
        self.hydra = parsed.hydra
        self.out: dict[str, list[bytes]] = {name: [] for name in RECORD}
        self.instruments: dict[int, int] = {}  # old index -> new
        self.samples: dict[int, int] = {}

    def preset(self, old: int) -> None:
        record = self.hydra["phdr"][old]
        bag = self._zones("phdr", old, INSTRUMENT, self.instrument)
        self.out["phdr"].append(record[:24] + struct.pack("<H", bag) + record[26:])

    def instrument(self, old: int) -> int:
        if old not in self.instruments:
            new = self.instruments[old] = len(self.out["inst"])
            self.out["inst"].append(b"")  # its place, filled once its zones are in
            bag = self._zones("inst", old, SAMPLE_ID, self.sample)
            self.out["inst"][new] = self.hydra["inst"][old][:20] + struct.pack("<H", bag)
        return self.instruments[old]

    def sample(self, old: int) -> int:
        if old not in self.samples:
            self.samples[old] = len(self.samples)
            link, kind = SHDR.unpack(self.hydra["shdr"][old])[8:]
            if kind & STEREO and link < len(self.hydra["shdr"]) - 1:
                self.sample(link)  # a stereo pair stays a pair
        return self.samples[old]

    def _zones(self, head: str, old: int, refer: int, renumber: Callable[[int], int]) -> int:
        bags, gens, mods = ("pbag", "pgen", "pmod") if head == "phdr" else ("ibag", "igen", "imod")
        first = len(self.out[bags])
        for zone_gens, zone_mods in _zones(self.hydra, head, old):
            self.out[bags].append(struct.pack("<HH", len(self.out[gens]), len(self.out[mods])))
            self.out[mods].extend(zone_mods)
            for record in zone_gens:
                oper, amount = struct.unpack("<HH", record)
                self.out[gens].append(struct.pack("<HH", oper, renumber(amount)) if oper == refer else record)
        return first


def _build(parsed: _Bank, chosen: list[int]) -> bytes:
    builder = _Builder(parsed)
    for old in chosen:
        builder.preset(old)
    before, after = _reach(parsed.hydra)
    points, extra, shdr = bytearray(), bytearray(), []
    total = len(parsed.smpl) // 2
    for old in sorted(builder.samples, key=builder.samples.__getitem__):
        name, start, end, loop_start, loop_end, rate, pitch, correction, link, kind = \
            SHDR.unpack(parsed.hydra["shdr"][old])
        # Every point a zone of this sample can reach, as it lies in the bank, then the padding.
        low = max(0, min(start, loop_start, end) - before)
        high = min(total, max(end, loop_end, start) + PAD_POINTS + after)
        base = len(points) // 2 - low
        points += parsed.smpl[low * 2:high * 2]
        points += bytes(2 * PAD_POINTS)
        if parsed.sm24 is not None:
            extra += parsed.sm24[low:high]
            extra += bytes(PAD_POINTS)
        shdr.append(SHDR.pack(name, start + base, end + base, loop_start + base, loop_end + base, rate,
                              pitch, correction, builder.samples.get(link, 0) if kind & STEREO else link,
                              kind))
    return _write(parsed, builder.out, shdr, bytes(points), bytes(extra) if parsed.sm24 is not None else None)


def _write(parsed: _Bank, out: dict[str, list[bytes]], shdr: list[bytes], points: bytes,
           extra: bytes | None) -> bytes:
    hydra = parsed.hydra
    # Terminal records: each list ends with one pointing past its last entry.
    out["phdr"].append(hydra["phdr"][-1][:24] + struct.pack("<H", len(out["pbag"])) + hydra["phdr"][-1][26:])
    out["pbag"].append(struct.pack("<HH", len(out["pgen"]), len(out["pmod"])))
    out["inst"].append(hydra["inst"][-1][:20] + struct.pack("<H", len(out["ibag"])))
    out["ibag"].append(struct.pack("<HH", len(out["igen"]), len(out["imod"])))
    for name in ("pmod", "pgen", "imod", "igen"):
        out[name].append(bytes(RECORD[name]))
    out["shdr"] = [*shdr, hydra["shdr"][-1]]
    sdta = _chunk(b"smpl", points) + (_chunk(b"sm24", extra) if extra is not None else b"")
    pdta = b"".join(_chunk(name.encode("latin-1"), b"".join(out[name])) for name in RECORD)
    body = b"sfbk" + parsed.info + _chunk(b"LIST", b"sdta" + sdta) + _chunk(b"LIST", b"pdta" + pdta)
    return _chunk(b"RIFF", body)


def _chunk(name: bytes, data: bytes) -> bytes:
    return name + struct.pack("<I", len(data)) + data + (b"\0" if len(data) & 1 else b"")


class Subsets:
    """Subsets of one bank at a time, by the presets played, the newest kept within ``budget``
    bytes or the bank's own size, whichever is more (stems rotate through one subset per layer,
    and a big bank's several must all stay): a piece's blocks, and the next piece of the style,
    reuse one. Safe across threads."""

    def __init__(self, budget: int = 64 << 20) -> None:
        self.budget = budget
        self._key: object = None
        self._made: OrderedDict[frozenset[tuple[int, int]], bytes | None] = OrderedDict()
        self._lock = threading.Lock()

    def bank_for(self, key: object, bank: bytes, presets: frozenset[tuple[int, int]] | None) -> bytes:
        """What to render through: the subset of ``bank`` (known by ``key``) holding ``presets``, the
        (bank, program) pairs a block plays (``midi_file.presets_played``), else the whole bank."""
        if presets is None:
            return bank
        with self._lock:
            if key != self._key:
                self._key, self._made = key, OrderedDict()
            if presets in self._made:
                self._made.move_to_end(presets)
            else:
                try:
                    self._made[presets] = subset(bank, presets)
                except Exception:  # a bank this cannot read: the whole bank, and the renderer says why
                    self._made[presets] = None
                budget = max(self.budget, len(bank))
                while len(self._made) > 1 and sum(len(b or b"") for b in self._made.values()) > budget:
                    self._made.popitem(last=False)
            return self._made[presets] or bank
