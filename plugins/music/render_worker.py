"""A SoundFont render process: MIDI blocks in on stdin, WAV out on stdout.

Run by path (``python render_worker.py``), not as a module of the package, so the process
imports only the standard library, ``midirenderer`` and :mod:`soundfont_subset` (stdlib only,
from this folder): about 36 MB with TimGM6mb loaded, where a process importing museforge would
hold 140. Stdlib only here, on purpose.

Once midirenderer is imported the worker writes one byte (1): it is ready. Each request is
a 4-byte big-endian length and a UTF-8 JSON header ``{"path", "mtime_ns", "presets"}`` (the
[bank, program] pairs the block plays, or null: through the whole bank),
then a 4-byte length and the MIDI file. Each answer is one status byte (0: WAV follows, 1: an
error message follows), a 4-byte length and the payload. The bank last used is kept in
memory, with subsets of it by the presets a block plays (see :mod:`soundfont_subset`). End of
input ends the process.
"""

from __future__ import annotations

import json
import struct
import sys
from typing import IO, Any

_LENGTH = struct.Struct(">I")


def read_frame(stream: IO[bytes]) -> bytes | None:
    """One length-prefixed frame; None at end of input."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return data


def write_frame(stream: IO[bytes], data: bytes) -> None:
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)


def _subset_module() -> Any:
    """:mod:`soundfont_subset`, from this file's folder: run by path with ``-P``, the folder is not
    on sys.path (on purpose: nothing there may shadow a standard module)."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "soundfont_subset.py")
    spec = importlib.util.spec_from_file_location("soundfont_subset", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    from midirenderer import render_wave_from

    subsets = _subset_module().Subsets()  # each block renders through only the presets it plays

    answers.write(b"\x01")  # ready
    answers.flush()
    bank_key: tuple[str, int] | None = None
    bank = b""
    while True:
        header, midi = read_frame(requests), read_frame(requests)
        if header is None or midi is None:
            return
        try:
            wanted = json.loads(header)
            key = (str(wanted["path"]), int(wanted["mtime_ns"]))
            if key != bank_key:
                with open(key[0], "rb") as file:
                    bank, bank_key = file.read(), key
            presets = wanted.get("presets")
            played = subsets.bank_for(bank_key, bank, None if presets is None else
                                      frozenset((int(b), int(p)) for b, p in presets))
            wav, status = render_wave_from(played, midi), 0
        except BaseException as error:  # a Rust panic is a BaseException: report it, stay up
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            wav, status = f"{type(error).__name__}: {error}".encode(), 1
        answers.write(bytes([status]))
        write_frame(answers, wav)
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
