"""Loop points in WAV, FLAC and Ogg Vorbis: read back, the audio decodes unchanged, metadata kept."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import soundfile

from museforge.plugins.music import loop_points
from museforge.plugins.music.audio_formats import ogg_crc, ogg_pages, vorbis_header_pages
from museforge.plugins.music.loop_points import add_loop_points, read_loop_points

RATE = 48000
FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS")}
TITLE, COMMENT = "Loop test", "written by the loop point tests"
START, LENGTH = 12000, 24000


def sine(seconds: float = 1.0) -> np.ndarray:
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(int(RATE * seconds)) / RATE)
    return np.stack([tone, tone], axis=1)


def encode(container: str, samples: np.ndarray, comment: str = COMMENT) -> bytes:
    file_format, subtype = FORMATS[container]
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", RATE, samples.shape[1], subtype, format=file_format) as out:
        out.title, out.comment = TITLE, comment
        out.write(samples)
    return buffer.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, str, str]:
    """Samples (int16 where lossless, so equality is bit-exact), title and comment."""
    with soundfile.SoundFile(io.BytesIO(data)) as sound:
        dtype = "float32" if sound.format == "OGG" else "int16"
        return sound.read(dtype=dtype), sound.title, sound.comment


@pytest.fixture(scope="module")
def encoded() -> dict[str, bytes]:
    return {container: encode(container, sine()) for container in FORMATS}


def riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 12
    while pos < len(data):
        size = struct.unpack_from("<I", data, pos + 4)[0]
        chunks.append((data[pos:pos + 4], data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def flac_blocks(data: bytes) -> tuple[list[tuple[int, bool, bytes]], int]:
    """(type, last flag, body) of each metadata block, and where the audio frames start."""
    blocks: list[tuple[int, bool, bytes]] = []
    pos = 4
    while not (blocks and blocks[-1][1]):
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        blocks.append((data[pos] & 0x7F, bool(data[pos] & 0x80), data[pos + 4:pos + 4 + size]))
        pos += 4 + size
    return blocks, pos


def assert_valid_ogg(data: bytes) -> None:
    """What an Ogg demuxer checks: every page's CRC, and sequence numbers 0, 1, 2... without gaps."""
    pages = ogg_pages(data)
    assert [struct.unpack_from("<I", page, 18)[0] for page in pages] == list(range(len(pages)))
    for page in pages:
        assert struct.unpack_from("<I", page, 22)[0] == ogg_crc(page[:22] + bytes(4) + page[26:])
    assert [page[5] & 0x06 for page in pages] == [0x02] + [0] * (len(pages) - 2) + [0x04]  # BOS, EOS


def assert_audio_pages_kept(before: bytes, after: bytes) -> None:
    """Audio pages differ at most in sequence number and CRC: same granule positions and packets."""
    old, new = ogg_pages(before), ogg_pages(after)
    old, new = old[vorbis_header_pages(old):], new[vorbis_header_pages(new):]
    assert len(old) == len(new)
    for old_page, new_page in zip(old, new, strict=True):
        assert new_page[:18] == old_page[:18] and new_page[26:] == old_page[26:]


@pytest.mark.parametrize("container", FORMATS)
def test_loop_points_read_back_and_audio_unchanged(encoded: dict[str, bytes], container: str) -> None:
    original = encoded[container]
    assert read_loop_points(original, container) is None
    looped = add_loop_points(original, container, START, LENGTH)
    assert read_loop_points(looped, container) == (START, LENGTH)
    samples, title, comment = decode(looped)
    expected = decode(original)[0]
    assert samples.shape == expected.shape == (RATE, 2)
    np.testing.assert_array_equal(samples, expected)
    assert (title, comment) == (TITLE, COMMENT)
    if container == "ogg":
        assert_valid_ogg(looped)
        assert_audio_pages_kept(original, looped)


