"""Loop points in encoded audio, where game engines look for them.

- WAV: a ``smpl`` (sampler) chunk with one forward loop; its end frame is inclusive.
- Ogg Vorbis and FLAC: the Vorbis comments ``LOOPSTART`` and ``LOOPLENGTH`` (in sample
  frames), the convention RPG Maker, Godot's importer and many other engines read.
Only metadata changes: the audio bytes (and so the decoded samples) stay as they were.
"""

from __future__ import annotations

import struct

from .ogg import ogg_pages, vorbis_header_pages, with_serial

CONTAINERS = ("wav", "flac", "ogg")
# LOOPEND is dropped along with the pair we write: a stale one would contradict it.
LOOP_TAGS = (b"LOOPSTART", b"LOOPLENGTH", b"LOOPEND")
U32_MAX = 0xFFFF_FFFF


def add_loop_points(data: bytes, container: str, start: int, length: int) -> bytes:
    """``data`` with a loop of ``length`` frames from frame ``start``, written where its container
    ("wav", "flac" or "ogg") keeps loops; loop points already there are replaced."""
    _check_container(container)
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"start must be an integer >= 0, got {start!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
        raise ValueError(f"length must be an integer > 0, got {length!r}")
    if container == "wav":
        if start + length - 1 > U32_MAX:  # smpl frame numbers are 32-bit
            raise ValueError(f"length: the loop's end frame {start + length - 1} does not fit a smpl chunk")
        return _wav_with_loop(data, start, length)
    tags = [f"LOOPSTART={start}".encode(), f"LOOPLENGTH={length}".encode()]
    if container == "flac":
        return _flac_with_tags(data, tags)
    return _ogg_with_tags(data, tags)


def read_loop_points(data: bytes, container: str) -> tuple[int, int] | None:
    """The (start, length) loop in frames that ``add_loop_points`` writes, or None when absent."""
    _check_container(container)
    if container == "wav":
        for kind, body in _riff_chunks(data)[0]:
            if kind == b"smpl":
                if len(body) < 36 + 24 or struct.unpack_from("<I", body, 28)[0] == 0:
                    return None  # a sampler chunk without loops
                loop_start, loop_end = struct.unpack_from("<II", body, 36 + 8)
                return loop_start, loop_end - loop_start + 1
        return None
    if container == "flac":
        comment = next((body for kind, body in _flac_blocks(data)[0] if kind == FLAC_VORBIS_COMMENT), None)
        if comment is None:
            return None
        entries = _parse_comment(comment, "FLAC VORBIS_COMMENT block")[1]
    else:
        entries = _parse_comment(_vorbis_headers(data)[2][1][7:], "Vorbis comment header")[1]
    found = {key.upper(): value for key, _, value in (entry.partition(b"=") for entry in entries)}
    if b"LOOPSTART" not in found or b"LOOPLENGTH" not in found:
        return None
    start, length = found[b"LOOPSTART"].strip(), found[b"LOOPLENGTH"].strip()
    if not start.isdigit() or not length.isdigit():
        raise ValueError(f"LOOPSTART/LOOPLENGTH are not frame numbers: {start!r}, {length!r}")
    return int(start), int(length)


def _check_container(container: str) -> None:
    if container not in CONTAINERS:
        raise ValueError(f"container must be one of {', '.join(CONTAINERS)}, got {container!r}")


# --- WAV ---------------------------------------------------------------------------------------------

