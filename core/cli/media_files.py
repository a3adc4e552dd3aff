"""Where ``generate`` and ``apply`` put their files: an output file or folder, the names of
several results, folders of inputs, and nothing left behind by a command that failed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..engine.effect import IMAGE_INPUT_FORMATS

# What an -o name ending in one of these means: a file of that format, not a folder. The media
# museforge only reads (mp3, mkv, webm) are here too, so that generate refuses them as outputs
# rather than making a folder of that name.
SUFFIX_FORMATS = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp", ".exr": "exr",
    ".wav": "wav", ".flac": "flac", ".ogg": "ogg", ".mid": "mid", ".midi": "mid", ".mp3": "mp3",
    ".glb": "glb", ".gltf": "gltf", ".obj": "obj", ".ply": "ply", ".stl": "stl", ".usda": "usda",
    ".usdz": "usdz", ".json": "json", ".edl": "edl", ".otio": "otio", ".fcpxml": "fcpxml",
    ".mp4": "mp4", ".mov": "mov", ".mkv": "mkv", ".webm": "webm", ".m4v": "m4v",
}
FORMAT_ALIASES = {"jpg": "jpeg", "midi": "mid"}
# Formats whose files carry another format's extension: a 16-bit PNG is a .png.
WRITTEN_AS = {"png16": "png"}
# What a folder given to apply is read for: the extensions of the pictures effects take.
PICTURE_SUFFIXES = tuple(s for s, f in SUFFIX_FORMATS.items() if f in IMAGE_INPUT_FORMATS)


def format_name(text: str) -> str:
    """A --format as the server names it (jpg is jpeg)."""
    lowered = text.strip().lower()
    return FORMAT_ALIASES.get(lowered, lowered)


def names_a_file(output: Path, any_extension: bool = False) -> bool:
    """-o out.png is a file; -o renders or an existing folder a folder. An extension museforge
    does not know (renders.v2) is a folder for generate, and a file for apply, whose server
    names the format it cannot write."""
    known = output.suffix.lower() in SUFFIX_FORMATS or (any_extension and bool(output.suffix))
    return known and not output.is_dir()


def extension_clash(output: Path, fmt: str) -> str:
    """Why -o's extension and --format disagree (-o prop.obj -f glb would write GLB into prop.obj);
    '' when they agree, when either is not given, or -o is a folder or has an extension museforge
    does not know."""
    named = SUFFIX_FORMATS.get(output.suffix.lower())
    fmt = format_name(fmt)
    if not fmt or named is None or output.is_dir() or WRITTEN_AS.get(fmt, fmt) == named:
        return ""
    extension = next((s for s, f in SUFFIX_FORMATS.items() if f == WRITTEN_AS.get(fmt, fmt)), "")
    instead = f" (-o {output.with_suffix(extension)})" if extension else ""
    return (f"-o {output} and --format {fmt} disagree: the file would be named {output.suffix} but hold "
            f"{fmt}; give one of them, or make them agree{instead}")


def file_result(output: Path, part: str, index: int, several: bool) -> Path:
    """Where a result goes when -o names a file: that file, or numbered beside it when there are
    several (out-0000.png ...); a named part (a stem) keeps its name (song-bass.wav)."""
    numbered = f"-{index:04d}" if several else ""
    part = f"-{part}" if part else ""
    if not numbered and not part:
        return output
    return output.with_name(f"{output.stem}{numbered}{part}{output.suffix}")


def picture_files(paths: Sequence[Path]) -> list[Path]:
    """The inputs, with each folder given as the pictures in it (sorted); OSError naming a folder
    that has none."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES)
        if not inside:
            kinds = ", ".join(PICTURE_SUFFIXES)
            raise FileNotFoundError(2, f"no pictures ({kinds}) in the folder", str(path))
        found.extend(inside)
    return found


def overwritten_input(target: Path, inputs: Sequence[Path]) -> Path | None:
    """The input ``target`` would overwrite, if any."""
    resolved = target.resolve()
    return next((path for path in inputs if path.resolve() == resolved), None)


@contextmanager
def output_folder(folder: Path) -> Iterator[list[Path]]:
    """The folder made now (a folder that cannot be made is said before any work); the caller adds
    what it writes to the list it gets. If nothing was written by the end (the command failed or
    was stopped), the folders made here are taken away again."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        yield written
    finally:
        if not written:
            for made in missing:  # deepest first
                try:
                    made.rmdir()
                except OSError:  # something else put a file there meanwhile: leave it
                    break