def test_wav_smpl_chunk(encoded: dict[str, bytes]) -> None:
    original = encoded["wav"]
    looped = add_loop_points(original, "wav", START, LENGTH)
    assert struct.unpack_from("<I", looped, 4)[0] == len(looped) - 8
    chunks = riff_chunks(looped)
    assert chunks[:-1] == riff_chunks(original)  # every other chunk byte for byte, in order
    kind, body = chunks[-1]
    assert kind == b"smpl" and len(body) == 36 + 24
    assert struct.unpack("<9I6I", body) == (
        0, 0, 1_000_000_000 // RATE, 60, 0, 0, 0, 1, 0,
        0, 0, START, START + LENGTH - 1, 0, 0,  # the end frame is inclusive; play count 0 loops forever
    )


@pytest.mark.parametrize("container", FORMATS)
def test_replacing_loop_points_leaves_one_pair(encoded: dict[str, bytes], container: str) -> None:
    twice = add_loop_points(add_loop_points(encoded[container], container, START, LENGTH), container, 5, 7)
    assert read_loop_points(twice, container) == (5, 7)
    np.testing.assert_array_equal(decode(twice)[0], decode(encoded[container])[0])
    if container == "wav":
        assert [kind for kind, _ in riff_chunks(twice)].count(b"smpl") == 1
    else:
        assert twice.count(b"LOOPSTART=") == twice.count(b"LOOPLENGTH=") == 1
    if container == "ogg":
        assert_valid_ogg(twice)


@pytest.mark.parametrize("container", ["flac", "ogg"])
def test_comment_larger_than_an_ogg_page(container: str) -> None:
    comment = "".join(f"{n:07d} " for n in range(12500))  # 100 kB
    original = encode(container, sine(), comment)
    if container == "ogg":
        assert vorbis_header_pages(ogg_pages(original)) > 2  # the comment packet spans pages
    looped = add_loop_points(original, container, START, LENGTH)
    assert read_loop_points(looped, container) == (START, LENGTH)
    samples, title, kept = decode(looped)
    np.testing.assert_array_equal(samples, decode(original)[0])
    assert (title, kept) == (TITLE, comment)
    if container == "ogg":
        assert_valid_ogg(looped)
        assert_audio_pages_kept(original, looped)


def header_lacing(data: bytes) -> tuple[int, int]:
    """Lacing values of the comment and setup packets together, and the comment packet's size."""
    pages = ogg_pages(data)
    lacing = b"".join(page[27:27 + page[26]] for page in pages[1:vorbis_header_pages(pages)])
    comment_end = next(index for index, value in enumerate(lacing) if value < 255)
    return len(lacing), sum(lacing[:comment_end + 1])