def _riff_chunks(data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The chunks of a RIFF/WAVE file, in order, and any bytes after the RIFF form."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file (no RIFF/WAVE header)")
    end = 8 + struct.unpack_from("<I", data, 4)[0]
    if end > len(data):
        raise ValueError(f"WAV truncated: the RIFF header declares {end} bytes, the file has {len(data)}")
    chunks, pos = list[tuple[bytes, bytes]](), 12
    while pos < end:
        if pos + 8 > end:
            raise ValueError(f"WAV truncated: incomplete chunk header at byte {pos}")
        kind, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if pos + 8 + size > end:
            raise ValueError(f"WAV truncated: the {kind!r} chunk at byte {pos} runs past the end")
        chunks.append((kind, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)  # chunks are padded to even sizes
    return chunks, data[max(pos, end):]


def _wav_with_loop(data: bytes, start: int, length: int) -> bytes:
    chunks, trailer = _riff_chunks(data)
    fmt = next((body for kind, body in chunks if kind == b"fmt "), None)
    rate = struct.unpack_from("<I", fmt, 4)[0] if fmt is not None and len(fmt) >= 16 else 0
    if rate == 0:  # the sample period in the smpl chunk needs it
        raise ValueError("WAV has no fmt chunk with a sample rate")
    smpl = struct.pack(
        "<9I6I",
        0, 0,  # manufacturer, product: none in particular
        1_000_000_000 // rate,  # sample period in ns, truncated as libsndfile writes it
        60, 0,  # MIDI unity note (middle C), pitch fraction
        0, 0,  # SMPTE format and offset: none
        1, 0,  # one loop, no sampler-specific data
        0, 0, start, start + length - 1, 0, 0,  # cue id, forward, start, inclusive end, fraction, forever
    )
    # An existing smpl chunk is replaced where it stands, so the chunk order is kept.
    kept = [(kind, smpl if kind == b"smpl" else body) for kind, body in chunks]
    if not any(kind == b"smpl" for kind, _ in chunks):
        kept.append((b"smpl", smpl))
    form = b"WAVE" + b"".join(
        kind + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1) for kind, body in kept
    )
    if len(form) > U32_MAX:
        raise ValueError("WAV with loop points would exceed the 4 GiB RIFF limit")
    return b"RIFF" + struct.pack("<I", len(form)) + form + trailer


# --- Vorbis comments (shared by FLAC and Ogg Vorbis) ----------------------------------------------------

def _parse_comment(body: bytes, what: str) -> tuple[bytes, list[bytes], bytes]:
    """Vendor string, comment entries and trailing bytes (Ogg's framing bit) of a comment block."""

    def u32(pos: int) -> int:
        if pos + 4 > len(body):
            raise ValueError(f"{what} truncated")
        return int(struct.unpack_from("<I", body, pos)[0])

    vendor_end = 4 + u32(0)
    count, pos, entries = u32(vendor_end), vendor_end + 4, list[bytes]()
    for _ in range(count):
        size = u32(pos)
        if pos + 4 + size > len(body):
            raise ValueError(f"{what} truncated")
        entries.append(body[pos + 4:pos + 4 + size])
        pos += 4 + size
    return body[4:vendor_end], entries, body[pos:]


def _with_tags(vendor: bytes, entries: list[bytes], tail: bytes, tags: list[bytes]) -> bytes:
    kept = [entry for entry in entries if entry.partition(b"=")[0].upper() not in LOOP_TAGS] + tags
    return (struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(kept))
            + b"".join(struct.pack("<I", len(entry)) + entry for entry in kept) + tail)


# --- FLAC --------------------------------------------------------------------------------------------
FLAC_STREAMINFO, FLAC_VORBIS_COMMENT = 0, 4


