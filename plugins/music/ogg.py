"""Ogg pages: splitting a stream into pages, its CRC, and renumbering pages under one serial."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

__all__ = ["ogg_crc", "ogg_pages", "vorbis_header_pages", "with_serial"]

BIT_REVERSED = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, unreflected, no init or final xor).

    zlib's CRC-32 is the reflected form of the same polynomial: fed bit-reversed bytes,
    with its init and final xor undone, it gives the bit-reversed Ogg CRC, at C speed.
    """
    reflected = zlib.crc32(page.translate(BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


def ogg_pages(data: bytes) -> list[bytes]:
    """An Ogg stream split into its pages."""
    pages, pos = [], 0
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS" or pos + 27 > len(data):
            raise ValueError(f"not an Ogg page at byte {pos}")
        segments = data[pos + 26]
        size = 27 + segments + sum(data[pos + 27:pos + 27 + segments])
        pages.append(data[pos:pos + size])
        pos += size
    return pages


def vorbis_header_pages(pages: Sequence[bytes]) -> int:
    """How many leading pages hold the three Vorbis header packets (ident, comment, setup).

    A packet ends at a lacing value below 255. libvorbis flushes the headers, so audio
    starts on a fresh page; anything else is refused rather than spliced wrongly.
    """
    packets = 0
    for index, page in enumerate(pages):
        lacing = page[27:27 + page[26]]
        packets += sum(1 for value in lacing if value < 255)
        if packets >= 3:
            if packets > 3 or lacing[-1] == 255:
                raise ValueError("audio shares a page with the Vorbis headers")
            return index + 1
    raise ValueError("fewer than three Vorbis header packets")


def with_serial(data: bytes, serial: int) -> bytes:
    """The Ogg stream with every page's serial number set to ``serial``, its pages numbered
    from 0 in order, and each CRC redone."""
    out = bytearray()
    for number, page in enumerate(ogg_pages(data)):
        rewritten = bytearray(page)
        rewritten[14:22] = struct.pack("<II", serial & 0xFFFFFFFF, number)
        rewritten[22:26] = b"\0\0\0\0"
        rewritten[22:26] = struct.pack("<I", ogg_crc(bytes(rewritten)))
        out += rewritten
    return bytes(out)