def test_ogg_header_growing_by_a_page_renumbers_the_audio_pages() -> None:
    noise = np.random.default_rng(7).uniform(-0.5, 0.5, (RATE, 2))  # several audio pages
    total, size = header_lacing(encode("ogg", noise, "x"))
    setup_lacing = total - (size // 255 + 1)
    # The largest comment packet whose headers fill two pages exactly: the loop tags need a third.
    fitting = 255 * (2 * 255 - setup_lacing - 1) + 254
    original = encode("ogg", noise, "x" * (1 + fitting - size))
    assert header_lacing(original) == (2 * 255, fitting)
    looped = add_loop_points(original, "ogg", START, LENGTH)
    before, after = ogg_pages(original), ogg_pages(looped)
    assert vorbis_header_pages(after) == vorbis_header_pages(before) + 1 == 4
    assert len(after) == len(before) + 1 and len(before) - vorbis_header_pages(before) > 1
    assert_valid_ogg(looped)
    assert_audio_pages_kept(original, looped)
    assert read_loop_points(looped, "ogg") == (START, LENGTH)
    np.testing.assert_array_equal(decode(looped)[0], decode(original)[0])


def test_ogg_headers_are_paged_as_libogg_pages_them(encoded: dict[str, bytes]) -> None:
    # Rebuilt with no tags added, the header pages come out as libsndfile (libogg) wrote them.
    for data in (encoded["ogg"], encode("ogg", sine(0.2), "y" * 100_000)):
        assert loop_points._ogg_with_tags(data, []) == data


def test_flac_without_a_comment_block_gets_one(encoded: dict[str, bytes]) -> None:
    blocks, audio = flac_blocks(encoded["flac"])
    kept = [(kind, body) for kind, _, body in blocks if kind != 4]
    stripped = b"fLaC" + b"".join(
        bytes([kind | (0x80 if index == len(kept) - 1 else 0)]) + len(body).to_bytes(3, "big") + body
        for index, (kind, body) in enumerate(kept)
    ) + encoded["flac"][audio:]
    assert read_loop_points(stripped, "flac") is None
    looped = add_loop_points(stripped, "flac", START, LENGTH)
    assert read_loop_points(looped, "flac") == (START, LENGTH)
    new_blocks = flac_blocks(looped)[0]
    assert [kind for kind, _, _ in new_blocks] == [0, 4] + [kind for kind, _ in kept[1:]]
    assert [last for _, last, _ in new_blocks] == [False] * (len(new_blocks) - 1) + [True]
    np.testing.assert_array_equal(decode(looped)[0], decode(encoded["flac"])[0])


@pytest.mark.parametrize(("start", "length", "name"), [
    (-1, 10, "start"), (1.5, 10, "start"), ("0", 10, "start"), (0, 0, "length"), (0, -3, "length"),
    (10, None, "length"),
])
@pytest.mark.parametrize("container", FORMATS)
def test_bad_arguments(encoded: dict[str, bytes], container: str, start: Any, length: Any,
                       name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name}"):
        add_loop_points(encoded[container], container, start, length)


def test_bad_container_and_too_long_wav_loop(encoded: dict[str, bytes]) -> None:
    for call in (lambda: add_loop_points(encoded["wav"], "mp3", 0, 1), lambda: read_loop_points(b"", "aiff")):
        with pytest.raises(ValueError, match=r"^container"):
            call()
    with pytest.raises(ValueError, match=r"^length"):  # smpl frame numbers are 32-bit
        add_loop_points(encoded["wav"], "wav", 2**32 - 10, 20)


@pytest.mark.parametrize(("container", "damage", "message"), [
    ("wav", lambda data: data[: len(data) // 2], "WAV truncated"),
    ("wav", lambda data: data[:30], "WAV truncated"),
    ("wav", lambda data: b"RIFX" + data[4:], "not a WAV file"),
    ("wav", lambda data: b"", "not a WAV file"),
    ("flac", lambda data: data[:60], "FLAC truncated"),
    ("flac", lambda data: b"ID3\x03" + data[4:], "not a FLAC stream"),
    ("ogg", lambda data: data[: len(data) // 2], "Ogg truncated"),
    ("ogg", lambda data: data[:20], "Ogg truncated"),
    ("ogg", lambda data: b"RIFF" + data[4:], "not an Ogg stream"),
])
def test_malformed_input_raises_value_error(encoded: dict[str, bytes], container: str,
                                            damage: Callable[[bytes], bytes], message: str) -> None:
    data = damage(encoded[container])
    with pytest.raises(ValueError, match=message):
        add_loop_points(data, container, START, LENGTH)
    with pytest.raises(ValueError, match=message):
        read_loop_points(data, container)


@pytest.mark.parametrize("container", FORMATS)
def test_any_truncation_is_a_value_error_or_a_valid_file(encoded: dict[str, bytes], container: str) -> None:
    data = encoded[container]
    cuts = [*range(0, 300), *range(300, len(data), max(1, len(data) // 150))]
    if container == "ogg":  # cuts between pages leave a valid, shorter stream
        cuts += np.cumsum([len(page) for page in ogg_pages(data)])[:-1].tolist()
    valid = 0
    for cut in cuts:
        try:
            looped = add_loop_points(data[:cut], container, START, LENGTH)
        except ValueError:
            continue
        # Cut in the audio, where the metadata tools do not look: the loop must still be there.
        assert read_loop_points(looped, container) == (START, LENGTH)
        valid += 1
    # The RIFF header gives the WAV's size, so every cut shows; FLAC and Ogg can end at any frame or page.
    assert valid == 0 if container == "wav" else valid > 0