def _flac_blocks(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The metadata blocks (type, body) of a FLAC stream and the audio frames after them."""
    if data[:4] != b"fLaC":
        raise ValueError("not a FLAC stream (no fLaC marker)")
    blocks, pos, last = list[tuple[int, bytes]](), 4, False
    while not last:
        if pos + 4 > len(data):
            raise ValueError(f"FLAC truncated: incomplete metadata block header at byte {pos}")
        header, size = data[pos], int.from_bytes(data[pos + 1:pos + 4], "big")
        if pos + 4 + size > len(data):
            raise ValueError(f"FLAC truncated: metadata block at byte {pos} runs past the end")
        blocks.append((header & 0x7F, data[pos + 4:pos + 4 + size]))
        last, pos = bool(header & 0x80), pos + 4 + size
    if blocks[0][0] != FLAC_STREAMINFO:
        raise ValueError("FLAC stream does not start with a STREAMINFO block")
    return blocks, data[pos:]


def _flac_with_tags(data: bytes, tags: list[bytes]) -> bytes:
    blocks, frames = _flac_blocks(data)
    index = next((i for i, (kind, _) in enumerate(blocks) if kind == FLAC_VORBIS_COMMENT), None)
    if index is None:  # right after STREAMINFO, where FLAC encoders put it
        blocks.insert(1, (FLAC_VORBIS_COMMENT, _with_tags(b"museforge", [], b"", tags)))
    else:
        comment = _parse_comment(blocks[index][1], "FLAC VORBIS_COMMENT block")
        blocks[index] = (FLAC_VORBIS_COMMENT, _with_tags(*comment, tags))
    out = bytearray(b"fLaC")
    for number, (kind, body) in enumerate(blocks):
        if len(body) >= 1 << 24:
            raise ValueError("FLAC metadata block would exceed the 16 MiB limit")
        out += bytes([kind | (0x80 if number == len(blocks) - 1 else 0)]) + len(body).to_bytes(3, "big")
        out += body
    return bytes(out + frames)


# --- Ogg Vorbis ------------------------------------------------------------------------------------------

def _vorbis_headers(data: bytes) -> tuple[list[bytes], int, list[bytes]]:
    """The pages of a single-stream Ogg Vorbis file, how many hold the headers, and the three
    header packets (identification, comment, setup)."""
    if data[:4] != b"OggS":
        raise ValueError("not an Ogg stream (no OggS capture pattern)")
    try:
        pages = ogg_pages(data)
    except ValueError as exc:  # a cut page header reads as "not an Ogg page"
        raise ValueError(f"Ogg truncated or corrupt: {exc}") from None
    for page in pages:  # ogg_pages cuts the last page short when the file is truncated
        lacing = page[27:27 + page[26]]
        if len(lacing) != page[26] or len(page) != 27 + len(lacing) + sum(lacing):
            raise ValueError(f"Ogg truncated: the last page has only {len(page)} bytes")
        if page[14:18] != pages[0][14:18]:
            raise ValueError("multiplexed or chained Ogg streams are not supported")
    count = vorbis_header_pages(pages)
    packets: list[bytes] = []
    current = bytearray()  # a packet may span pages (a large comment does)
    for page in pages[:count]:
        pos = 27 + page[26]
        for value in page[27:pos]:
            current += page[pos:pos + value]
            pos += value
            if value < 255:
                packets.append(bytes(current))
                current.clear()
    if packets[0][:7] != b"\x01vorbis" or packets[1][:7] != b"\x03vorbis" or packets[2][:7] != b"\x05vorbis":
        raise ValueError("not an Ogg Vorbis stream (unexpected header packets)")
    if sum(1 for value in pages[0][27:27 + pages[0][26]] if value < 255) != 1:
        raise ValueError("the Vorbis identification header does not have the first page to itself")
    return pages, count, packets


def _ogg_with_tags(data: bytes, tags: list[bytes]) -> bytes:
    pages, count, packets = _vorbis_headers(data)
    vendor, entries, tail = _parse_comment(packets[1][7:], "Vorbis comment header")
    if not tail or not tail[0] & 1:
        raise ValueError("Vorbis comment header has no framing bit")
    comment = packets[1][:7] + _with_tags(vendor, entries, tail, tags)
    flags = pages[count - 1][5] & 0x04  # the end-of-stream flag, should the file have no audio
    headers = _paginate([comment, packets[2]], pages[0][14:18], flags)
    # with_serial numbers the pages from 0 in order and redoes every CRC; audio pages keep
    # their granule positions and bodies untouched.
    serial = struct.unpack_from("<I", pages[0], 14)[0]
    return with_serial(b"".join([pages[0], *headers, *pages[count:]]), serial)


def _paginate(packets: list[bytes], serial: bytes, eos: int) -> list[bytes]:
    """Ogg pages holding ``packets`` as libogg flushes them: up to 255 lacing values a page.
    Sequence numbers and CRCs are left at 0 for ``with_serial`` to fill in."""
    lacing = [value for packet in packets for value in [255] * (len(packet) // 255) + [len(packet) % 255]]
    body, pos, continued, pages = b"".join(packets), 0, False, list[bytes]()
    for first in range(0, len(lacing), 255):
        values = lacing[first:first + 255]
        size = sum(values)
        last_page = first + 255 >= len(lacing)
        # Header pages have granule position 0; -1 marks a page on which no packet ends.
        granule = 0 if any(value < 255 for value in values) else -1
        header = struct.pack("<4sBBq4sII", b"OggS", 0, (1 if continued else 0) | (eos if last_page else 0),
                             granule, serial, 0, 0)
        pages.append(header + bytes([len(values), *values]) + body[pos:pos + size])
        pos, continued = pos + size, values[-1] == 255
    return pages
